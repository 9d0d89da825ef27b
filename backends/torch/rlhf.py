"""RL for language models (outline 2.3, 3.1.4-3.1.5): the objectives as tensors.

    k1 = -l, k2 = l^2 / 2, k3 = e^l - 1 - l,            l = log pi_ref(y_t) - log pi(y_t)
    GRPO  A_i = (r_i - mean_g) / (std_g + 1e-4);  RLOO  A_i = r_i - mean of the other k - 1
    clip  L = agg_t[-min(rho_t A, clip(rho_t, 1 - eps, 1 + eps) A)],  rho_t = pi / pi_old
    GRPO  L = agg_t[-min(rho_t A, clip(rho_t) A) + beta k3_t]
    PPO   L = L_clip + c_V mean_t[0.5 max((V - R)^2, (V_old + clip(V - V_old, -c, c) - R)^2)]
    DPO   L = -mean log sigmoid(beta ((lp_w - ref_w) - (lp_l - ref_l)))
    BT    L = -mean log sigmoid(r_w - r_l)

The batch contract, the equations in full and the float64 oracle are in
``core/interfaces/rlhf.py``; the twin in the other backend has the same names, order and
comments (``duetrl diff rlhf``). Host work (GAE over tokens, whitening, the loop) lives once
in core.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from duetrl.backends.torch.gpt import GPT
from duetrl.backends.torch.optim import Adam
from duetrl.backends.torch.runtime import resolve_dtype
from duetrl.backends.torch.weights import import_params
from duetrl.core.constants import GRAD_CLIP_NORM, GROUP_ADVANTAGE_EPS, GROUP_STD_DDOF
from duetrl.core.interfaces.gpt_config import check_token_ids
from duetrl.core.interfaces.rlhf import (
    ADVANTAGE_SCALES,
    NORMALISATIONS,
    USES_HEAD,
    check_batch,
    check_choice,
    check_group,
    check_non_negative,
    check_rewards,
    check_same_shape,
    check_token_inputs,
    init_value_head_params,
    last_token_index,
    objective_coefficients,
)
from duetrl.core.tolerances import to_numpy

# ---------------------------------------------------------------------------------------------
# KL estimators, per token
# ---------------------------------------------------------------------------------------------


def kl_k1(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """k1 = -l = logp - ref_logp; unbiased, can be negative; (B, T) -> (B, T)."""
    check_same_shape("logp", logp, ref_logp=ref_logp)
    return logp - ref_logp  # k1 = -l


def kl_k2(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """k2 = l^2 / 2; biased, always >= 0."""
    check_same_shape("logp", logp, ref_logp=ref_logp)
    log_ratio = ref_logp - logp  # l
    return 0.5 * log_ratio**2  # k2 = l^2 / 2


def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """k3 = e^l - 1 - l; unbiased, always >= 0 (as a loss: the gradient of KL(pi_ref || pi))."""
    check_same_shape("logp", logp, ref_logp=ref_logp)
    log_ratio = ref_logp - logp  # l
    return torch.expm1(log_ratio) - log_ratio  # k3 = e^l - 1 - l


# ---------------------------------------------------------------------------------------------
# Advantages, rewards laid out prompt-major (consecutive group_size entries share a prompt)
# ---------------------------------------------------------------------------------------------


def group_advantages(rewards: torch.Tensor, group_size: int, scale: str = "std") -> torch.Tensor:
    """GRPO (r - mean_g) / (std_g + eps), unbiased std; ``scale="none"``: Dr. GRPO r - mean_g."""
    check_rewards(rewards)
    check_group(rewards.shape[0], group_size)
    check_choice("scale", scale, ADVANTAGE_SCALES)
    grouped = rewards.reshape(-1, group_size)  # (prompts, k)
    centred = grouped - grouped.mean(dim=1, keepdim=True)  # r - mean_g
    if scale == "std":
        variance = (centred**2).sum(dim=1, keepdim=True) / (group_size - GROUP_STD_DDOF)
        centred = centred / (torch.sqrt(variance) + GROUP_ADVANTAGE_EPS)  # unbiased std_g
    return centred.reshape(-1)


def rloo_advantages(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """A_i = r_i - 1/(k-1) sum_{j != i} r_j, the leave-one-out baseline."""
    check_rewards(rewards)
    check_group(rewards.shape[0], group_size)
    grouped = rewards.reshape(-1, group_size)  # (prompts, k)
    others = (grouped.sum(dim=1, keepdim=True) - grouped) / (group_size - 1)  # mean of others
    return (grouped - others).reshape(-1)


def kl_shaped_rewards(
    score: torch.Tensor, logp: torch.Tensor, ref_logp: torch.Tensor, mask: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """r_t = -beta k1_t m_t + score [t == last completion token]; (B,), (B, T) x 3 -> (B, T)."""
    check_non_negative("beta", beta)
    check_token_inputs(mask, logp=logp, ref_logp=ref_logp)
    last = torch.as_tensor(last_token_index(to_numpy(mask)))  # (B,), on the host
    at_end = F.one_hot(last, mask.shape[1]).to(logp.dtype)  # (B, T)
    return -beta * kl_k1(logp, ref_logp) * mask + at_end * score[:, None]


# ---------------------------------------------------------------------------------------------
# Losses over completion tokens (mask = 1 on completion tokens)
# ---------------------------------------------------------------------------------------------


def sequence_log_probs(token_logp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """log pi(y | x) = sum_t m_t log pi(y_t | ...); (B, T) -> (B,)."""
    check_token_inputs(mask, token_logp=token_logp)
    return (token_logp * mask).sum(dim=1)


def masked_token_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """sum(v m) / max(sum m, 1): the mean over completion tokens."""
    values = values.to(mask.dtype)
    return (values * mask).sum() / torch.clamp(mask.sum(), min=1.0)


def aggregate_token_loss(
    per_token_loss: torch.Tensor,
    mask: torch.Tensor,
    normalisation: str,
    max_length: int | None = None,
    total_tokens: float | None = None,
) -> torch.Tensor:
    """Reduce (B, T) to a scalar by ``grpo`` | ``bnpo`` | ``dr_grpo`` | ``dapo`` (see core)."""
    check_choice("normalisation", normalisation, NORMALISATIONS)
    check_token_inputs(mask, per_token_loss=per_token_loss)
    summed = per_token_loss * mask  # m_bt l_bt
    if normalisation == "grpo":  # 1/B sum_b sum_t m l / |y_b|
        lengths = torch.clamp(mask.sum(dim=1), min=1.0)  # |y_b|
        return (summed.sum(dim=1) / lengths).mean()
    if normalisation == "dr_grpo":  # sum m l / (B max_length)
        length = mask.shape[1] if max_length is None else max_length
        return summed.sum() / (mask.shape[0] * length)
    if normalisation == "dapo" and total_tokens is not None:  # sum m l / all tokens
        return summed.sum() / total_tokens
    return summed.sum() / torch.clamp(mask.sum(), min=1.0)  # bnpo: sum m l / sum m


def _broadcast_advantages(advantages: torch.Tensor) -> torch.Tensor:
    return advantages[:, None] if len(advantages.shape) == 1 else advantages  # (B,) -> (B, 1)


def clipped_surrogate(
    logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, clip_eps: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per token -min(rho A, clip(rho, 1 - eps, 1 + eps) A); returns (loss, rho, clipped)."""
    advantages = _broadcast_advantages(advantages)
    ratio = torch.exp(logp - old_logp)  # rho = pi / pi_old
    clipped_ratio = torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    loss = -torch.minimum(ratio * advantages, clipped_ratio * advantages)
    clipped = ((ratio < 1.0 - clip_eps) & (advantages < 0)) | (
        (ratio > 1.0 + clip_eps) & (advantages > 0)
    )
    return loss, ratio, clipped


