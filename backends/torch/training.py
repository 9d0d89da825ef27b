"""Pretraining in PyTorch (outline 4.1.3): the loss and one AdamW training step.

    L(theta) = -1/(B T) sum_{b,t} log p_theta(x_{b,t+1} | x_{b,<=t})

The loop around the step (batches, learning-rate schedule, evaluation, checkpoints) lives once
in ``core/lm/train.py``; this file holds only what is made of tensors. Compare with
``backends/tf/training.py``; the float64 oracles are ``core/reference/gpt.py`` (loss) and
``core/reference/optim.py`` (clipping and the update).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from duetrl.backends.torch.gpt import GPT
from duetrl.backends.torch.optim import Adam
from duetrl.core.constants import ADAMW_WEIGHT_DECAY, GRAD_CLIP_NORM


def cross_entropy_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy of ``logits`` (B, T, V) against ``targets`` (B, T)."""
    vocab_size = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, vocab_size), targets.reshape(-1))  # (B*T, V)


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
        self.optimizer = Adam(model, max_grad_norm, weight_decay)  # AdamW: weight_decay > 0

    def train_step(self, x: np.ndarray, y: np.ndarray, lr: float) -> tuple[float, float]:
        """Forward, backward, clip, update on a batch ``x``, ``y`` (B, T) of token ids.

        Returns:
            ``(loss, gradient norm before clipping)`` as floats.
        """
        self.model.train()
        x, y = torch.as_tensor(x), torch.as_tensor(y)
        self.model.zero_grad(set_to_none=True)
        loss = cross_entropy_loss(self.model(x), y)
        loss.backward()
        grads = [p.grad for p in self.optimizer.parameters]
        grad_norm = self.optimizer.apply_gradients(grads, lr)  # clips, then updates
        return float(loss.detach()), float(grad_norm)

    @torch.no_grad()
    def eval_loss(self, x: np.ndarray, y: np.ndarray) -> float:
        """Mean cross-entropy on a batch, dropout off."""
        self.model.eval()
        return float(cross_entropy_loss(self.model(torch.as_tensor(x)), torch.as_tensor(y)))
