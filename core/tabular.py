"""Tabular TD control (outline 4.2.2): Q-learning, SARSA and expected SARSA, in NumPy.

One table Q (S, A), one transition at a time, one of three targets:

    Q-learning       y = r + gamma (1 - term) max_a' Q(s', a')                  (off-policy)
    SARSA            y = r + gamma (1 - term) Q(s', a'),  a' ~ eps-greedy(Q(s')), taken next
    expected SARSA   y = r + gamma (1 - term) sum_a' pi(a'|s') Q(s', a')
                       = r + gamma (1 - term) [(1 - eps) max_a' Q(s', a') + eps mean_a' Q(s', a')]

    Q(s, a) <- Q(s, a) + alpha_n (y - Q(s, a)),   alpha_n = alpha / n(s, a)^omega

``term`` is the environment's *termination*; at a time-limit *truncation* the target still
bootstraps from Q(s', .), since the state s' has a future the limit merely cut off.

What they converge to (tests/test_tabular.py checks each against dynamic programming):
Q-learning to Q*, whatever the (exploring) behaviour; SARSA and expected SARSA with a fixed
eps to the fixed point of Q = R + gamma P ((1 - eps) max Q + eps mean Q)
(duetrl.core.reference.dynamic_programming.epsilon_greedy_q), and to Q* only as eps -> 0.

No framework: a table needs none, and the float64 NumPy here is the reference DQN must meet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from duetrl.core.interfaces.rl import check_discount, check_positive_int

RULES = ("q_learning", "sarsa", "expected_sarsa")
"""The three TD control rules."""


def check_epsilon(epsilon: float, name: str = "epsilon") -> float:
    """Raise ValueError unless ``epsilon`` is an exploration rate in [0, 1]."""
    try:
        check_discount(name, epsilon)
    except ValueError:
        raise ValueError(f"{name}: expected an exploration rate in [0, 1], got {epsilon!r}")\
            from None
    return float(epsilon)


def epsilon_greedy_probabilities(q_row: np.ndarray, epsilon: float) -> np.ndarray:
    """pi(a|s) of eps-greedy: eps / A everywhere plus (1 - eps) shared by the greedy actions."""
    greedy = q_row == q_row.max()
    return epsilon / q_row.size + (1.0 - epsilon) * greedy / greedy.sum()


def epsilon_greedy_action(q_row: np.ndarray, epsilon: float, rng: np.random.Generator) -> int:
    """A uniform action with probability eps, else a greedy one (ties broken uniformly)."""
    if rng.random() < epsilon:
        return int(rng.integers(q_row.size))
    best = np.flatnonzero(q_row == q_row.max())
    return int(best[rng.integers(best.size)]) if best.size > 1 else int(best[0])


@dataclass
class TabularResult:
    """The learned table, visit counts (S, A), and (steps, return) of each finished episode."""

    q: np.ndarray
    visits: np.ndarray
    episodes: list[tuple[int, float]] = field(default_factory=list)


def td_control(env: Any, rule: str = "q_learning", num_steps: int = 50_000, alpha: float = 0.5,
               omega: float = 0.0, gamma: float = 0.99, epsilon: float = 0.1,
               seed: int = 0, q_init: np.ndarray | None = None,
               exploring_starts: np.ndarray | None = None) -> TabularResult:
    """Learn Q from ``num_steps`` transitions of ``env`` with one of :data:`RULES`.

    :param env: a Gymnasium environment with Discrete observations and actions.
    :param rule: ``"q_learning"``, ``"sarsa"`` or ``"expected_sarsa"``.
    :param alpha: the step size scale, in (0, 1].
    :param omega: step-size decay alpha_n = alpha / n(s, a)^omega; 0 = constant, 1 = the
        running mean. Noisy targets need omega in (0.5, 1] to converge exactly.
    :param gamma: discount factor in [0, 1].
    :param epsilon: the eps-greedy behaviour's exploration rate in [0, 1].
    :param seed: seeds the env's resets and the behaviour's coins.
    :param exploring_starts: states to start episodes from, uniformly (Sutton and Barto's
        exploring starts), so rarely reached states get visits too; works with the toy-text
        environments, which keep their state in ``env.unwrapped.s``. None: the env's own start.
    """
    if rule not in RULES:
        raise ValueError(f"rule: expected one of {list(RULES)}, got {rule!r}")
    check_positive_int("num_steps", num_steps)
    check_discount("gamma", gamma)
    check_epsilon(epsilon)
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha: expected a step size in (0, 1], got {alpha!r}")
    import gymnasium as gym

    if not (isinstance(env.observation_space, gym.spaces.Discrete)
            and isinstance(env.action_space, gym.spaces.Discrete)):
        raise ValueError(f"env: tabular methods need Discrete observations and actions, got "
                         f"{env.observation_space} and {env.action_space}")
    num_states, num_actions = int(env.observation_space.n), int(env.action_space.n)
    q = np.zeros((num_states, num_actions)) if q_init is None else np.array(q_init, float)
    visits = np.zeros((num_states, num_actions), dtype=np.int64)
    rng = np.random.default_rng(seed)
    result = TabularResult(q, visits)
    state = _reset(env, rng, exploring_starts, seed)
    action = epsilon_greedy_action(q[state], epsilon, rng)
    episode_return = 0.0
    for step in range(1, num_steps + 1):
        next_state, reward, terminated, truncated, _ = env.step(action)
        episode_return += float(reward)
        next_action = epsilon_greedy_action(q[next_state], epsilon, rng)
        if rule == "q_learning":        # y = r + gamma max_a' Q(s', a')
            bootstrap = q[next_state].max()
        elif rule == "sarsa":           # y = r + gamma Q(s', a'), a' the action taken next
            bootstrap = q[next_state, next_action]
        else:                           # y = r + gamma E_{a' ~ pi} Q(s', a')
            bootstrap = epsilon_greedy_probabilities(q[next_state], epsilon) @ q[next_state]
        target = reward + gamma * (1.0 - terminated) * bootstrap  # truncation still bootstraps
        visits[state, action] += 1
        step_size = alpha / visits[state, action] ** omega
        q[state, action] += step_size * (target - q[state, action])
        if terminated or truncated:
            result.episodes.append((step, episode_return))
            state = _reset(env, rng, exploring_starts)
            action = epsilon_greedy_action(q[state], epsilon, rng)
            episode_return = 0.0
        else:
            state, action = next_state, next_action
    return result


def _reset(env: Any, rng: np.random.Generator, starts: np.ndarray | None,
           seed: int | None = None) -> int:
    """Reset ``env``; with exploring starts, move it to a uniformly drawn start state."""
    state, _ = env.reset(seed=seed)
    if starts is None:
        return int(state)
    if not hasattr(env.unwrapped, "s"):
        raise ValueError("exploring_starts: the environment keeps no state in env.unwrapped.s "
                         "(toy-text environments do); pass None")
    env.unwrapped.s = int(starts[rng.integers(len(starts))])
    return int(env.unwrapped.s)


def q_learning(env: Any, **kwargs: Any) -> TabularResult:
    """:func:`td_control` with the Q-learning target r + gamma max_a' Q(s', a')."""
    return td_control(env, "q_learning", **kwargs)


def sarsa(env: Any, **kwargs: Any) -> TabularResult:
    """:func:`td_control` with the SARSA target r + gamma Q(s', a')."""
    return td_control(env, "sarsa", **kwargs)


def expected_sarsa(env: Any, **kwargs: Any) -> TabularResult:
    """:func:`td_control` with the expected SARSA target r + gamma E_pi Q(s', .)."""
    return td_control(env, "expected_sarsa", **kwargs)
