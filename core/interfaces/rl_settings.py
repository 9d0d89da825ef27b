"""One settings dataclass per algorithm; each field's ``help`` becomes a ``--flag`` of the CLI.

Defaults are tuned for CartPole-v1 on a 2-core CPU (``benchmarks/cartpole.py`` measures them).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from duetrl.core.interfaces.rl import check_discount, check_positive_int
from duetrl.core.interfaces.settings import setting


@dataclass
class ReinforceSettings:
    """REINFORCE (listing 5.2): one complete episode per vector environment per update."""

    num_envs: int = setting(8, "vector environments; each gives one episode per update")
    hidden_dim: int = setting(64, "width of the hidden layer of each network")
    learning_rate: float = setting(1e-2, "Adam step size")
    anneal_lr: bool = setting(False, "decay the step size linearly to 0 over --total-steps")
    gamma: float = setting(0.99, "discount factor in [0, 1]")
    normalize_advantages: bool = setting(True, "standardise returns/advantages in each batch")
    max_grad_norm: float = setting(1.0, "clip the global gradient norm to this (0 = off)")
    max_episode_steps: int = setting(500, "longest episode collected; a longer one is cut there")

    def validate(self) -> None:
        """Raise ValueError naming the first setting out of range."""
        check_discount("gamma", self.gamma)
        check_positive_int("num_envs", self.num_envs)
        check_positive_int("hidden_dim", self.hidden_dim)
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate: expected a positive number, got {self.learning_rate}")
        for name in ("gae_lambda",):
            if hasattr(self, name):
                check_discount(name, getattr(self, name))


@dataclass
class ReinforceBaselineSettings(ReinforceSettings):
    """REINFORCE with a learned baseline V(s): weight -log pi by G_t - V(s_t)."""

    num_envs: int = setting(16, "vector environments; each gives one episode per update")
    learning_rate: float = setting(2e-2, "Adam step size")
    max_grad_norm: float = setting(0.0, "clip the global gradient norm to this (0 = off)")
    vf_coef: float = setting(0.5, "weight of the value loss")
    ent_coef: float = setting(0.0, "weight of the entropy bonus")


@dataclass
class PPOSettings(ReinforceSettings):
    """PPO with the clipped objective, GAE and minibatch epochs (fixed-length rollouts)."""

    num_envs: int = setting(16, "vector environments stepped together")
    num_steps: int = setting(16, "steps per environment in each rollout")
    learning_rate: float = setting(4e-3, "Adam step size")
    anneal_lr: bool = setting(True, "decay the step size linearly to 0 over --total-steps")
    gamma: float = setting(0.98, "discount factor in [0, 1]")
    gae_lambda: float = setting(0.8, "GAE lambda in [0, 1]")
    update_epochs: int = setting(10, "passes over each rollout")
    num_minibatches: int = setting(1, "minibatches per pass")
    clip_eps: float = setting(0.2, "PPO clip range epsilon")
    vf_coef: float = setting(0.5, "weight of the value loss")
    ent_coef: float = setting(0.0, "weight of the entropy bonus")
    max_grad_norm: float = setting(0.5, "clip the global gradient norm to this (0 = off)")


SETTINGS: dict[str, type] = {
    "reinforce": ReinforceSettings,
    "reinforce_baseline": ReinforceBaselineSettings,
    "ppo": PPOSettings,
}
"""The settings class of each algorithm name."""


def make_settings(algorithm: str, **overrides) -> ReinforceSettings:
    """The algorithm's default settings with ``overrides`` applied, validated."""
    if algorithm not in SETTINGS:
        raise ValueError(f"algorithm: expected one of {list(SETTINGS)}, got {algorithm!r}")
    known = {f.name for f in dataclasses.fields(SETTINGS[algorithm])}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"settings: {algorithm} has no setting {unknown}; known: {sorted(known)}")
    settings = SETTINGS[algorithm](**overrides)
    settings.validate()
    return settings
