"""The Decision Transformer's data, host-side and once for both backends (outline 3.2.1, 3.2.5;
Chen et al. 2021): a behaviour dataset of mixed quality, returns-to-go as tokens, and the
interleaved windows the GPT is trained on.

    R_t = sum_{t' >= t} r_t'                       (return-to-go: gamma = 1, nothing bootstrapped)
    tokens  R_1 s_1 a_1  R_2 s_2 a_2  ...  R_K s_K a_K        (one shared vocabulary)
    loss    -sum_t log p(a_t | R_<=t, s_<=t, a_<t) over the positions whose next token is an action

=============  ==========================================================================
token ids      meaning
=============  ==========================================================================
0 .. n_b - 1   return-to-go buckets: R mapped linearly from [lo, hi] (the dataset's range)
n_b            NO_RETURN: behaviour cloning's constant return token (the same layout, the
               return information removed)
then S ids     the states (state s -> state_offset + s)
then A ids     the actions (action a -> action_offset + a)
last           PAD: right padding of windows shorter than K timesteps
=============  ==========================================================================

A window of K timesteps is 3K tokens ``x``; its targets ``y`` are ``x`` shifted left by one (PAD
after the last); its weights ``w`` are 1 exactly at the positions 3t + 1 (the state s_t, whose
next token is the action a_t) of the real timesteps t of the window, 0 elsewhere (return,
action and padding positions).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from duetrl.core.reference.returns import discounted_returns


# ---- 1. returns-to-go and their tokens -------------------------------------------------------
def return_to_go(rewards: np.ndarray, terminated: bool = True) -> np.ndarray:
    """R_t = sum_{t' >= t} r_t' of one episode, ``(L,)`` -> ``(L,)`` float64.

    ``core/reference/returns.discounted_returns`` with gamma = 1: an episode cut by the time
    limit (``terminated=False``) is a truncation, and nothing is bootstrapped after it (the
    Decision Transformer conditions on the return actually received).
    """
    rewards = np.asarray(rewards, np.float64)
    if rewards.ndim != 1 or rewards.size == 0:
        raise ValueError(f"rewards: expected one episode's rewards (L,) with L >= 1, got shape "
                         f"{rewards.shape}")
    ends = np.zeros_like(rewards)
    ends[-1] = 1.0
    term, trunc = (ends, 0 * ends) if terminated else (0 * ends, ends)
    return discounted_returns(rewards[:, None], term[:, None], trunc[:, None], 1.0)[:, 0]


@dataclass(frozen=True)
class ReturnBuckets:
    """Returns-to-go as ``num`` tokens, linearly over ``[low, high]`` (the dataset's range):

        bucket(R) = round((R - low) / (high - low) * (num - 1)),   clipped to [0, num - 1]
    """

    low: float
    high: float
    num: int

    def __post_init__(self) -> None:
        if int(self.num) < 2:
            raise ValueError(f"return_buckets: expected an int >= 2, got {self.num!r}")
        if not self.high >= self.low:
            raise ValueError(f"high: expected >= low={self.low}, got {self.high}")

    def token(self, returns: np.ndarray | float) -> np.ndarray:
        """Bucket ids of ``returns`` (any shape); values outside the range go to the ends."""
        returns = np.asarray(returns, np.float64)
        span = self.high - self.low
        scaled = (returns - self.low) / span if span > 0 else np.zeros_like(returns)
        return np.clip(np.rint(scaled * (self.num - 1)), 0, self.num - 1).astype(np.int64)

    def value(self, token: np.ndarray | int) -> np.ndarray:
        """The return a bucket id stands for (its centre)."""
        return self.low + np.asarray(token) / (self.num - 1) * (self.high - self.low)

    def check_target(self, target: float, name: str = "target_return") -> float:
        """``target`` as a float; ValueError when it lies outside the dataset's returns."""
        target = float(target)
        tolerance = 1e-9 * max(1.0, abs(self.low), abs(self.high))
        if not self.low - tolerance <= target <= self.high + tolerance:
            raise ValueError(f"{name}: expected a return within the dataset's range "
                             f"[{self.low:g}, {self.high:g}] (the model never saw others), got "
                             f"{target:g}")
        return target


# ---- 2. the shared vocabulary ------------------------------------------------------------------
@dataclass(frozen=True)
class Vocabulary:
    """One vocabulary for returns, states, actions and padding (see the module's table)."""

    num_buckets: int
    num_states: int
    num_actions: int

    @property
    def no_return(self) -> int:
        return self.num_buckets

    @property
    def state_offset(self) -> int:
        return self.num_buckets + 1

    @property
    def action_offset(self) -> int:
        return self.state_offset + self.num_states

    @property
    def pad(self) -> int:
        return self.action_offset + self.num_actions

    @property
    def size(self) -> int:
        return self.pad + 1


# ---- 3. the behaviour dataset ------------------------------------------------------------------
@dataclass
class Episodes:
    """Episodes of a behaviour policy: per episode its states, actions and rewards ``(L,)``, how
    it ended (``terminated``: True, time limit: False) and the epsilon it was collected with."""

    states: list[np.ndarray] = field(default_factory=list)
    actions: list[np.ndarray] = field(default_factory=list)
    rewards: list[np.ndarray] = field(default_factory=list)
    terminated: list[bool] = field(default_factory=list)
    epsilons: list[float] = field(default_factory=list)

    @property
    def returns(self) -> np.ndarray:
        """Each episode's return ``(E,)``."""
        return np.array([r.sum() for r in self.rewards], np.float64)

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(s) for s in self.states], np.int64)

    def returns_to_go(self) -> list[np.ndarray]:
        return [return_to_go(r, t) for r, t in zip(self.rewards, self.terminated)]

    def describe(self) -> dict[str, Any]:
        """The return distribution: mean, standard error, quantiles, counts of each value."""
        returns = self.returns
        values, counts = np.unique(np.round(returns, 6), return_counts=True)
        return {
            "episodes": len(returns), "steps": int(self.lengths.sum()),
            "mean_return": float(returns.mean()),
            "sem_return": float(returns.std(ddof=1) / np.sqrt(len(returns)))
            if len(returns) > 1 else 0.0,
            "min_return": float(returns.min()), "max_return": float(returns.max()),
            "quantiles_10_50_90": [float(q) for q in np.quantile(returns, [0.1, 0.5, 0.9])],
            "return_counts": {f"{v:g}": int(c) for v, c in zip(values, counts)}
            if len(values) <= 20 else None,
            "mean_length": float(self.lengths.mean()),
            "truncated": int(len(returns) - sum(self.terminated)),
        }


