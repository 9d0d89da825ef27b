"""Analytic oracle (Stable-Baselines3 style): with reward 1 at every step and episodes only ever
*truncated* by a time limit, the true value of every state is 1 / (1 - gamma). A learner that
treated the truncation as a termination would learn values that fall towards the time limit."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from duetrl.core.interfaces.rl_settings import make_settings
from duetrl.core.rl.train import PolicyGradientTrainer


class ConstantRewardEnv(gym.Env):
    """Random observations, reward 1 whatever the action, never terminates (truncated by
    the TimeLimit the registration adds)."""

    def __init__(self):
        self.observation_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.np_random.uniform(-1, 1, 2).astype(np.float32), 1.0, False, False, {}


if "duetrl-test/ConstantReward-v0" not in gym.registry:
    gym.register("duetrl-test/ConstantReward-v0", entry_point=ConstantRewardEnv,
                 max_episode_steps=8)


@pytest.mark.parametrize("algorithm", ["ppo", "reinforce_baseline"])
def test_learned_value_is_one_over_one_minus_gamma(backend, algorithm):
    gamma = 0.8  # true value 5, while a whole 8-step episode only collects 1 + ... + 0.8^7 = 4.16
    extra = {"num_steps": 8} if algorithm == "ppo" else {}
    settings = make_settings(algorithm, gamma=gamma, num_envs=8, hidden_dim=16,
                             learning_rate=1e-2, anneal_lr=False, **extra)
    trainer = PolicyGradientTrainer(algorithm, "duetrl-test/ConstantReward-v0", backend.NAME, settings, seed=0)
    for _ in range(120):
        trainer.step()
    states = np.random.default_rng(0).uniform(-1, 1, (64, 2)).astype(np.float32)
    values = backend.to_numpy(trainer.agent.value(backend.as_tensor(states)))
    # treating truncations as terminations would give a mean near 3.3 (the 8-step sums)
    assert abs(values.mean() - 1.0 / (1.0 - gamma)) < 0.15
    assert np.abs(values - 1.0 / (1.0 - gamma)).max() < 0.75
