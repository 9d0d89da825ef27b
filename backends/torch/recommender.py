"""The LM-based recommender (outline 6.2.2-6.2.3; Chen et al., WSDM 2019): the GPT over a
session's item tokens as the policy, its behaviour head, and the top-K off-policy corrected
REINFORCE step.

    h_t         = LN_f(h_L) at the state position of s_t           (the user state)
    pi(. | s_t) = softmax(h_t W_te[items]^T)                       (the tied head's item rows)
    beta(. | s_t) = softmax(sg(h_t) K_beta + b_beta)               (its own head, trunk untouched)
    w = min(pi / beta, c);  lambda_K = K (1 - pi)^(K - 1)
    L = -1/M sum_n m_n sg[f_n] R_n log pi(a_n | s_n) - 1/M sum_n m_n log beta(a_n | s_n)

f_n is 1 (reinforce), w_n (off_policy) or lambda_n w_n (top_k); ``supervised`` replaces the first
term by next-item cross-entropy. The catalogue, the simulator, the logs and the run are
host-side, once, in ``core/cases/recommender``; this file holds only the tensors. The float64
oracle is ``core/reference/recommender.py``; the twin in the other backend has the same names,
order and comments (``duetrl diff recommender``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from duetrl.backends.torch.gpt import GPT
from duetrl.backends.torch.objectives import gather_log_probs
from duetrl.backends.torch.optim import Adam, minimize
from duetrl.backends.torch.runtime import resolve_dtype
from duetrl.backends.torch.weights import import_params
from duetrl.core.constants import GRAD_CLIP_NORM
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.recommender import (
    ITEM_OFFSET,
    PROPENSITIES,
    WEIGHT_CAP,
    check_behaviour_probs,
    check_correction,
    check_events,
    check_finite,
    check_items,
    init_behaviour_head_params,
)
from duetrl.core.interfaces.rlhf import check_choice, check_non_negative


class RecommenderPolicy(nn.Module):
    """The GPT trunk, the policy's softmax over the catalogue and the behaviour head.

    Args:
        config: the GPT's configuration (its vocabulary holds the item tokens).
        num_items: N, the catalogue's size; item a is token ``item_offset + a``.
        item_offset: the first item token.
        dtype: parameter dtype (``"float32"`` by default).
        seed: seed of the NumPy initialisers (None: skip them).

    Example:
        >>> policy = RecommenderPolicy(config, num_items=48)
        >>> logits, behaviour_logits = policy(tokens, positions)  # (B, E, N) each
    """

    def __init__(
        self,
        config: GPTConfig,
        num_items: int,
        item_offset: int = ITEM_OFFSET,
        dtype: str | None = None,
        seed: int | None = 0,
    ) -> None:
        super().__init__()
        if item_offset + num_items > config.vocab_size:
            raise ValueError(
                f"num_items: expected item_offset + num_items <= vocab_size "
                f"{config.vocab_size}, got {item_offset} + {num_items}"
            )
        self.num_items, self.item_offset = num_items, item_offset
        self.gpt = GPT(config, dtype, seed)
        self.behaviour = nn.Linear(config.n_embd, num_items, dtype=resolve_dtype(dtype))
        if seed is not None:
            params = init_behaviour_head_params(config.n_embd, num_items, seed, dtype or "float32")
            import_params(self.behaviour, params)

    def forward(self, tokens: Tensor, positions: Tensor) -> tuple[Tensor, Tensor]:
        # the user states h_t (B, E, D); pi's logits use the tied head's item rows (N, D)
        hidden = self.gpt.hidden_states(tokens)[:, positions]
        items = self.gpt.wte.weight[self.item_offset : self.item_offset + self.num_items]
        logits = hidden @ items.T  # (B, E, N)
        # beta's own head reads sg(h_t): the behaviour loss trains the head, never the trunk
        behaviour_logits = self.behaviour(hidden.detach())
        return logits, behaviour_logits


@torch.inference_mode()
def item_probabilities(
    policy: RecommenderPolicy, tokens: np.ndarray, positions: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(pi, beta) (B, E, N) as NumPy float64, without gradient: evaluation's forward pass."""
    policy.eval()  # dropout off
    logits, behaviour_logits = policy(torch.as_tensor(tokens), torch.as_tensor(positions))
    pi, beta = F.softmax(logits, dim=-1), F.softmax(behaviour_logits, dim=-1)
    return pi.double().numpy(), beta.double().numpy()


