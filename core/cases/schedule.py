"""The learning rate of a case study's maximum-likelihood phase (dialogue and translation both
train by MLE first, then by RL from that model)."""

from __future__ import annotations

import math
from typing import Protocol


class MLESchedule(Protocol):
    """The settings the schedule reads."""

    learning_rate: float
    warmup_steps: int
    mle_steps: int


def mle_learning_rate(step: int, s: MLESchedule) -> float:
    """Linear warm-up to ``learning_rate``, then cosine decay to a tenth at the last MLE step.

        lr(t) = peak (t + 1) / W                              t < W
        lr(t) = low + (peak - low) (1 + cos(pi p)) / 2        p = min(1, (t - W) / (S - W - 1))

    with peak = ``learning_rate``, low = peak / 10, W = ``warmup_steps``, S = ``mle_steps``.
    """
    peak, low = s.learning_rate, s.learning_rate / 10
    if step < s.warmup_steps:
        return peak * (step + 1) / s.warmup_steps
    progress = min(1.0, (step - s.warmup_steps) / max(1, s.mle_steps - s.warmup_steps - 1))
    return low + (peak - low) * 0.5 * (1.0 + math.cos(math.pi * progress))
