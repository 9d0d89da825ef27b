"""Pretraining (outline 4.1.3): the loss and one AdamW training step.

    L(theta) = -1/(B T) sum_{b,t} log p_theta(x_{b,t+1} | x_{b,<=t})

The loop around the step (batches, learning-rate schedule, evaluation, checkpoints) lives once
in ``core/lm/train.py``; this file holds only what is made of tensors (its twin: ``duetrl
diff training``). The float64 oracles are ``core/reference/gpt.py`` (loss) and
``core/reference/optim.py`` (clipping and the update).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorflow import Tensor

from duetrl.backends.tf.gpt import GPT
from duetrl.backends.tf.optim import Adam
from duetrl.core.constants import ADAMW_WEIGHT_DECAY, GRAD_CLIP_NORM

XLA_TRAIN_STEP = True
"""Compile each trainer's step with XLA (read when an ``LMTrainer`` is made). Steps run about
2x faster; the compile costs a few seconds per model, which a run of a few dozen steps never
earns back. The run-loop contract tests turn it off; the numeric tests keep it on."""


def cross_entropy_loss(
    logits: Tensor, targets: Tensor, weights: Tensor | None = None
) -> Tensor:
    """Mean next-token cross-entropy of ``logits`` (B, T, V) against ``targets`` (B, T).

    With ``weights`` (B, T): sum(w * ce) / sum(w), e.g. only the positions whose target is an
    action (the Decision Transformer); None: every position counts the same (the plain mean).
    """
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)
    if weights is None:
        return tf.reduce_mean(losses)  # (B, T) -> ()
    weights = tf.cast(weights, losses.dtype)  # (B, T)
    return tf.reduce_sum(weights * losses) / tf.reduce_sum(weights)  # (B, T) -> ()


class LMTrainer:
    """One language model, its AdamW optimiser, and the steps ``core/lm/train.py`` calls.

    Args:
        model: a ``GPT``.
        weight_decay: AdamW's decoupled weight decay (matrices only).
        max_grad_norm: clip the global gradient norm to this (None: no clipping).
    """

    def __init__(
        self,
        model: GPT,
        weight_decay: float = ADAMW_WEIGHT_DECAY,
        max_grad_norm: float | None = GRAD_CLIP_NORM,
    ) -> None:
        self.model = model
        self.optimizer = Adam(model, max_grad_norm, weight_decay)  # AdamW: weight_decay > 0
        self._train_step = tf.function(self._step, jit_compile=XLA_TRAIN_STEP)

    def _step(
        self, x: Tensor, y: Tensor, lr: Tensor, weights: Tensor | None, *inputs: Tensor
    ) -> tuple:
        # ``inputs``: what else the model reads (a MaskedLM: its padding mask, encoder.py)
        with tf.GradientTape() as tape:
            loss = cross_entropy_loss(self.model(x, *inputs, training=True), y, weights)
        grads = tape.gradient(loss, self.optimizer.parameters)
        grad_norm = self.optimizer.apply_gradients(grads, lr)  # clips, then updates
        return loss, grad_norm

    @tf.function
    def _eval_loss(self, x: Tensor, y: Tensor, weights: Tensor | None) -> Tensor:
        return cross_entropy_loss(self.model(x, training=False), y, weights)

    def train_step(
        self, x: np.ndarray, y: np.ndarray, lr: float, weights: np.ndarray | None = None
    ) -> tuple[float, float]:
        """Forward, backward, clip, update on a batch ``x``, ``y`` (B, T) of token ids.

        ``weights`` (B, T): the loss is sum(w * ce) / sum(w) (None: the mean over every position).

        Returns:
            ``(loss, gradient norm before clipping)`` as floats.
        """
        x, y = tf.convert_to_tensor(np.asarray(x)), tf.convert_to_tensor(np.asarray(y))
        w = None if weights is None else tf.convert_to_tensor(np.asarray(weights))
        lr = tf.constant(lr, tf.float64)  # a tensor, not a Python float: no retracing
        loss, grad_norm = self._train_step(x, y, lr, w)
        return float(loss), float(grad_norm)

    def eval_loss(self, x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> float:
        """Mean (or ``weights``-weighted) cross-entropy on a batch, dropout off."""
        x, y = tf.convert_to_tensor(np.asarray(x)), tf.convert_to_tensor(np.asarray(y))
        w = None if weights is None else tf.convert_to_tensor(np.asarray(weights))
        return float(self._eval_loss(x, y, w))