def top_k_multiplier(pi: Tensor, k: int) -> Tensor:
    """lambda_K = K (1 - pi)^(K - 1): the slate's d alpha_K / d pi, alpha_K = 1 - (1 - pi)^K."""
    return k * (1.0 - pi) ** (k - 1)


def importance_weights(pi: Tensor, beta: Tensor, cap: float) -> Tensor:
    """w = min(pi / beta, c): the cap keeps an item beta rarely shows from taking over."""
    return torch.clamp(pi / beta, max=cap)


def event_weights(pi: Tensor, beta: Tensor, method: str, cap: float, k: int) -> Tensor:
    """f_n: 1 (reinforce), w_n (off_policy) or lambda_n w_n (top_k), cut from the graph."""
    # sg[.]: a weight, not a path for the gradient
    pi, beta = pi.detach(), beta.detach()
    if method == "reinforce":
        return torch.ones_like(pi)
    weights = importance_weights(pi, beta, cap)
    return weights * top_k_multiplier(pi, k) if method == "top_k" else weights


def corrected_loss(
    logits: Tensor,
    actions: Tensor,
    rewards: Tensor,
    beta: Tensor,
    mask: Tensor,
    method: str = "top_k",
    cap: float = WEIGHT_CAP,
    k: int = 2,
) -> Tensor:
    """L_pi = -1/M sum_n m_n sg[f_n] R_n log pi(a_n | s_n): logits (B, E, N), the rest (B, E)."""
    check_events(mask, actions=actions, rewards=rewards, beta=beta)
    check_correction(method, cap, k)
    # BEGIN SOLUTION
    logp = gather_log_probs(logits, actions)  # log pi(a_n | s_n), (B, E)
    f = event_weights(torch.exp(logp), beta, method, cap, k)
    return -torch.sum(mask * f * rewards * logp) / torch.sum(mask)
    # END SOLUTION


def behaviour_loss(behaviour_logits: Tensor, actions: Tensor, mask: Tensor) -> Tensor:
    """L_beta = -1/M sum_n m_n log beta(a_n | s_n): the behaviour head's cross-entropy."""
    check_events(mask, actions=actions)
    return -torch.sum(mask * gather_log_probs(behaviour_logits, actions)) / torch.sum(mask)


