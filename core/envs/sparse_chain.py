"""A sparse-reward corridor (outline 2.2.3, 9.2.3): the classic trap of a learner that stops
exploring. Registered as ``duetrl/SparseChain-v0`` when :mod:`duetrl.core.envs` is imported;
``core/rl/exploration.py`` varies exploration on it.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

CHAIN_ID = "duetrl/SparseChain-v0"
"""The corridor's Gymnasium id (registered by :func:`duetrl.core.envs.register_envs`)."""

CHAIN_LENGTH, CHAIN_STEPS, NEAR_REWARD = 16, 40, 0.1


class SparseChain(gym.Env):
    """A corridor of ``n`` cells; start in cell 1; action 0 steps left, 1 steps right.

    Cell 0 ends the episode with reward ``near_reward`` (one step away); cell ``n-1`` ends it
    with reward 1 (``n-2`` steps away); every other step pays 0. The observation is the one-hot
    code of the cell. A uniformly random walk from cell 1 reaches the far end first with
    probability 1/(n-1), so a policy that stops exploring early settles for the near end.
    """

    metadata = {"render_modes": []}

    def __init__(self, n: int = CHAIN_LENGTH, near_reward: float = NEAR_REWARD) -> None:
        if int(n) < 3:
            raise ValueError(f"n: expected a corridor of at least 3 cells, got {n!r}")
        self.n, self.near_reward, self.cell = int(n), float(near_reward), 1
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(self.n,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)

    def _observation(self) -> np.ndarray:
        return np.eye(self.n, dtype=np.float32)[self.cell]

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.cell = 1
        return self._observation(), {}

    def step(self, action):
        self.cell += 1 if int(action) == 1 else -1
        if self.cell == 0:
            return self._observation(), self.near_reward, True, False, {}
        if self.cell == self.n - 1:
            return self._observation(), 1.0, True, False, {}
        return self._observation(), 0.0, False, False, {}