def make_env(env_id: str, slippery: bool) -> Any:
    """A Gymnasium toy-text environment (FrozenLake's ``is_slippery`` set; others as they are)."""
    import gymnasium as gym

    kwargs = {"is_slippery": slippery} if env_id.startswith("FrozenLake") else {}
    return gym.make(env_id, **kwargs)


def optimal_policy(env_id: str, slippery: bool, gamma: float = 0.95) -> np.ndarray:
    """A greedy optimal policy ``(S,)`` by value iteration on the known model; gamma < 1 makes it
    take the shortest way (with gamma = 1 every path to the goal is worth the same)."""
    from duetrl.core.reference.dynamic_programming import tabular_mdp, value_iteration

    return value_iteration(tabular_mdp(make_env(env_id, slippery)), gamma).policy


def collect_behaviour(
    env_id: str = "FrozenLake-v1",
    episodes: int = 1000,
    seed: int = 0,
    slippery: bool = False,
    epsilon_low: float = 0.0,
    epsilon_high: float = 1.0,
) -> Episodes:
    """A mixed-quality dataset: each episode draws epsilon ~ U[epsilon_low, epsilon_high] and
    then acts at random with probability epsilon, else optimally (:func:`optimal_policy`).

    Everything random comes from ``np.random.default_rng((seed, 3))``: the same dataset for the
    same arguments, whichever backend trains on it.
    """
    if int(episodes) < 1:
        raise ValueError(f"episodes: expected an int >= 1, got {episodes!r}")
    if not 0.0 <= epsilon_low <= epsilon_high <= 1.0:
        raise ValueError(f"epsilon_low, epsilon_high: expected 0 <= low <= high <= 1, got "
                         f"{epsilon_low}, {epsilon_high}")
    env = make_env(env_id, slippery)
    if not hasattr(env.observation_space, "n") or not hasattr(env.action_space, "n"):
        raise ValueError(f"env: expected discrete states and actions, got {env_id!r}")
    best = optimal_policy(env_id, slippery)
    num_actions = int(env.action_space.n)
    rng = np.random.default_rng((seed, 3))
    data = Episodes()
    for _ in range(int(episodes)):
        epsilon = float(rng.uniform(epsilon_low, epsilon_high))
        state, _ = env.reset(seed=int(rng.integers(2**31)))
        states, actions, rewards = [], [], []
        while True:
            explore = rng.random() < epsilon
            action = int(rng.integers(num_actions)) if explore else int(best[state])
            next_state, reward, terminated, truncated, _ = env.step(action)
            states.append(int(state))
            actions.append(action)
            rewards.append(float(reward))
            state = next_state
            if terminated or truncated:
                break
        data.states.append(np.array(states, np.int64))
        data.actions.append(np.array(actions, np.int64))
        data.rewards.append(np.array(rewards, np.float64))
        data.terminated.append(bool(terminated))
        data.epsilons.append(epsilon)
    env.close()
    return data


