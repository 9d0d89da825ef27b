"""Pretraining in PyTorch (outline 4.1.3): the loss, AdamW and one training step.

    L(theta) = -1/(B T) sum_{b,t} log p_theta(x_{b,t+1} | x_{b,<=t})

The loop around the step (batches, learning-rate schedule, evaluation, checkpoints) lives once
in ``core/lm/train.py``; this file holds only what is made of tensors. Compare with
``backends/tf/training.py``; the float64 oracles are ``core/reference/gpt.py`` (loss) and
``core/reference/adamw.py`` (clipping and the update).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F

from backends.torch.gpt import GPT
from backends.torch.weights import _canonical_parameters
from core.constants import ADAM_BETA1, ADAM_BETA2, ADAM_EPS, ADAMW_WEIGHT_DECAY, GRAD_CLIP_NORM


def cross_entropy_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy of ``logits`` (B, T, V) against ``targets`` (B, T)."""
    vocab_size = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, vocab_size), targets.reshape(-1))  # (B*T, V)


class AdamW:
    """AdamW with every constant pinned (core.constants), decay only on matrices.

    torch's own ``torch.optim.AdamW`` computes exactly ``core/reference/adamw.py`` (eps added to
    sqrt(v_hat)); here it gets pinned betas and eps, and two parameter groups: kernels and
    embeddings decay, biases and LayerNorm parameters do not.
    """

    def __init__(self, model: GPT, weight_decay: float = ADAMW_WEIGHT_DECAY) -> None:
        self.named = [(name, p, t) for name, p, t in _canonical_parameters(model)]
        decay = [p for _, p, _ in self.named if p.dim() >= 2]
        no_decay = [p for _, p, _ in self.named if p.dim() < 2]
        groups = [
            {"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        self.optimizer = torch.optim.AdamW(
            groups, lr=0.0, betas=(ADAM_BETA1, ADAM_BETA2), eps=ADAM_EPS, foreach=True
        )

    def apply(self, lr: float) -> None:
        """One update with learning rate ``lr`` from the gradients in ``.grad``."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()

    @property
    def step_count(self) -> int:
        """Number of updates applied so far."""
        state = self.optimizer.state.get(self.named[0][1], {})
        return int(state["step"]) if "step" in state else 0

    def state_arrays(self) -> dict[str, np.ndarray]:
        """``{"m.<name>": array, "v.<name>": array}`` in canonical layouts (for checkpoints)."""
        arrays = {}
        for name, parameter, transpose in self.named:
            state = self.optimizer.state.get(parameter)
            for key, slot in (("m", "exp_avg"), ("v", "exp_avg_sq")):
                value = torch.zeros_like(parameter) if state is None else state[slot]
                value = value.detach().cpu().numpy()
                arrays[f"{key}.{name}"] = np.ascontiguousarray(value.T if transpose else value)
        return arrays

    def load_state_arrays(self, arrays: Mapping[str, np.ndarray], step: int) -> None:
        """Restore the moments from :meth:`state_arrays` and the update count ``step``."""
        for name, parameter, transpose in self.named:
            state = self.optimizer.state[parameter]
            for key, slot in (("m", "exp_avg"), ("v", "exp_avg_sq")):
                value = np.asarray(arrays[f"{key}.{name}"])
                value = np.ascontiguousarray(value.T if transpose else value)
                state[slot] = torch.tensor(value, dtype=parameter.dtype)
            state["step"] = torch.tensor(float(step))


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
        parameters = [p for _, p, _ in self.optimizer.named]
        max_norm = float("inf") if self.max_grad_norm is None else self.max_grad_norm
        # g <- g * min(1, max_norm / (||g|| + 1e-6)), torch's formula (core.constants)
        grad_norm = torch.nn.utils.clip_grad_norm_(parameters, max_norm)
        self.optimizer.apply(lr)
        return float(loss.detach()), float(grad_norm)

    @torch.no_grad()
    def eval_loss(self, x: np.ndarray, y: np.ndarray) -> float:
        """Mean cross-entropy on a batch, dropout off."""
        self.model.eval()
        return float(cross_entropy_loss(self.model(torch.as_tensor(x)), torch.as_tensor(y)))
