"""Elementwise and row-wise functions shared by every reference (float64 NumPy)."""

from __future__ import annotations

import numpy as np


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log softmax(z)_i = z_i - log sum_j exp(z_j) along the last axis, in float64.

    Shifted by the row maximum so that exp never overflows; a ``-inf`` logit (a token filtered
    out by top-k / top-p) stays ``-inf``.
    """
    z = np.asarray(logits, dtype=np.float64)
    shifted = z - np.max(z, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))
