"""The settings of an RL run on a text task (``duetrl rlhf train``'s flags), and their checks.

Every field is a flag whose ``--help`` is its text (core/interfaces/settings.py); a resumed
run must keep them all but ``RESUMABLE``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from duetrl.core.checkpoint import require_same_settings
from duetrl.core.constants import GRAD_CLIP_NORM, RLHF_CLIP_EPS, RLHF_VALUE_CLIP, RLHF_VF_COEF
from duetrl.core.interfaces.rlhf import ADVANTAGE_SCALES, NORMALISATIONS, check_choice
from duetrl.core.interfaces.settings import setting
from duetrl.core.rlhf.mdp import REFERENCES, check_group_size
from duetrl.core.rlhf.tasks import get_task

ALGORITHMS = ("reinforce", "rloo", "grpo", "ppo", "dpo")
"""The objectives ``duetrl rlhf train --algo`` knows."""

GROUP_ALGORITHMS = ("rloo", "grpo", "dpo")
"""Objectives that compare completions of one prompt: they need group_size >= 2."""

RLHF_KIND = "duetrl.rlhf"
"""The ``kind`` of an RLHF checkpoint: tensor groups ``params`` (policy), ``optim``,
``reference``, ``value_head`` (PPO); metadata settings, config, update, beta, history."""

REWARD_SOURCES = ("task", "learned")
"""Where r comes from: the task's reward function, or a reward model learned from preferences
(``core/rlhf/reward_model.py``; the task's reward is then logged as ``true_reward``)."""

RESUMABLE = ("updates", "checkpoint_every")
"""Settings a resumed run may change (a longer run continues a shorter one)."""


@dataclass
class RLHFSettings:
    """Settings of an RL run on a text task (every field is a ``duetrl rlhf train`` flag)."""

    task: str = setting("sort-digits", "text task (core/rlhf/tasks.py)")
    algo: str = setting("rloo", "reinforce, rloo, grpo, ppo or dpo")
    beta: float = setting(0.01, "KL coefficient of E[r] - beta KL")
    kl_target: float = setting(0.0, "adaptive KL controller toward this KL (0: fixed beta)")
    kl_horizon: float = setting(10000.0, "adaptive controller horizon")
    reference: str = setting("pretrained", "pretrained or uniform")
    group_size: int = setting(8, "completions per prompt, k")
    # 16 prompts, lr 2e-3 and a missing-stop penalty of 0.5: the first run that teaches. With
    # the first defaults (8 prompts, lr 5e-3, no penalty) a pretrained sort-digits run lost the
    # stop token within 3-6 updates (one Adam step moved KL from 0.04 to 4.7 nats: a rare
    # run-on with a positive advantage; the reward never asks for the stop), then fell to
    # ':::::::::' (reward 0.04, KL 22 nats) and ended at '333333333' with reward 1. Measured
    # over grpo and rloo, seeds 0-3, 100 updates: no dip below the reference's 0.52, the stop
    # kept, reward 0.975-0.997 (lr 5e-3 with 16 prompts still fell to 0.01; lr 2e-3 with 8
    # prompts to 0.07 once). ``core/rlhf/reward_design.py`` shows the stop loophole in a run.
    prompts: int = setting(16, "prompts per update")
    updates: int = setting(100, "policy updates (batches sampled)")
    learning_rate: float = setting(2e-3, "Adam step size")
    warmup: int = setting(10, "updates of linear learning-rate warm-up")
    max_grad_norm: float = setting(GRAD_CLIP_NORM, "0: no clipping")
    epochs: int = setting(1, "gradient steps per batch (ppo: 4)")
    clip_eps: float = setting(RLHF_CLIP_EPS, "ratio clip (grpo, ppo)")
    normalisation: str = setting("grpo", "token loss: grpo, bnpo, dr_grpo or dapo (grpo, ppo)")
    advantage_scale: str = setting("std", "grpo advantages: std (GRPO) or none (Dr. GRPO)")
    dpo_pairs: str = setting(
        "policy", "dpo: pairs from the policy (online) or the reference (offline)"
    )
    missing_stop_penalty: float = setting(
        0.5, "subtracted from r when a completion never stops (0: the stop is free)"
    )
    gae_lambda: float = setting(0.95, "ppo: GAE lambda (gamma = 1)")
    vf_coef: float = setting(RLHF_VF_COEF, "ppo: value-loss weight")
    value_clip: float = setting(RLHF_VALUE_CLIP, "ppo: value clip range")
    n_layer: int = setting(2, "uniform reference: GPT blocks")
    n_head: int = setting(2, "uniform reference: attention heads")
    n_embd: int = setting(32, "uniform reference: model width")
    seed: int = setting(0, "seeds prompts, sampling noise and heads")
    checkpoint_every: int = setting(0, "updates between checkpoints")
    reward: str = setting(
        "task", "reward source: the task's rule, or a learned reward model (logs both)"
    )
    reward_model: str = setting("", "--reward learned: the reward model's checkpoint")

    def __post_init__(self) -> None:
        get_task(self.task)
        if self.algo not in ALGORITHMS:
            raise ValueError(f"algo: expected one of {list(ALGORITHMS)}, got {self.algo!r}")
        if self.reference not in REFERENCES:
            raise ValueError(
                f"reference: expected one of {list(REFERENCES)}, got {self.reference!r}"
            )
        if not (isinstance(self.beta, int | float) and math.isfinite(self.beta)) or self.beta < 0:
            raise ValueError(
                f"beta: expected a finite float >= 0 (the KL coefficient), got {self.beta!r}"
            )
        if not self.missing_stop_penalty >= 0:
            raise ValueError(
                f"missing_stop_penalty: expected >= 0, got {self.missing_stop_penalty!r}"
            )
        if self.kl_target < 0:
            raise ValueError(f"kl_target: expected >= 0 (0: fixed beta), got {self.kl_target!r}")
        if self.kl_target > 0 and self.beta <= 0:
            raise ValueError("beta: the adaptive KL controller needs beta > 0 to start from")
        check_group_size(self.group_size, self.algo in GROUP_ALGORITHMS, self.algo)
        for name in ("prompts", "updates", "epochs", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate: expected > 0, got {self.learning_rate!r}")
        check_choice("normalisation", self.normalisation, NORMALISATIONS)
        check_choice("advantage_scale", self.advantage_scale, ADVANTAGE_SCALES)
        check_choice("dpo_pairs", self.dpo_pairs, ("policy", "reference"))
        check_choice("reward", self.reward, REWARD_SOURCES)
        if self.reward == "learned" and not self.reward_model:
            raise ValueError(
                "reward_model: --reward learned needs a reward model checkpoint; train one with "
                f"`duetrl rlhf reward-model --task {self.task}`"
            )
        for name in ("checkpoint_every", "warmup"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}: expected an int >= 0, got {value!r}")

    @property
    def batch_size(self) -> int:
        """B = prompts x group_size completions per update."""
        return self.prompts * self.group_size


def settings_fields() -> list[dataclasses.Field]:
    """The fields of :class:`RLHFSettings`, for building command-line flags."""
    return list(dataclasses.fields(RLHFSettings))


def check_resumable(saved: dict[str, Any], settings: RLHFSettings, path: str | Path) -> None:
    """CheckpointError unless ``saved`` (a checkpoint's settings) equals ``settings`` in every
    field but :data:`RESUMABLE`; a field added since the checkpoint was written counts as its
    default."""
    defaults = {f.name: f.default for f in dataclasses.fields(RLHFSettings)}
    require_same_settings(saved, asdict(settings), str(path), RESUMABLE, defaults)