def next_item_loss(logits: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
    """L_next = -1/M sum_n m_n log pi(h_{n+1} | s_n): supervised next-item prediction."""
    check_events(mask, targets=targets)
    return -torch.sum(mask * gather_log_probs(logits, targets)) / torch.sum(mask)


class RecommenderLearner:
    """The policy and its behaviour head, one Adam, one step per :meth:`update`.

    Args:
        policy: a :class:`RecommenderPolicy`.
        method: ``supervised``, ``reinforce``, ``off_policy`` or ``top_k``.
        learning_rate: Adam's step size (the loop may change ``self.learning_rate``).
        cap: c of w = min(pi / beta, c).
        k: K of lambda_K, the slate size.
        propensity: beta of the weight from the behaviour head (``learned``, the paper's) or
            from the logs (``logged``).
        max_grad_norm: clip the global gradient norm to this (None: no clipping).

    Example:
        >>> learner = RecommenderLearner(policy, "top_k", 1e-3, k=4)
        >>> stats = learner.update(tokens, positions, actions, rewards, propensities,
        ...                        next_items, mask)
    """

    def __init__(
        self,
        policy: RecommenderPolicy,
        method: str,
        learning_rate: float = 1e-3,
        cap: float = WEIGHT_CAP,
        k: int = 2,
        propensity: str = "learned",
        max_grad_norm: float | None = GRAD_CLIP_NORM,
    ) -> None:
        check_correction(method, cap, k)
        check_choice("propensity", propensity, PROPENSITIES)
        check_non_negative("learning_rate", learning_rate)
        self.policy, self.method, self.learning_rate = policy, method, learning_rate
        self.cap, self.k, self.propensity = float(cap), int(k), propensity
        self.optimizer = Adam(policy, max_grad_norm)
        self.compiled_step = self._step  # PyTorch runs eagerly: nothing to compile
        self.dtype = policy.gpt.wte.weight.dtype

    def update(
        self,
        tokens: np.ndarray,
        positions: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        propensities: np.ndarray,
        next_items: np.ndarray,
        mask: np.ndarray,
    ) -> dict[str, float]:
        """One step on B sessions ``tokens`` (B, T) whose E states sit at ``positions`` (E,);
        per event (B, E): the shown ``actions``, ``rewards``, the logged ``propensities``
        beta(a | s), the user's ``next_items`` and the ``mask``.

        Returns floats: ``loss``, ``grad_norm`` (before clipping), ``policy_loss``,
        ``behaviour_loss``, ``weight`` (the mean f over the events).
        """
        check_events(mask, actions=actions, rewards=rewards, propensities=propensities,
                     next_items=next_items)  # fmt: skip
        check_items("actions", actions, self.policy.num_items)
        check_items("next_items", next_items, self.policy.num_items)
        check_behaviour_probs("propensities", propensities)
        check_finite("rewards", rewards)
        floats = [torch.as_tensor(np.asarray(x)).to(self.dtype)
                  for x in (rewards, propensities, mask)]  # fmt: skip
        stats = self.compiled_step(
            torch.as_tensor(np.asarray(tokens, np.int64)),
            torch.as_tensor(np.asarray(positions, np.int64)),
            torch.as_tensor(np.asarray(actions, np.int64)),
            torch.as_tensor(np.asarray(next_items, np.int64)),
            *floats,
            self.learning_rate,
        )
        return {name: float(value) for name, value in stats.items()}

    def _step(
        self,
        tokens: Tensor,
        positions: Tensor,
        actions: Tensor,
        next_items: Tensor,
        rewards: Tensor,
        propensities: Tensor,
        mask: Tensor,
        learning_rate: float,
    ) -> dict[str, Tensor]:
        """Loss, gradients, clipping and Adam (PyTorch runs it eagerly as written)."""
        self.policy.eval()  # dropout off: pi must be the policy whose weights we correct

        def loss_and_stats() -> tuple[Tensor, dict[str, Tensor]]:
            logits, behaviour_logits = self.policy(tokens, positions)
            beta_loss = behaviour_loss(behaviour_logits, actions, mask)
            if self.method == "supervised":
                policy_loss = next_item_loss(logits, next_items, mask)
                weight = torch.ones_like(policy_loss)  # every event counts once
            else:
                beta = propensities  # the logged beta(a | s), or the head's estimate of it
                if self.propensity == "learned":
                    beta = torch.exp(gather_log_probs(behaviour_logits, actions))
                policy_loss = corrected_loss(logits, actions, rewards, beta, mask, self.method,
                                             self.cap, self.k)  # fmt: skip
                # statistics: no gradient flows through them
                with torch.no_grad():
                    pi = torch.exp(gather_log_probs(logits, actions))
                    f = event_weights(pi, beta, self.method, self.cap, self.k)
                    weight = torch.sum(mask * f) / torch.sum(mask)
            stats = {"policy_loss": policy_loss, "behaviour_loss": beta_loss, "weight": weight}
            return policy_loss + beta_loss, stats

        return minimize(self.optimizer, loss_and_stats, learning_rate)
