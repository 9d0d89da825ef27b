"""Pretraining in TensorFlow + Keras 3 (outline 4.1.3): the loss, AdamW and one training step.

    L(theta) = -1/(B T) sum_{b,t} log p_theta(x_{b,t+1} | x_{b,<=t})

The loop around the step (batches, learning-rate schedule, evaluation, checkpoints) lives once
in ``core/lm/train.py``; this file holds only what is made of tensors. Compare with
``backends/torch/training.py``; the float64 oracles are ``core/reference/gpt.py`` (loss) and
``core/reference/adamw.py`` (clipping and the update).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from backends.tf.gpt import GPT
from backends.tf.weights import _canonical_variables
from core.constants import (
    ADAM_BETA1,
    ADAM_BETA2,
    ADAM_EPS,
    ADAMW_WEIGHT_DECAY,
    CLIP_NORM_EPS,
    GRAD_CLIP_NORM,
)


def cross_entropy_loss(logits: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
    """Mean next-token cross-entropy of ``logits`` (B, T, V) against ``targets`` (B, T)."""
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)
    return tf.reduce_mean(losses)  # (B, T) -> ()


class AdamW:
    """AdamW with every constant pinned (core.constants), decay only on matrices.

    Keras' ``AdamW`` adds epsilon to sqrt(v) before the bias correction of v (so its effective
    eps differs from torch's); this one computes exactly ``core/reference/adamw.py`` (eps added
    to sqrt(v_hat)), with kernels and embeddings decaying, biases and LayerNorm parameters not.
    """

    def __init__(self, model: GPT, weight_decay: float = ADAMW_WEIGHT_DECAY) -> None:
        self.named = list(_canonical_variables(model))
        self.weight_decay = weight_decay
        self.m = [tf.Variable(tf.zeros_like(v), trainable=False) for _, v in self.named]
        self.v = [tf.Variable(tf.zeros_like(v), trainable=False) for _, v in self.named]
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False)

    def apply(self, grads: list[tf.Tensor], lr: tf.Tensor) -> None:
        """One update with learning rate ``lr`` (a tensor) from ``grads`` (in variable order)."""
        self.step.assign_add(1)
        for (_, variable), m, v, g in zip(self.named, self.m, self.v, grads):
            dtype = variable.dtype
            step, lr_ = tf.cast(self.step, dtype), tf.cast(lr, dtype)
            decay = self.weight_decay if len(variable.shape) >= 2 else 0.0
            variable.assign(variable * (1.0 - lr_ * decay))  # decoupled weight decay
            m.assign(ADAM_BETA1 * m + (1.0 - ADAM_BETA1) * g)
            v.assign(ADAM_BETA2 * v + (1.0 - ADAM_BETA2) * g * g)
            m_hat = m / (1.0 - ADAM_BETA1**step)
            v_hat = v / (1.0 - ADAM_BETA2**step)
            variable.assign_sub(lr_ * m_hat / (tf.sqrt(v_hat) + ADAM_EPS))

    @property
    def step_count(self) -> int:
        """Number of updates applied so far."""
        return int(self.step.numpy())

    def state_arrays(self) -> dict[str, np.ndarray]:
        """``{"m.<name>": array, "v.<name>": array}`` in canonical layouts (for checkpoints)."""
        arrays = {}
        for (name, _), m, v in zip(self.named, self.m, self.v):
            arrays[f"m.{name}"], arrays[f"v.{name}"] = np.array(m.numpy()), np.array(v.numpy())
        return arrays

    def load_state_arrays(self, arrays: Mapping[str, np.ndarray], step: int) -> None:
        """Restore the moments from :meth:`state_arrays` and the update count ``step``."""
        for (name, variable), m, v in zip(self.named, self.m, self.v):
            m.assign(np.asarray(arrays[f"m.{name}"]).astype(variable.dtype))
            v.assign(np.asarray(arrays[f"v.{name}"]).astype(variable.dtype))
        self.step.assign(int(step))


class LMTrainer:
    """One model, its optimiser, and the compiled steps the core training loop calls.

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
        self.optimizer = AdamW(model, weight_decay)
        self.max_grad_norm = max_grad_norm
        self.compiled_train_step = tf.function(self._train_step)  # traced once per batch shape
        self.compiled_eval_loss = tf.function(self._eval_loss)

    def _train_step(self, x, y, lr):
        variables = [v for _, v in self.optimizer.named]
        with tf.GradientTape() as tape:
            loss = cross_entropy_loss(self.model(x, training=True), y)
        grads = [tf.convert_to_tensor(g) for g in tape.gradient(loss, variables)]
        grad_norm = tf.sqrt(tf.add_n([tf.reduce_sum(g * g) for g in grads]))
        if self.max_grad_norm is not None:
            # g <- g * min(1, max_norm / (||g|| + 1e-6)), torch's formula (core.constants)
            coefficient = tf.minimum(
                tf.ones_like(grad_norm), self.max_grad_norm / (grad_norm + CLIP_NORM_EPS)
            )
            grads = [g * coefficient for g in grads]
        self.optimizer.apply(grads, lr)
        return loss, grad_norm

    def _eval_loss(self, x, y):
        return cross_entropy_loss(self.model(x, training=False), y)

    def train_step(self, x: np.ndarray, y: np.ndarray, lr: float) -> tuple[float, float]:
        """Forward, backward, clip, update on a batch ``x``, ``y`` (B, T) of token ids.

        Returns:
            ``(loss, gradient norm before clipping)`` as floats.
        """
        x, y = tf.convert_to_tensor(np.asarray(x)), tf.convert_to_tensor(np.asarray(y))
        lr = tf.constant(lr, tf.float64)  # a tensor, not a Python float: no retracing
        loss, grad_norm = self.compiled_train_step(x, y, lr)
        return float(loss), float(grad_norm)

    def eval_loss(self, x: np.ndarray, y: np.ndarray) -> float:
        """Mean cross-entropy on a batch, dropout off."""
        x, y = tf.convert_to_tensor(np.asarray(x)), tf.convert_to_tensor(np.asarray(y))
        return float(self.compiled_eval_loss(x, y))
