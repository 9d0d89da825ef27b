"""Tiny "identity" environments (Stable-Baselines3's favourite learning test), for Gymnasium."""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class IdentityEnv(gym.Env):
    """Observe the one-hot code of a random target in {0, ..., n-1}; reward 1 for naming it.

    :param n: number of targets (= actions).
    """

    metadata = {"render_modes": []}

    def __init__(self, n: int = 4):
        self.n = n
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(n,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(n)
        self.target = 0

    def _observation(self) -> np.ndarray:
        return np.eye(self.n, dtype=np.float32)[self.target]

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.target = int(self.np_random.integers(self.n))
        return self._observation(), {}

    def step(self, action):
        reward = float(int(action) == self.target)
        self.target = int(self.np_random.integers(self.n))
        return self._observation(), reward, False, False, {}


class IdentityContinuousEnv(gym.Env):
    """Observe a target x in [-1, 1]; act with a in [-1, 1]; reward -(a - x)^2."""

    metadata = {"render_modes": []}

    def __init__(self):
        self.observation_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.target = np.zeros(1, dtype=np.float32)

    def _draw(self) -> np.ndarray:
        self.target = self.np_random.uniform(-1.0, 1.0, size=(1,)).astype(np.float32)
        return self.target.copy()

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        return self._draw(), {}

    def step(self, action):
        reward = -float(np.sum((np.asarray(action, dtype=np.float64) - self.target) ** 2))
        return self._draw(), reward, False, False, {}
