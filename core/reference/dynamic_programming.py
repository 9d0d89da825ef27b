"""Dynamic programming on a known MDP (outline 2.2.2 and 4.2.2), exact, in float64 NumPy.

Gymnasium's toy-text environments (FrozenLake-v1, Taxi, CliffWalking) expose their model as
``env.unwrapped.P[s][a] = [(p, s', r, terminated), ...]``. :func:`tabular_mdp` turns it into
arrays, with the episode ending on a terminating transition:

==========  =========  ==========================================================
symbol      shape      description
==========  =========  ==========================================================
P[s, a, s'] (S, A, S)  probability of a *continuing* transition s, a -> s'
                       (terminating ones are left out: nothing follows them)
R[s, a]     (S, A)     expected reward sum_{s'} p(s', r | s, a) r
pi[s, a]    (S, A)     a policy's action probabilities (rows sum to 1)
==========  =========  ==========================================================

The Bellman equations, then, in matrix form:

    V^pi = R_pi + gamma P_pi V^pi,   R_pi[s] = sum_a pi(a|s) R[s, a],
                                     P_pi[s, s'] = sum_a pi(a|s) P[s, a, s']
    Q^pi = R + gamma P V^pi
    V*(s) = max_a (R[s, a] + gamma sum_{s'} P[s, a, s'] V*(s'))          (optimality)

Policy evaluation solves the first one twice: by iterating it, and as the linear system
(I - gamma P_pi) V = R_pi. Value iteration iterates the optimality equation; policy
iteration alternates exact evaluation and greedy improvement. Both reach V* and Q*, and
they agree to 1e-10 (tests/test_dynamic_programming.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from duetrl.core.interfaces.rl import check_discount


@dataclass(frozen=True)
class TabularMDP:
    """A finite MDP as arrays (see the module's table); ``name`` says where it came from."""

    P: np.ndarray
    R: np.ndarray
    name: str = "mdp"
    initial: np.ndarray | None = None  # the start-state distribution, when known

    @property
    def num_states(self) -> int:
        return int(self.R.shape[0])

    @property
    def num_actions(self) -> int:
        return int(self.R.shape[1])


def tabular_mdp(env: Any, **make_kwargs: Any) -> TabularMDP:
    """Read an environment's transition table ``env.unwrapped.P`` into a :class:`TabularMDP`.

    :param env: a Gymnasium environment, or an id to make (``"FrozenLake-v1"``; ``make_kwargs``
        such as ``map_name="8x8"`` or ``is_slippery=False`` are passed to ``gym.make``).
    :raises ValueError: when the environment exposes no transition table.
    """
    if isinstance(env, str):
        import gymnasium as gym

        env = gym.make(env, **make_kwargs)
    table = getattr(getattr(env, "unwrapped", env), "P", None)
    name = getattr(getattr(env, "spec", None), "id", None) or type(env).__name__
    if not isinstance(table, dict) or not table:
        raise ValueError(
            f"env: {name!r} exposes no transition table env.unwrapped.P; dynamic programming "
            f"needs the model p(s', r | s, a) (FrozenLake-v1, Taxi and CliffWalking have one; "
            f"for other environments learn from samples instead: duetrl.core.tabular or DQN)")
    num_states = len(table)
    num_actions = len(table[0])
    P = np.zeros((num_states, num_actions, num_states))
    R = np.zeros((num_states, num_actions))
    for s, actions in table.items():
        for a, outcomes in actions.items():
            for p, next_state, reward, terminated in outcomes:
                R[s, a] += p * reward
                if not terminated:
                    P[s, a, next_state] += p
    initial = getattr(env.unwrapped, "initial_state_distrib", None)
    return TabularMDP(P, R, name, None if initial is None else np.asarray(initial, np.float64))


def _check_policy(mdp: TabularMDP, policy: np.ndarray) -> np.ndarray:
    """A deterministic policy (S,) of actions becomes one-hot (S, A); rows must sum to 1."""
    policy = np.asarray(policy)
    if policy.ndim == 1:
        policy = np.eye(mdp.num_actions)[policy.astype(np.int64)]
    if policy.shape != mdp.R.shape or not np.allclose(policy.sum(axis=1), 1.0):
        raise ValueError(f"policy: expected (S,) actions or (S, A) = {mdp.R.shape} rows of "
                         f"probabilities summing to 1, got shape {policy.shape}")
    return policy


def policy_arrays(mdp: TabularMDP, policy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(R_pi (S,), P_pi (S, S))``: the reward and transition matrix under ``policy``."""
    policy = _check_policy(mdp, policy)
    return (policy * mdp.R).sum(axis=1), np.einsum("sa,sat->st", policy, mdp.P, optimize=True)


def evaluate_policy_linear(mdp: TabularMDP, policy: np.ndarray, gamma: float) -> np.ndarray:
    """V^pi from the linear system (I - gamma P_pi) V = R_pi (one ``np.linalg.solve``).

    :raises ValueError: when the system is singular (gamma = 1 and the policy can loop forever).
    """
    check_discount("gamma", gamma)
    r_pi, p_pi = policy_arrays(mdp, policy)
    try:
        return np.linalg.solve(np.eye(mdp.num_states) - gamma * p_pi, r_pi)
    except np.linalg.LinAlgError:
        raise ValueError(f"gamma: I - {gamma} P_pi is singular: with gamma = 1 the policy must "
                         f"end every episode; use gamma < 1") from None


def evaluate_policy_iterative(mdp: TabularMDP, policy: np.ndarray, gamma: float,
                              tol: float = 1e-13, max_iterations: int = 100_000) -> np.ndarray:
    """V^pi by iterating V <- R_pi + gamma P_pi V from V = 0 until ||dV||_inf <= tol (1 - gamma).

    Stopping there bounds the error: ||V - V^pi||_inf <= gamma / (1 - gamma) ||dV|| <= tol.
    """
    check_discount("gamma", gamma)
    r_pi, p_pi = policy_arrays(mdp, policy)
    value = np.zeros(mdp.num_states)
    threshold = tol * (1.0 - gamma) if gamma < 1 else tol
    for _ in range(max_iterations):
        new = r_pi + gamma * p_pi @ value  # V <- R_pi + gamma P_pi V
        if np.max(np.abs(new - value)) <= threshold:
            return new
        value = new
    raise RuntimeError(f"max_iterations: policy evaluation did not converge in {max_iterations}")


def q_from_v(mdp: TabularMDP, value: np.ndarray, gamma: float) -> np.ndarray:
    """Q[s, a] = R[s, a] + gamma sum_{s'} P[s, a, s'] V[s'];  (S,) -> (S, A)."""
    return mdp.R + gamma * mdp.P @ value


def greedy_policy(q: np.ndarray, previous: np.ndarray | None = None,
                  tie_tol: float = 1e-12) -> np.ndarray:
    """argmax_a Q[s, a] (S,); ties go to ``previous``'s action, else the lowest index.

    Keeping the previous action on a tie is what makes policy iteration stop.
    """
    best = q.max(axis=1, keepdims=True)
    near_best = q >= best - tie_tol
    greedy = np.argmax(near_best, axis=1)
    if previous is not None:
        keep = near_best[np.arange(q.shape[0]), previous]
        greedy = np.where(keep, previous, greedy)
    return greedy


@dataclass
class Solution:
    """V* (S,), Q* (S, A), a greedy optimal policy (S,) and how many sweeps it took."""

    value: np.ndarray
    q: np.ndarray
    policy: np.ndarray
    iterations: int


def value_iteration(mdp: TabularMDP, gamma: float, tol: float = 1e-13,
                    max_iterations: int = 1_000_000) -> Solution:
    """Iterate V <- max_a (R + gamma P V) from V = 0 until ||dV||_inf <= tol (1 - gamma) / gamma.

    The stopping rule bounds ||V - V*||_inf <= tol (the Bellman operator contracts by gamma).
    """
    check_discount("gamma", gamma)
    value = np.zeros(mdp.num_states)
    threshold = tol * (1.0 - gamma) / gamma if 0 < gamma < 1 else tol
    for iteration in range(1, max_iterations + 1):
        q = q_from_v(mdp, value, gamma)  # Q = R + gamma P V
        new = q.max(axis=1)              # V <- max_a Q
        done = np.max(np.abs(new - value)) <= threshold
        value = new
        if done:
            q = q_from_v(mdp, value, gamma)
            return Solution(value, q, greedy_policy(q), iteration)
    raise RuntimeError(f"max_iterations: value iteration did not converge in {max_iterations}")


def policy_iteration(mdp: TabularMDP, gamma: float, max_iterations: int = 10_000) -> Solution:
    """Evaluate exactly (linear solve), improve greedily, until the policy stops changing."""
    policy = np.zeros(mdp.num_states, dtype=np.int64)
    for iteration in range(1, max_iterations + 1):
        value = evaluate_policy_linear(mdp, policy, gamma)  # V^pi exactly
        q = q_from_v(mdp, value, gamma)
        improved = greedy_policy(q, previous=policy)        # pi' = argmax_a Q^pi
        if np.array_equal(improved, policy):
            return Solution(value, q, policy, iteration)
        policy = improved
    raise RuntimeError(f"max_iterations: policy iteration did not converge in {max_iterations}")


def bellman_optimality_residual(mdp: TabularMDP, value: np.ndarray, gamma: float) -> float:
    """||max_a (R + gamma P V) - V||_inf: zero exactly at V*."""
    return float(np.max(np.abs(q_from_v(mdp, value, gamma).max(axis=1) - value)))


def epsilon_greedy_q(mdp: TabularMDP, gamma: float, epsilon: float,
                     tol: float = 1e-13, max_iterations: int = 1_000_000) -> np.ndarray:
    """The fixed point of Q = R + gamma P ((1 - eps) max_a Q + eps mean_a Q).

    Expected SARSA (and SARSA) with a fixed eps-greedy behaviour converge to this Q, not to
    Q*; eps = 0 gives Q*. The operator contracts by gamma, so iteration finds it to ``tol``.
    """
    check_discount("gamma", gamma)
    q = np.zeros_like(mdp.R)
    threshold = tol * (1.0 - gamma) / gamma if 0 < gamma < 1 else tol
    for _ in range(max_iterations):
        v = (1.0 - epsilon) * q.max(axis=1) + epsilon * q.mean(axis=1)
        new = q_from_v(mdp, v, gamma)
        if np.max(np.abs(new - q)) <= threshold:
            return new
        q = new
    raise RuntimeError(f"max_iterations: did not converge in {max_iterations}")
