"""RL for language models (outline 2.3, 3.1.4-3.1.5): the GPT as a policy, and the learner.

    log pi(y_t | x, y_<t) = log softmax(LN_f(h_L) W_te^T)_t [y_t]    (the tied head)
    V(s_t) = LN_f(h_L)_t w + b                                      (ValueHead: PPO's value)
    score(y) = V at y's last completion token                       (a reward model's score)

The objectives are in ``objectives.py`` beside this file; the learner's framework-neutral
half (the update's checks, the loss of each objective, the statistics) is
``core/learners/rlhf.py``: ``RLHFLearner`` here adds only the tensors, the forward pass and
the gradient step. The float64 oracle is ``core/reference/rlhf_policy.py``; the twin in the
other backend has the same names, order and comments (``duetrl diff rlhf``).
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

import duetrl.backends.torch.objectives as objectives
from duetrl.backends.torch.gpt import GPT
from duetrl.backends.torch.objectives import gather_log_probs, last_token_index
from duetrl.backends.torch.optim import Adam, minimize
from duetrl.backends.torch.runtime import resolve_dtype
from duetrl.backends.torch.weights import import_params
from duetrl.core.constants import GRAD_CLIP_NORM
from duetrl.core.interfaces.gpt_config import check_token_ids
from duetrl.core.interfaces.rlhf import init_value_head_params
from duetrl.core.learners.rlhf import RLHFLearnerBase

# ---------------------------------------------------------------------------------------------
# The GPT as a policy, and a scalar head on its last hidden state
# ---------------------------------------------------------------------------------------------


def hidden_states(model: GPT, tokens: Tensor | np.ndarray) -> Tensor:
    """LN_f(h_L) (B, T, D) of ``tokens``: ``GPT.hidden_states``, bad input named ``tokens``."""
    idx = torch.as_tensor(tokens)
    check_token_ids(idx.shape, model.config, "tokens", idx)
    return model.hidden_states(idx)


def token_log_probs(model: GPT, tokens: Tensor | np.ndarray) -> Tensor:
    """log pi(tokens[:, t+1] | tokens[:, :t+1]): (B, T) ids -> (B, T-1), differentiable."""
    tokens = torch.as_tensor(tokens)
    return gather_log_probs(model(tokens[:, :-1]), tokens[:, 1:])  # (B, T-1)


@torch.inference_mode()
def inference_log_probs(model: GPT, tokens: np.ndarray) -> np.ndarray:
    """token_log_probs without gradient, as NumPy (B, T-1): the rollout's reference pass.

    Under ``torch.inference_mode()``: no autograd graph is recorded."""
    tokens = np.asarray(tokens, np.int64)
    check_token_ids(tokens.shape, model.config, "tokens", tokens)
    return token_log_probs(model, torch.as_tensor(tokens)).numpy()


@torch.inference_mode()
def inference_values(model: GPT, value_head: ValueHead, tokens: np.ndarray) -> np.ndarray:
    """V(s_t) (B, T-1) of ``value_head`` on ``model``'s hidden states, without gradient, as
    NumPy (PPO's old values). Under ``torch.inference_mode()``, as above."""
    tokens = np.asarray(tokens, np.int64)
    check_token_ids(tokens.shape, model.config, "tokens", tokens)
    return value_head(hidden_states(model, torch.as_tensor(tokens)[:, :-1])).numpy()


def token_entropy(logits: Tensor) -> Tensor:
    """H = -sum_v p_v log p_v of each next-token distribution: (..., V) -> (...)."""
    logp = F.log_softmax(logits, dim=-1)
    return -torch.sum(torch.exp(logp) * logp, dim=-1)


def policy_outputs(
    model: GPT, tokens: Tensor, value_head: ValueHead | None = None
) -> tuple[Tensor, Tensor, Tensor | None]:
    """One forward pass: (log-probs, entropies, values or None), each (B, T-1)."""
    hidden = hidden_states(model, tokens[:, :-1])  # (B, T-1, D)
    logits = F.linear(hidden, model.wte.weight)  # (B, T-1, V): the tied head
    logp = gather_log_probs(logits, tokens[:, 1:])  # log pi(y_t), (B, T-1)
    values = None if value_head is None else value_head(hidden)  # V(s_t), (B, T-1)
    return logp, token_entropy(logits), values


class ValueHead(nn.Module):
    """A scalar head v = h w + b on the GPT's last hidden state (PPO's value, a reward model).

    Args:
        n_embd: width D of the hidden state.
        dtype: parameter dtype (``"float32"`` by default).
        seed: seed of the NumPy initialiser (core/interfaces/rlhf.py init_value_head_params);
            None skips it.

    Example:
        >>> head = ValueHead(16)
        >>> head(torch.zeros(2, 5, 16)).shape  # (B, T, D) -> (B, T)
        torch.Size([2, 5])
    """

    def __init__(
        self, n_embd: int, dtype: str | None = None, seed: int | None = 0
    ) -> None:
        super().__init__()
        self.linear = nn.Linear(n_embd, 1, dtype=resolve_dtype(dtype))
        if seed is not None:
            import_params(self, init_value_head_params(n_embd, seed, dtype or "float32"))

    def forward(self, hidden: Tensor) -> Tensor:
        return self.linear(hidden)[..., 0]  # (B, T, D) -> (B, T)


def sequence_scores(values: Tensor, mask: Tensor | np.ndarray) -> Tensor:
    """A reward model's score: values[b, last completion token]; (B, T), (B, T-1) -> (B,)."""
    last = last_token_index(torch.as_tensor(mask)) + 1  # mask column t flags token t + 1
    return torch.gather(values, 1, last[:, None])[:, 0]  # (B,)


# ---------------------------------------------------------------------------------------------
# The gradient step the core training loop calls
# ---------------------------------------------------------------------------------------------


class PolicyWithHead(nn.Module):
    """The trainable parts of one update: the GPT and, for PPO or a reward model, its head."""

    def __init__(self, policy: GPT, value_head: ValueHead | None = None) -> None:
        super().__init__()
        self.policy = policy
        self.value_head = value_head


class RLHFLearner(RLHFLearnerBase):
    """The policy (and head), its Adam, and one gradient step per call of :meth:`update`.

    Args:
        policy: a ``GPT`` (for ``reward_model``: the reward model's trunk).
        value_head: a ``ValueHead`` for ``ppo`` and ``reward_model``, else None.
        learning_rate: Adam's step size (the loop may change ``self.learning_rate``).
        max_grad_norm: clip the global gradient norm to this (None: no clipping).
        weight_decay: AdamW's decoupled weight decay of matrices (0: Adam).

    ``update`` and the objectives are ``core/learners/rlhf.py``'s. Dropout is switched off
    (torch ``eval()``, Keras ``training=False``): the ratio pi / pi_old must be exactly 1
    before the first step of each batch.

    Example:
        >>> learner = RLHFLearner(GPT(config), ValueHead(config.n_embd), learning_rate=1e-3)
        >>> stats = learner.update(batch, "grpo", beta=0.04)  # loss, grad_norm, kl, ...
    """

    objectives = objectives

    def __init__(
        self,
        policy: GPT,
        value_head: ValueHead | None = None,
        learning_rate: float = 1e-4,
        max_grad_norm: float | None = GRAD_CLIP_NORM,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(policy, value_head, learning_rate)
        self.trainable = PolicyWithHead(policy, value_head)
        self.optimizer = Adam(self.trainable, max_grad_norm, weight_decay)
        self.compiled_step = self._step  # PyTorch runs eagerly: nothing to compile
        self.dtype = policy.wte.weight.dtype

    def _step(
        self, objective: str, batch: dict, coefficients: dict, learning_rate: float
    ) -> dict[str, Tensor]:
        """Loss, gradients, clipping and Adam: the step (PyTorch runs it eagerly as written)."""
        self.trainable.eval()  # dropout off
        return minimize(self.optimizer, lambda: self.objective_loss(objective, batch, coefficients),
                        learning_rate)

    def _as_tensor(self, value: np.ndarray, floating: bool) -> Tensor:
        return torch.as_tensor(value).to(self.dtype if floating else torch.int64)

    def _step_learning_rate(self) -> float:
        return self.learning_rate  # a float: nothing is traced

    def _statistics(self) -> AbstractContextManager:
        return torch.no_grad()  # statistics: no gradient flows through them

    def _policy_outputs(self, tokens: Tensor, value_head: ValueHead | None = None) -> tuple:
        return policy_outputs(self.policy, tokens, value_head)

    def _token_log_probs(self, tokens: Tensor) -> Tensor:
        return token_log_probs(self.policy, tokens)

    def _sequence_scores(self, tokens: Tensor, mask: Tensor) -> Tensor:
        return sequence_scores(self.value_head(hidden_states(self.policy, tokens)), mask)