# ---- 4. windows, their targets and the loss mask -----------------------------------------------
def check_window(steps: int, block_size: int) -> None:
    """ValueError naming ``window`` unless its 3 ``steps`` tokens fit the GPT's ``block_size``."""
    if int(steps) < 1 or 3 * int(steps) > block_size:
        raise ValueError(f"window: expected 1 <= K <= {block_size // 3} timesteps (3K tokens <= "
                         f"the GPT's block_size {block_size}), got K = {steps}")


def window(
    states: np.ndarray,
    actions: np.ndarray,
    return_tokens: np.ndarray | None,
    start: int,
    steps: int,
    vocab: Vocabulary,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x, y, w)``, each ``(3 steps,)``: timesteps ``start .. start + steps - 1`` of one episode.

    :param return_tokens: the episode's return-to-go bucket ids ``(L,)``; None: behaviour
        cloning (every return token is ``vocab.no_return``).
    :returns: x = R s a R s a ... right-padded with PAD; y[i] = x[i + 1] (PAD after the last);
        w[i] = 1 where y[i] is a real action (i = 3t + 1), else 0.
    """
    length = len(states)
    if not 0 <= start < length:
        raise ValueError(f"start: expected 0 <= start < {length} (the episode's length), got "
                         f"{start}")
    n = min(steps, length - start)  # real timesteps; the rest is padding
    x = np.full(3 * steps, vocab.pad, np.int64)
    t = np.arange(start, start + n)
    x[0:3 * n:3] = vocab.no_return if return_tokens is None else return_tokens[t]
    x[1:3 * n:3] = vocab.state_offset + states[t]
    x[2:3 * n:3] = vocab.action_offset + actions[t]
    y = np.append(x[1:], vocab.pad)
    w = np.zeros(3 * steps, np.float32)
    w[1:3 * n:3] = 1.0  # the state s_t's position predicts a_t
    return x, y, w


def batch(
    data: Episodes,
    return_tokens: list[np.ndarray] | None,
    steps: int,
    vocab: Vocabulary,
    rng: np.random.Generator,
    batch_size: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``batch_size`` windows whose first timestep is drawn uniformly over all timesteps of the
    dataset: ``(x, y, w)``, each ``(batch_size, 3 steps)``."""
    lengths = data.lengths
    flat = rng.integers(int(lengths.sum()), size=batch_size)
    ends = np.cumsum(lengths)
    episode = np.searchsorted(ends, flat, side="right")
    start = flat - (ends[episode] - lengths[episode])
    rows = [window(data.states[e], data.actions[e],
                   None if return_tokens is None else return_tokens[e], int(s), steps, vocab)
            for e, s in zip(episode, start)]
    return tuple(np.stack(column) for column in zip(*rows))  # type: ignore[return-value]


def without_returns(x: np.ndarray, vocab: Vocabulary) -> tuple[np.ndarray, np.ndarray]:
    """Behaviour cloning's ``(x, y)`` of the same windows ``x`` ``(B, 3K)``: every return token
    replaced by ``vocab.no_return`` (padding stays), targets shifted as in :func:`window`."""
    x = np.array(x, copy=True)
    returns = x[:, 0::3]
    x[:, 0::3] = np.where(returns == vocab.pad, vocab.pad, vocab.no_return)
    y = np.concatenate([x[:, 1:], np.full((len(x), 1), vocab.pad, x.dtype)], axis=1)
    return x, y
