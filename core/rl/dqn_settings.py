"""DQN's settings: one dataclass whose field docs become the ``--flags`` of ``duetrl train dqn``
and ``duetrl compare dqn`` (the policy-gradient ones are in core/interfaces/rl_settings.py)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from duetrl.core.interfaces.rl import check_discount, check_positive_int
from duetrl.core.interfaces.settings import setting
from duetrl.core.tabular import check_epsilon


@dataclass
class DQNSettings:
    """DQN (Mnih et al. 2015) with Double DQN and n-step returns as options.

    Defaults follow rl-baselines3-zoo's CartPole-v1 DQN (lr 2.3e-3, batch 64, 256 env steps
    then 128 gradient steps, eps 1 -> 0.04 over 16% of the budget), on 4 vector envs, with two
    changes measured on CartPole-v1: 3-step returns and a target sync every 64 gradient steps
    (twice per training phase; the zoo's effectively syncs once per phase). Both carry reward
    back faster: with 1-step returns and one sync per phase Q grows by about one reward per
    phase, and the greedy policy hovered at 80-250 for 30k+ steps on most seeds (SB3 with the
    zoo settings: 7k-27k steps on seeds 0-4; these defaults: 8k-22k, benchmarks/dqn.py).
    n-step returns of an exploring policy are biased toward its own values: for an off-policy
    oracle (Q* under a uniform behaviour) set ``n_step=1``.
    """

    num_envs: int = setting(4, "vector environments stepped together")
    hidden_dim: int = setting(128, "width of the Q-network's two hidden layers")
    learning_rate: float = setting(2.3e-3, "Adam step size")
    gamma: float = setting(0.99, "discount factor in [0, 1]")
    batch_size: int = setting(64, "transitions per gradient step")
    buffer_size: int = setting(25_000, "vector steps the replay buffer keeps (x num_envs)")
    learning_starts: int = setting(1_000, "env steps collected before the first update")
    train_freq: int = setting(64, "vector steps collected between training phases")
    gradient_steps: int = setting(128, "gradient steps per training phase")
    target_update_interval: int = setting(64, "gradient steps between target syncs")
    epsilon_start: float = setting(1.0, "exploration rate at the start, in [0, 1]")
    epsilon_final: float = setting(0.04, "exploration rate after the decay, in [0, 1]")
    exploration_fraction: float = setting(0.16, "share of --total-steps over which eps decays")
    double: bool = setting(False, "Double DQN: the online network picks a*, the target rates it")
    n_step: int = setting(3, "steps summed into each return before bootstrapping")
    max_grad_norm: float = setting(10.0, "clip the global gradient norm to this (0 = off)")
    eval_episodes: int = setting(20, "greedy episodes that decide 'solved'")
    eval_interval: int = setting(1024, "env steps between greedy evaluations")

    def validate(self) -> None:
        """Raise ValueError naming the first setting out of range."""
        check_discount("gamma", self.gamma)
        check_epsilon(self.epsilon_start, "epsilon_start")
        check_epsilon(self.epsilon_final, "epsilon_final")
        check_discount("exploration_fraction", self.exploration_fraction)
        for name in ("num_envs", "hidden_dim", "batch_size", "buffer_size", "train_freq",
                     "gradient_steps", "target_update_interval", "n_step", "eval_episodes",
                     "eval_interval"):
            check_positive_int(name, getattr(self, name))
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate: expected a positive number, got {self.learning_rate}")
        if self.buffer_size * self.num_envs < self.batch_size:
            raise ValueError(
                f"buffer_size: {self.buffer_size} steps x {self.num_envs} envs = "
                f"{self.buffer_size * self.num_envs} transitions is smaller than a batch of "
                f"{self.batch_size}; raise --buffer-size or lower --batch-size")


def make_dqn_settings(**overrides) -> DQNSettings:
    """The default settings with ``overrides`` applied, validated."""
    known = {f.name for f in dataclasses.fields(DQNSettings)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"settings: dqn has no setting {unknown}; known: {sorted(known)}")
    settings = DQNSettings(**overrides)
    settings.validate()
    return settings
