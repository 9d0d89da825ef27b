"""Pretraining (outline 4.1.3): the loss and one AdamW training step.

    L(theta) = -1/(B T) sum_{b,t} log p_theta(x_{b,t+1} | x_{b,<=t})

The loop around the step (batches, learning-rate schedule, evaluation, checkpoints) lives once
in ``core/lm/train.py``; this file holds only what is made of tensors (its twin: ``duetrl
diff training``). The float64 oracles are ``core/reference/gpt.py`` (loss) and
``core/reference/optim.py`` (clipping and the update).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from duetrl.backends.torch.gpt import GPT
from duetrl.backends.torch.optim import Adam
from duetrl.core.constants import ADAMW_WEIGHT_DECAY, GRAD_CLIP_NORM


def cross_entropy_loss(
    logits: Tensor, targets: Tensor, weights: Tensor | None = None
) -> Tensor:
    """Mean next-token cross-entropy of ``logits`` (B, T, V) against ``targets`` (B, T).

    With ``weights`` (B, T): sum(w * ce) / sum(w), e.g. only the positions whose target is an
    action (the Decision Transformer); None: every position counts the same (the plain mean).
    """
    losses = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
    if weights is None:
        return losses.mean()  # (B*T,) -> ()
    weights = weights.flatten().to(losses.dtype)  # (B*T,)
    return (weights * losses).sum() / weights.sum()  # (B*T,) -> ()


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

    def _train_step(
        self, x: Tensor, y: Tensor, lr: float, weights: Tensor | None, *inputs: Tensor
    ) -> tuple:
        # ``inputs``: what else the model reads (a MaskedLM: its padding mask, encoder.py)
        self.model.train()
        self.model.zero_grad(set_to_none=True)
        loss = cross_entropy_loss(self.model(x, *inputs), y, weights)
        loss.backward()
        grads = [p.grad for p in self.optimizer.parameters]
        grad_norm = self.optimizer.apply_gradients(grads, lr)  # clips, then updates
        return loss.detach(), grad_norm

    @torch.no_grad()
    def _eval_loss(self, x: Tensor, y: Tensor, weights: Tensor | None) -> Tensor:
        self.model.eval()
        return cross_entropy_loss(self.model(x), y, weights)

    def train_step(
        self, x: np.ndarray, y: np.ndarray, lr: float, weights: np.ndarray | None = None
    ) -> tuple[float, float]:
        """Forward, backward, clip, update on a batch ``x``, ``y`` (B, T) of token ids.

        ``weights`` (B, T): the loss is sum(w * ce) / sum(w) (None: the mean over every position).

        Returns:
            ``(loss, gradient norm before clipping)`` as floats.
        """
        x, y = torch.as_tensor(np.asarray(x)), torch.as_tensor(np.asarray(y))
        w = None if weights is None else torch.as_tensor(np.asarray(weights))
        loss, grad_norm = self._train_step(x, y, lr, w)
        return float(loss), float(grad_norm)

    def eval_loss(self, x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> float:
        """Mean (or ``weights``-weighted) cross-entropy on a batch, dropout off."""
        x, y = torch.as_tensor(np.asarray(x)), torch.as_tensor(np.asarray(y))
        w = None if weights is None else torch.as_tensor(np.asarray(weights))
        return float(self._eval_loss(x, y, w))