def clipped_policy_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_eps: float,
    normalisation: str = "bnpo",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The PPO clipped surrogate, aggregated; stats ``clip_fraction``, ``approx_kl``."""
    check_non_negative("clip_eps", clip_eps)
    check_token_inputs(mask, advantages, logp=logp, old_logp=old_logp)
    per_token, ratio, clipped = clipped_surrogate(logp, old_logp, advantages, clip_eps)
    loss = aggregate_token_loss(per_token, mask, normalisation)
    with torch.no_grad():
        approx_kl = (ratio - 1.0) - torch.log(ratio)  # k3 with l = log rho
        stats = {
            "clip_fraction": masked_token_mean(clipped, mask),
            "approx_kl": masked_token_mean(approx_kl, mask),
        }
    return loss, stats


def reinforce_loss(
    logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Sequence REINFORCE with a baseline: -1/B sum_b A_b sum_t m_bt log pi(y_bt)."""
    check_token_inputs(mask, advantages, logp=logp)
    weighted = _broadcast_advantages(advantages) * logp * mask
    return -weighted.sum(dim=1).mean()  # -mean_b A_b sum_t m logp


def grpo_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    ref_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_eps: float,
    beta: float,
    normalisation: str = "grpo",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """agg_t[-min(rho A, clip(rho) A) + beta k3_t]; stats clip_fraction, approx_kl, kl."""
    check_non_negative("beta", beta)
    check_non_negative("clip_eps", clip_eps)
    check_token_inputs(mask, advantages, logp=logp, old_logp=old_logp, ref_logp=ref_logp)
    surrogate, ratio, clipped = clipped_surrogate(logp, old_logp, advantages, clip_eps)
    k3 = kl_k3(logp, ref_logp)
    loss = aggregate_token_loss(surrogate + beta * k3, mask, normalisation)  # + beta k3_t
    with torch.no_grad():
        stats = {
            "clip_fraction": masked_token_mean(clipped, mask),
            "approx_kl": masked_token_mean((ratio - 1.0) - torch.log(ratio), mask),
            "kl": masked_token_mean(k3, mask),
        }
    return loss, stats


