"""The settings of an LM agent's PPO run (``duetrl agent train``'s flags), and their checks.

Every field is a flag whose ``--help`` is its text (core/interfaces/settings.py); a resumed run
must keep them all but ``RESUMABLE``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass
from typing import Any

from duetrl.core.checkpoint import require_same_settings
from duetrl.core.constants import GRAD_CLIP_NORM
from duetrl.core.interfaces.settings import setting

POLICIES = ("lm", "lm-scratch", "mlp")
"""``lm``: a GPT, initialised from ``lm_checkpoint`` when given (a pretrained LM: ``duetrl agent
pretrain``); ``lm-scratch``: the same GPT from random weights; ``mlp``: no LM, an MLP on the
bag of words of the goal and the observation's text (``mlp_hidden`` wide), logits over
``MAX_ADMISSIBLE`` masked to the admissible commands: the baseline of outline 9.3.2 (c)."""

LM_AGENT_KIND = "duetrl.lm_agent"
"""The ``kind`` of an LM agent's checkpoint: tensor groups ``params`` (the GPT),
``value_head``, ``optim``; metadata settings, config, tokenizer, counters, history."""

RESUMABLE = ("updates", "checkpoint_every", "eval_episodes")
"""Settings a resumed run may change (a longer run continues a shorter one)."""


@dataclass
class AgentSettings:
    """Settings of an LM agent trained by PPO in a text environment (``duetrl agent train``).

    The PPO defaults are the KeyDoor recipe's (100 updates at lr 3e-4, clip 0.1, entropy
    weight 0.03; with the LM of ``duetrl agent pretrain``'s defaults): small steps that keep
    what pretraining gave while PPO finds the rest (benchmarks/lm_agent.py has the figures).
    The 9.3.2 comparison (sweeps/lm_agent.toml) runs the same PPO for all three policies."""

    env: str = setting("duetrl/KeyDoor-v0", "text environment (Gymnasium id)")
    policy: str = setting("lm", "lm (a GPT, pretrained with --pretrained), lm-scratch or mlp")
    lm_checkpoint: str = setting("", "policy lm: a pretrained GPT with a word tokeniser "
                                     "(duetrl agent pretrain; also --pretrained)")
    mlp_hidden: int = setting(64, "policy mlp: hidden width")
    num_envs: int = setting(8, "episodes collected in parallel per update")
    updates: int = setting(100, "PPO updates (each one episode per environment)")
    epochs: int = setting(4, "gradient steps on each update's batch")
    learning_rate: float = setting(3e-4, "Adam step size")
    clip_eps: float = setting(0.1, "PPO ratio clip")
    vf_coef: float = setting(0.5, "value-loss weight c_V")
    ent_coef: float = setting(0.03, "entropy-bonus weight c_H")
    gamma: float = setting(0.99, "discount")
    gae_lambda: float = setting(0.95, "GAE lambda")
    normalize_advantages: bool = setting(True, "whiten each update's advantages")
    max_grad_norm: float = setting(GRAD_CLIP_NORM, "0: no clipping")
    n_layer: int = setting(2, "GPT blocks (a pretrained LM brings its own)")
    n_head: int = setting(2, "attention heads")
    n_embd: int = setting(32, "model width")
    block_size: int = setting(128, "GPT context: the longest prompt + command")
    eval_episodes: int = setting(20, "episodes of each final evaluation (greedy and sampled; "
                                     "train split and held-out split)")
    seed: int = setting(0, "seeds the weights, the episodes and the sampling noise")
    checkpoint_every: int = setting(0, "updates between checkpoints")

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"policy: expected one of {list(POLICIES)}, got {self.policy!r}")
        if self.policy in ("lm-scratch", "mlp") and self.lm_checkpoint:
            raise ValueError(f"lm_checkpoint: policy {self.policy} starts from random weights; "
                             "give --policy lm to start from a pretrained checkpoint")
        for name in ("num_envs", "updates", "epochs", "n_layer", "n_head", "n_embd", "mlp_hidden",
                     "block_size", "eval_episodes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        for name in ("seed", "checkpoint_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}: expected an int >= 0, got {value!r}")
        for name in ("learning_rate", "clip_eps", "vf_coef", "ent_coef", "max_grad_norm"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value)) or value < 0:
                raise ValueError(f"{name}: expected a finite float >= 0, got {value!r}")
        for name in ("gamma", "gae_lambda"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
                raise ValueError(f"{name}: expected a float in [0, 1], got {value!r}")


def settings_fields() -> tuple[dataclasses.Field, ...]:
    """The fields of :class:`AgentSettings`, for ``add_dataclass_flags``."""
    return dataclasses.fields(AgentSettings)


def check_resumable(saved: dict[str, Any], settings: AgentSettings, source: str) -> None:
    """CheckpointError when ``saved`` settings differ from ``settings`` beyond RESUMABLE."""
    now = asdict(settings)
    require_same_settings(saved, now, source, RESUMABLE, defaults=now)


__all__ = ["LM_AGENT_KIND", "POLICIES", "RESUMABLE", "AgentSettings", "check_resumable",
           "settings_fields"]
