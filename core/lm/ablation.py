"""An ablation of the pretraining recipe (outline 4.1.3): take one ingredient away at a time.

The full recipe is :class:`duetrl.core.lm.train.TrainConfig`'s: AdamW (decoupled weight decay
on matrices), a linear warm-up then a cosine decay of the learning rate, and global-norm
clipping of the gradient. Each variant changes only the fields it names:

    full          the recipe as given
    no_warmup     warmup_steps = 0                   (the first step at the peak rate)
    no_clip       max_grad_norm = None               (no global-norm clipping)
    adam          weight_decay = 0                   (Adam: no decoupled weight decay)
    constant_lr   warmup_steps = 0, min_lr = lr      (no schedule at all)

:func:`run_ablation` trains a fresh GPT per (variant, seed) in one backend, with the same
initial weights and the same batches for every variant of a seed (both are functions of the
seed only), and returns one row per run with its final validation loss and its curves. The
backends' own optimiser (``backends/<name>/optim.py``) has no plain SGD, so "no Adam at all"
is not a variant here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.lm.data import TokenData
from duetrl.core.lm.train import LMRun, TrainConfig

VARIANTS: tuple[str, ...] = ("full", "no_warmup", "no_clip", "adam", "constant_lr")
"""The ablation's variants, the full recipe first."""

LABELS = {"full": "full recipe", "no_warmup": "no warm-up", "no_clip": "no clipping",
          "adam": "Adam (wd 0)", "constant_lr": "constant lr"}
"""A short label of each variant, for tables and legends."""


def variant_config(base: TrainConfig, variant: str) -> TrainConfig:
    """``base`` with one ingredient of the recipe taken away (see the module's table).

    :raises ValueError: for a variant not in :data:`VARIANTS`.
    """
    if variant == "full":
        return dataclasses.replace(base)
    if variant == "no_warmup":
        return dataclasses.replace(base, warmup_steps=0)
    if variant == "no_clip":
        return dataclasses.replace(base, max_grad_norm=None)
    if variant == "adam":
        return dataclasses.replace(base, weight_decay=0.0)
    if variant == "constant_lr":
        return dataclasses.replace(base, warmup_steps=0, min_learning_rate=base.learning_rate)
    raise ValueError(f"variant: expected one of {list(VARIANTS)}, got {variant!r}")


def run_ablation(
    backend: ModuleType,
    gpt_config: GPTConfig,
    data: TokenData,
    base: TrainConfig,
    variants: Sequence[str] = VARIANTS,
    seeds: Sequence[int] = (0,),
) -> list[dict[str, Any]]:
    """Train one GPT per (variant, seed) in ``backend``; one row per run.

    Seed ``s`` fixes the initial weights (``backend.GPT(gpt_config, seed=s)``) and the batches
    (``TrainConfig.seed = s``), so the variants of one seed differ only in the recipe, and two
    backends given the same arguments see the same weights and batches.

    :param backend: ``duetrl.backends.torch`` or ``duetrl.backends.tf``.
    :param base: the full recipe; its ``seed`` is replaced by each of ``seeds``.
    :returns: ``[{"backend", "variant", "seed", "val_loss", "max_grad_norm_seen", "history"}]``
        in the order variant-major, then seed.
    :raises ValueError: for an unknown variant or an empty ``variants`` / ``seeds``.
    """
    variants, seeds = list(variants), [int(s) for s in seeds]
    if not variants or not seeds:
        raise ValueError(f"variants, seeds: expected at least one of each, got {variants!r}, "
                         f"{seeds!r}")
    configs = {v: variant_config(base, v) for v in variants}  # an unknown name fails first
    rows = []
    for variant in variants:
        for seed in seeds:
            config = dataclasses.replace(configs[variant], seed=seed)
            lm = LMRun(backend, backend.GPT(gpt_config, seed=seed), data, config)
            while not lm.finished():
                lm.step()
            history = lm.history
            rows.append({"backend": backend.NAME, "variant": variant, "seed": seed,
                         "val_loss": float(history["val_loss"][-1]),
                         "max_grad_norm_seen": float(max(history["grad_norm"])),
                         "history": history})
    return rows
