"""The language-model contract (outline 2.1, 4.1.3, 9.1): what both backends provide.

=================  ===========================  =========================================
Symbol             Shape                        Description
=================  ===========================  =========================================
idx                (batch, time) int            token ids, 1 <= time <= block_size
logits             (batch, time, vocab_size)    next-token scores, ``GPT(config)(idx)``
targets            (batch, time) int            idx shifted left by one
loss               ()                           -mean log softmax(logits)[targets]
cache              (n_layer, 2, B, heads,       keys and values of past positions
                   block_size, head_dim)
=================  ===========================  =========================================

Every backend exports the same names: ``GPT`` (with ``from_gpt2``), ``Block``, ``MLP``,
``cross_entropy_loss``, ``LMTrainer``, ``new_kv_cache``, ``split_heads``,
``cached_self_attention``, ``forward_with_cache``, ``Decoder`` and ``generate``.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

LM_NAMES: tuple[str, ...] = (
    "GPT",
    "Block",
    "MLP",
    "cross_entropy_loss",
    "LMTrainer",
    "new_kv_cache",
    "split_heads",
    "cached_self_attention",
    "forward_with_cache",
    "Decoder",
    "generate",
)
"""The public language-model names every backend package exports."""


class LanguageModel(Protocol):
    """``GPT(config, dtype=None, seed=0)``: token ids in, logits out."""

    config: Any

    def __call__(self, idx: Any) -> Any: ...

    def num_parameters(self) -> int: ...

    def get_config(self) -> dict: ...


class LanguageModelTrainer(Protocol):
    """``LMTrainer(model, weight_decay, max_grad_norm)``: the backend's gradient step, which
    ``duetrl.core.lm.train.LMRun`` calls (a run of ``duetrl.core.run``)."""

    optimizer: Any

    def train_step(self, x: np.ndarray, y: np.ndarray, lr: float) -> tuple[float, float]: ...

    def eval_loss(self, x: np.ndarray, y: np.ndarray) -> float: ...