def value_loss_clipped(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    clip_range: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """mean_t[0.5 max((V - R)^2, (V_old + clip(V - V_old, -c, c) - R)^2)]."""
    check_non_negative("clip_range", clip_range)
    check_token_inputs(mask, values=values, old_values=old_values, returns=returns)
    clipped_values = old_values + torch.clamp(values - old_values, -clip_range, clip_range)
    unclipped_error, clipped_error = (values - returns) ** 2, (clipped_values - returns) ** 2
    loss = masked_token_mean(0.5 * torch.maximum(unclipped_error, clipped_error), mask)
    with torch.no_grad():
        clipped = (torch.abs(values - old_values) > clip_range) & (clipped_error > unclipped_error)
        stats = {"value_clip_fraction": masked_token_mean(clipped, mask)}
    return loss, stats


def ppo_lm_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    clip_eps: float,
    clip_range: float,
    vf_coef: float,
    normalisation: str = "bnpo",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L_clip + vf_coef L_V; stats ``policy_loss``, ``value_loss`` and those of both parts."""
    check_non_negative("vf_coef", vf_coef)
    policy_loss, stats = clipped_policy_loss(
        logp, old_logp, advantages, mask, clip_eps, normalisation
    )
    value_loss, value_stats = value_loss_clipped(values, old_values, returns, mask, clip_range)
    stats = {"policy_loss": policy_loss, "value_loss": value_loss, **stats, **value_stats}
    return policy_loss + vf_coef * value_loss, stats  # L_clip + c_V L_V


def weighted_mean(values: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """sum(v w) / max(sum w, 1) over the rows; the plain mean when ``weights`` is None."""
    if weights is None:
        return values.mean()
    return (values * weights).sum() / weights.sum().clamp(min=1.0)


def dpo_loss(
    logp_chosen: torch.Tensor,
    logp_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float,
    weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """-mean log sigmoid(beta((lp_w - ref_w) - (lp_l - ref_l))); also the implicit rewards.

    ``weights`` (B,) of 0 or 1: the mean over the pairs weighted 1 (padding rows weigh 0).
    """
    check_non_negative("beta", beta)
    check_same_shape(
        "logp_chosen", logp_chosen, logp_rejected=logp_rejected, ref_chosen=ref_chosen,
        ref_rejected=ref_rejected,
    )
    chosen_rewards = beta * (logp_chosen - ref_chosen)  # beta (lp_w - ref_w)
    rejected_rewards = beta * (logp_rejected - ref_rejected)
    loss = -weighted_mean(F.logsigmoid(chosen_rewards - rejected_rewards), weights)
    return loss, chosen_rewards, rejected_rewards


def bradley_terry_loss(
    reward_chosen: torch.Tensor, reward_rejected: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """-mean log sigmoid(r_w - r_l), and the accuracy (share with r_w > r_l)."""
    check_same_shape("reward_chosen", reward_chosen, reward_rejected=reward_rejected)
    margin = reward_chosen - reward_rejected
    accuracy = (margin > 0).to(margin.dtype).mean()
    return -F.logsigmoid(margin).mean(), accuracy


# ---------------------------------------------------------------------------------------------
# The GPT as a policy, and a scalar head on its last hidden state
# ---------------------------------------------------------------------------------------------


def hidden_states(model: GPT, tokens: torch.Tensor | np.ndarray) -> torch.Tensor:
    """LN_f(h_L) (B, T, D) of ``tokens``: ``GPT.hidden_states``, bad input named ``tokens``."""
    idx = torch.as_tensor(tokens)
    check_token_ids(idx.shape, model.config, "tokens", idx)
    return model.hidden_states(idx)


def token_log_probs(model: GPT, tokens: torch.Tensor | np.ndarray) -> torch.Tensor:
    """log pi(tokens[:, t+1] | tokens[:, :t+1]): (B, T) ids -> (B, T-1), differentiable."""
    tokens = torch.as_tensor(tokens)
    logp = F.log_softmax(model(tokens[:, :-1]), dim=-1)  # (B, T-1, V)
    return torch.gather(logp, -1, tokens[:, 1:, None])[..., 0]  # (B, T-1)


@torch.inference_mode()
def inference_log_probs(model: GPT, tokens: np.ndarray) -> np.ndarray:
    """token_log_probs without gradient, as NumPy (B, T-1): the rollout's reference pass.

    Under ``torch.inference_mode()``: no autograd graph is recorded."""
    return token_log_probs(model, torch.as_tensor(tokens)).numpy()


@torch.inference_mode()
def inference_values(model: GPT, value_head: ValueHead, tokens: np.ndarray) -> np.ndarray:
    """V(s_t) (B, T-1) of ``value_head`` on ``model``'s hidden states, without gradient, as
    NumPy (PPO's old values)."""
    tokens = torch.as_tensor(tokens)
    return value_head(hidden_states(model, tokens[:, :-1])).numpy()


def token_entropy(logits: torch.Tensor) -> torch.Tensor:
    """H = -sum_v p_v log p_v of each next-token distribution: (..., V) -> (...)."""
    logp = F.log_softmax(logits, dim=-1)
    return -(torch.exp(logp) * logp).sum(dim=-1)


def policy_outputs(
    model: GPT, tokens: torch.Tensor, value_head: ValueHead | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """One forward pass: (log-probs, entropies, values or None), each (B, T-1)."""
    hidden = hidden_states(model, tokens[:, :-1])  # (B, T-1, D)
    logits = F.linear(hidden, model.wte.weight)  # (B, T-1, V): the tied head
    logp = torch.gather(F.log_softmax(logits, dim=-1), -1, tokens[:, 1:, None])[..., 0]
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

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.linear(hidden)[..., 0]  # (B, T, D) -> (B, T)


def sequence_scores(values: torch.Tensor, mask: torch.Tensor | np.ndarray) -> torch.Tensor:
    """A reward model's score: values[b, last completion token]; (B, T), (B, T-1) -> (B,)."""
    mask = torch.as_tensor(mask).to(values.dtype)
    positions = torch.arange(1, mask.shape[1] + 1, dtype=values.dtype)  # column t: token t+1
    last = torch.amax(positions * mask, dim=1).to(torch.int64)  # the last completion token
    return torch.gather(values, 1, last[:, None])[:, 0]


# ---------------------------------------------------------------------------------------------
# The gradient step the core training loop calls
# ---------------------------------------------------------------------------------------------


class PolicyWithHead(nn.Module):
    """The trainable parts of one update: the GPT and, for PPO or a reward model, its head."""

    def __init__(self, policy: GPT, value_head: ValueHead | None = None) -> None:
        super().__init__()
        self.policy = policy
        self.value_head = value_head


class RLHFLearner:
    """The policy (and head), its Adam, and one gradient step per call of :meth:`update`.

    Args:
        policy: a ``GPT`` (for ``reward_model``: the reward model's trunk).
        value_head: a ``ValueHead`` for ``ppo`` and ``reward_model``, else None.
        learning_rate: Adam's step size (the loop may change ``self.learning_rate``).
        max_grad_norm: clip the global gradient norm to this (None: no clipping).
        weight_decay: AdamW's decoupled weight decay of matrices (0: Adam).

    Dropout is switched off (``eval()``): the ratio pi / pi_old must be exactly 1 before the
    first step of each batch.
    """

    def __init__(
        self,
        policy: GPT,
        value_head: ValueHead | None = None,
        learning_rate: float = 1e-4,
        max_grad_norm: float | None = GRAD_CLIP_NORM,
        weight_decay: float = 0.0,
    ) -> None:
        check_non_negative("learning_rate", learning_rate)
        self.policy, self.value_head = policy, value_head
        self.learning_rate = learning_rate
        self.trainable = PolicyWithHead(policy, value_head)
        self.optimizer = Adam(self.trainable, max_grad_norm, weight_decay)
        self.compiled_step = self._step  # PyTorch runs eagerly: nothing to compile
        self.dtype = policy.wte.weight.dtype

    def update(
        self, batch: Mapping[str, np.ndarray], objective: str, **coefficients: Any
    ) -> dict[str, float]:
        """One gradient step of ``objective`` on ``batch`` (contract: core/interfaces/rlhf.py).

        Returns:
            floats: ``loss``, ``grad_norm`` (before clipping) and the objective's statistics
            (``kl``, ``entropy``, ``clip_fraction``, ...).
        """
        coefficients = objective_coefficients(objective, coefficients)
        check_batch(batch, objective)
        if objective in USES_HEAD and self.value_head is None:
            raise ValueError(f"value_head: objective {objective!r} needs a ValueHead, got None")
        tensors, coefficients = self._to_tensors(batch), self._to_tensors(coefficients)
        learning_rate = self.learning_rate  # a float: nothing is traced
        stats = self.compiled_step(objective, tensors, coefficients, learning_rate)
        return {name: float(value) for name, value in stats.items()}

    def _step(
        self, objective: str, batch: dict, coefficients: dict, learning_rate: float
    ) -> dict[str, torch.Tensor]:
        """Loss, gradients, clipping and Adam: the step (PyTorch runs it eagerly as written)."""
        self.trainable.eval()  # dropout off
        self.trainable.zero_grad(set_to_none=True)
        loss, stats = getattr(self, f"_{objective}_loss")(batch, **coefficients)
        loss.backward()
        parameters = self.optimizer.parameters
        grads = [torch.zeros_like(p) if p.grad is None else p.grad for p in parameters]
        grad_norm = self.optimizer.apply_gradients(grads, learning_rate)
        stats = {"loss": loss, "grad_norm": grad_norm, **stats}
        return {name: value.detach() for name, value in stats.items()}

    def _to_tensors(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Numbers as tensors (floats in the model's dtype, ids int64); strings stay."""
        tensors = {}
        for key, value in values.items():
            if isinstance(value, str):
                tensors[key] = value
                continue
            value = np.asarray(value)
            dtype = self.dtype if np.issubdtype(value.dtype, np.floating) else torch.int64
            tensors[key] = torch.as_tensor(value).to(dtype)
        return tensors

    def _token_stats(
        self, batch: dict[str, torch.Tensor], logp: torch.Tensor, entropy: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """entropy (masked token mean) and, given ref_logp, kl = mean_b sum_t m k1 (nats)."""
        mask, logp = batch["mask"], logp.detach()
        stats = {"entropy": masked_token_mean(entropy.detach(), mask)}
        if "ref_logp" in batch:
            k1, k3 = kl_k1(logp, batch["ref_logp"]), kl_k3(logp, batch["ref_logp"])
            stats["kl"] = sequence_log_probs(k1, mask).mean()  # sequence KL estimate
            stats["kl_token_k3"] = masked_token_mean(k3, mask)
        return stats

    def _reinforce_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        logp, entropy, _ = policy_outputs(self.policy, batch["tokens"])
        loss = reinforce_loss(logp, batch["advantages"], batch["mask"])
        return loss, self._token_stats(batch, logp, entropy)

    _rloo_loss = _reinforce_loss  # RLOO: the same loss, leave-one-out advantages

    def _grpo_loss(self, batch: dict[str, torch.Tensor], **coefficients: Any) -> tuple:
        logp, entropy, _ = policy_outputs(self.policy, batch["tokens"])
        loss, stats = grpo_loss(
            logp, batch["old_logp"], batch["ref_logp"], batch["advantages"], batch["mask"],
            coefficients["clip_eps"], coefficients["beta"], coefficients["normalisation"],
        )
        return loss, {**stats, **self._token_stats(batch, logp, entropy)}

    def _ppo_loss(self, batch: dict[str, torch.Tensor], **coefficients: Any) -> tuple:
        logp, entropy, values = policy_outputs(self.policy, batch["tokens"], self.value_head)
        loss, stats = ppo_lm_loss(
            logp, batch["old_logp"], batch["advantages"], values, batch["old_values"],
            batch["returns"], batch["mask"], coefficients["clip_eps"],
            coefficients["clip_range"], coefficients["vf_coef"], coefficients["normalisation"],
        )
        return loss, {**stats, **self._token_stats(batch, logp, entropy)}

    def _dpo_loss(self, batch: dict[str, torch.Tensor], beta: float) -> tuple:
        weights = batch.get("pair_weights")  # padding rows weigh 0
        logp_chosen = sequence_log_probs(
            token_log_probs(self.policy, batch["chosen_tokens"]), batch["chosen_mask"]
        )
        logp_rejected = sequence_log_probs(
            token_log_probs(self.policy, batch["rejected_tokens"]), batch["rejected_mask"]
        )
        loss, chosen_rewards, rejected_rewards = dpo_loss(
            logp_chosen, logp_rejected, batch["ref_chosen_logp"], batch["ref_rejected_logp"],
            beta, weights,
        )
        margin = (chosen_rewards - rejected_rewards).detach()
        return loss, {
            "chosen_reward": weighted_mean(chosen_rewards.detach(), weights),
            "rejected_reward": weighted_mean(rejected_rewards.detach(), weights),
            "margin": weighted_mean(margin, weights),
            "accuracy": weighted_mean((margin > 0).to(margin.dtype), weights),
        }

    def _reward_model_loss(self, batch: dict[str, torch.Tensor]) -> tuple:
        reward_chosen = sequence_scores(
            self.value_head(hidden_states(self.policy, batch["chosen_tokens"])),
            batch["chosen_mask"],
        )
        reward_rejected = sequence_scores(
            self.value_head(hidden_states(self.policy, batch["rejected_tokens"])),
            batch["rejected_mask"],
        )
        loss, accuracy = bradley_terry_loss(reward_chosen, reward_rejected)
        return loss, {
            "accuracy": accuracy,
            "reward_chosen": reward_chosen.detach().mean(),
            "reward_rejected": reward_rejected.detach().mean(),
        }
