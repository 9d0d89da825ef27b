"""RL for language models (outline 2.3, 3.1.4-3.1.5) in float64 NumPy: every objective's loss.

The sequence MDP: state = prompt + tokens so far, action = the next token, the policy is the
GPT, the episode ends at a stop token or the length limit, the reward comes at the end
(optionally minus beta times a per-token KL estimate against the frozen policy pi_ref).
The losses over completion tokens (REINFORCE / RLOO, the clipped surrogate, GRPO, PPO's value
loss, DPO, Bradley-Terry) and their token normalisations are here; the KL estimators and the
advantages they weigh in ``rlhf_advantages.py`` (together: the oracle of each backend's
``objectives.py``), the GPT as a policy in ``rlhf_policy.py``. The batch contract (keys,
shapes, which objective reads what) and the input checks both backends share are in
``core/interfaces/rlhf.py``.
"""

from __future__ import annotations

import numpy as np

from duetrl.core.interfaces.rlhf import (
    NORMALISATIONS,
    check_choice,
    check_non_negative,
    check_same_shape,
    check_token_inputs,
)
from duetrl.core.reference.rlhf_advantages import approx_kl, kl_k3

# ---------------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------------


def sequence_log_probs(token_logp: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """log pi(y | x) = sum_t m_t log pi(y_t | x, y_<t): ``(B, T)``, ``(B, T)`` -> ``(B,)``."""
    check_token_inputs(mask, token_logp=token_logp)
    return (np.asarray(token_logp, np.float64) * np.asarray(mask, np.float64)).sum(axis=1)


def masked_token_mean(values: np.ndarray, mask: np.ndarray) -> float:
    """sum(v m) / max(sum m, 1): the mean over completion tokens (statistics, bnpo)."""
    mask = np.asarray(mask, np.float64)
    return float((np.asarray(values, np.float64) * mask).sum() / max(mask.sum(), 1.0))


def aggregate_token_loss(
    per_token_loss: np.ndarray,
    mask: np.ndarray,
    normalisation: str,
    max_length: int | None = None,
    total_tokens: float | None = None,
) -> float:
    """Reduce a per-token loss ``(B, T)`` over completion tokens (m = mask, |y_b| = sum_t m_bt):

        grpo     1/B sum_b [ sum_t m_bt l_bt / max(|y_b|, 1) ]   each sequence weighs the same
        bnpo     sum_bt m_bt l_bt / max(sum_bt m_bt, 1)          each token weighs the same
        dr_grpo  sum_bt m_bt l_bt / (B * max_length)             a constant: no length bias
        dapo     sum_bt m_bt l_bt / total_tokens                 tokens of the whole
                                                                 accumulated batch

    They agree when every completion has the same length L = max_length (then all are
    mean over tokens); they differ when lengths are ragged.

    :param max_length: dr_grpo's constant (the longest allowed completion); default T.
    :param total_tokens: dapo's denominator, the completion tokens of every micro-batch that
        is accumulated into one update; default (one micro-batch, one device): ``sum m``,
        which equals bnpo.
    """
    check_choice("normalisation", normalisation, NORMALISATIONS)
    check_token_inputs(mask, per_token_loss=per_token_loss)
    mask = np.asarray(mask, np.float64)
    summed = np.asarray(per_token_loss, np.float64) * mask  # m_bt l_bt
    if normalisation == "grpo":
        lengths = np.maximum(mask.sum(axis=1), 1.0)  # |y_b|
        return float((summed.sum(axis=1) / lengths).mean())
    if normalisation == "dr_grpo":
        length = mask.shape[1] if max_length is None else max_length
        return float(summed.sum() / (mask.shape[0] * length))
    if normalisation == "dapo" and total_tokens is not None:
        return float(summed.sum() / total_tokens)
    return float(summed.sum() / max(mask.sum(), 1.0))  # bnpo (and dapo on one micro-batch)


def _broadcast_advantages(advantages: np.ndarray, mask: np.ndarray) -> np.ndarray:
    advantages = np.asarray(advantages, np.float64)
    return advantages[:, None] if advantages.ndim == 1 else advantages  # (B,) -> (B, 1)


def clipped_surrogate(
    logp: np.ndarray, old_logp: np.ndarray, advantages: np.ndarray, clip_eps: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-token PPO loss -min(rho A, clip(rho, 1 - eps, 1 + eps) A), rho = e^(lp - lp_old).

    :returns: ``(loss (B, T), ratio (B, T), clipped (B, T) bool)``; ``clipped`` marks tokens
        where the clipped term is active (rho < 1 - eps with A < 0, or rho > 1 + eps with A > 0)
        and the gradient is therefore zero.
    """
    advantages = _broadcast_advantages(advantages, logp)
    ratio = np.exp(np.asarray(logp, np.float64) - np.asarray(old_logp, np.float64))  # rho
    clipped_ratio = np.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    loss = -np.minimum(ratio * advantages, clipped_ratio * advantages)  # -min(rho A, clip A)
    clipped = ((ratio < 1.0 - clip_eps) & (advantages < 0)) | (
        (ratio > 1.0 + clip_eps) & (advantages > 0)
    )
    return loss, ratio, clipped


def clipped_policy_loss(
    logp: np.ndarray,
    old_logp: np.ndarray,
    advantages: np.ndarray,
    mask: np.ndarray,
    clip_eps: float,
    normalisation: str = "bnpo",
) -> tuple[float, dict[str, float]]:
    """The PPO / GRPO clipped surrogate over completion tokens (Schulman et al. 2017):

        L = agg_t[ -min(rho_t A_t, clip(rho_t, 1 - eps, 1 + eps) A_t) ],
        rho_t = pi(y_t) / pi_old(y_t) = exp(logp_t - old_logp_t)

    =============  ================  ====================================================
    Symbol         Shape             Description
    =============  ================  ====================================================
    logp           (B, T)            log pi_theta of the sampled tokens (differentiated)
    old_logp       (B, T)            log pi_old, at sampling time (constant)
    advantages     (B,) or (B, T)    A, a sequence's broadcast over its tokens
    mask           (B, T)            completion mask
    agg                              :func:`aggregate_token_loss` with ``normalisation``
    =============  ================  ====================================================

    :returns: ``(loss, {"clip_fraction", "approx_kl"})``: the share of completion tokens with
        the clipped term active, and the masked mean of (rho - 1) - log rho (k3 of pi_old vs
        pi, >= 0).
    """
    check_non_negative("clip_eps", clip_eps)
    check_token_inputs(mask, advantages, logp=logp, old_logp=old_logp)
    per_token, ratio, clipped = clipped_surrogate(logp, old_logp, advantages, clip_eps)
    loss = aggregate_token_loss(per_token, mask, normalisation)
    stats = {
        "clip_fraction": masked_token_mean(clipped, mask),
        "approx_kl": masked_token_mean(approx_kl(ratio), mask),
    }
    return loss, stats


def reinforce_loss(logp: np.ndarray, advantages: np.ndarray, mask: np.ndarray) -> float:
    """Sequence REINFORCE with a baseline (Williams 1992; RLOO with leave-one-out A):

        L = -1/B sum_b A_b sum_t m_bt log pi(y_bt)    (A_bt per token when (B, T) is given)

    grad L is minus the score-function estimate of grad E[r]; the baseline inside A keeps it
    unbiased. No clipping, no ratio: one gradient step per batch of fresh samples.
    """
    check_token_inputs(mask, advantages, logp=logp)
    advantages = _broadcast_advantages(advantages, mask)
    weighted = advantages * np.asarray(logp, np.float64) * np.asarray(mask, np.float64)
    return float(-weighted.sum(axis=1).mean())  # -mean_b A_b sum_t m logp


def grpo_loss(
    logp: np.ndarray,
    old_logp: np.ndarray,
    ref_logp: np.ndarray,
    advantages: np.ndarray,
    mask: np.ndarray,
    clip_eps: float,
    beta: float,
    normalisation: str = "grpo",
) -> tuple[float, dict[str, float]]:
    """GRPO (Shao et al. 2024): the clipped surrogate plus beta k3 as a loss term, per token,

        L = agg_t[ -min(rho_t A, clip(rho_t) A) + beta k3_t ],   k3_t = e^l - 1 - l,
        l = ref_logp_t - logp_t

    aggregated by ``normalisation`` (:func:`aggregate_token_loss`). A is the group advantage
    (``rlhf_advantages.group_advantages``) broadcast over the sequence's tokens.

    :returns: ``(loss, {"clip_fraction", "approx_kl", "kl"})`` with kl the masked token mean
        of k3.
    """
    check_non_negative("beta", beta)
    check_non_negative("clip_eps", clip_eps)
    check_token_inputs(mask, advantages, logp=logp, old_logp=old_logp, ref_logp=ref_logp)
    surrogate, ratio, clipped = clipped_surrogate(logp, old_logp, advantages, clip_eps)
    k3 = kl_k3(logp, ref_logp)
    loss = aggregate_token_loss(surrogate + beta * k3, mask, normalisation)  # + beta k3_t
    stats = {
        "clip_fraction": masked_token_mean(clipped, mask),
        "approx_kl": masked_token_mean(approx_kl(ratio), mask),
        "kl": masked_token_mean(k3, mask),
    }
    return loss, stats


def value_loss_clipped(
    values: np.ndarray,
    old_values: np.ndarray,
    returns: np.ndarray,
    mask: np.ndarray,
    clip_range: float,
) -> tuple[float, dict[str, float]]:
    """PPO's clipped value loss, masked mean over completion tokens:

        V_clip = V_old + clip(V - V_old, -c, c)
        L_V = mean_t[ 0.5 max((V - R)^2, (V_clip - R)^2) ]

    :returns: ``(loss, {"value_clip_fraction"})``: the share of tokens where V moved more than
        c from V_old and the clipped term is the larger one (its gradient is then zero).
    """
    check_non_negative("clip_range", clip_range)
    check_token_inputs(mask, values=values, old_values=old_values, returns=returns)
    values, old_values = np.asarray(values, np.float64), np.asarray(old_values, np.float64)
    returns = np.asarray(returns, np.float64)
    clipped_values = old_values + np.clip(values - old_values, -clip_range, clip_range)
    unclipped_error, clipped_error = (values - returns) ** 2, (clipped_values - returns) ** 2
    loss = masked_token_mean(0.5 * np.maximum(unclipped_error, clipped_error), mask)
    clipped = (np.abs(values - old_values) > clip_range) & (clipped_error > unclipped_error)
    return loss, {"value_clip_fraction": masked_token_mean(clipped, mask)}


def ppo_lm_loss(
    logp: np.ndarray,
    old_logp: np.ndarray,
    advantages: np.ndarray,
    values: np.ndarray,
    old_values: np.ndarray,
    returns: np.ndarray,
    mask: np.ndarray,
    clip_eps: float,
    clip_range: float,
    vf_coef: float,
    normalisation: str = "bnpo",
) -> tuple[float, dict[str, float]]:
    """PPO for language models (Ziegler et al. 2019; Ouyang et al. 2022):

        L = L_clip(logp, old_logp, A) + vf_coef L_V(V, V_old, R)

    with A the whitened GAE advantages of the KL-shaped per-token rewards (``kl_shaped_rewards``,
    ``token_gae``, ``whiten_advantages`` of ``rlhf_advantages.py``, computed once per batch on
    host arrays) and V the value head on the GPT's hidden states.

    :returns: ``(loss, {"policy_loss", "value_loss", "clip_fraction", "approx_kl",
        "value_clip_fraction"})``.
    """
    check_non_negative("vf_coef", vf_coef)
    policy_loss, stats = clipped_policy_loss(
        logp, old_logp, advantages, mask, clip_eps, normalisation
    )
    value_loss, value_stats = value_loss_clipped(values, old_values, returns, mask, clip_range)
    stats = {"policy_loss": policy_loss, "value_loss": value_loss, **stats, **value_stats}
    return policy_loss + vf_coef * value_loss, stats  # L_clip + c_V L_V


def log_sigmoid(x: np.ndarray) -> np.ndarray:
    """log sigmoid(x) = -softplus(-x) = -log(1 + e^-x), stable for large |x|."""
    return -np.logaddexp(0.0, -np.asarray(x, np.float64))


def dpo_loss(
    logp_chosen: np.ndarray,
    logp_rejected: np.ndarray,
    ref_chosen: np.ndarray,
    ref_rejected: np.ndarray,
    beta: float,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Direct preference optimisation (Rafailov et al. 2023), sequence log-probs ``(B,)``:

        L = -1/B sum_b log sigmoid(beta ((lp_w - ref_w) - (lp_l - ref_l)))

    The implicit reward of a completion is r(y) = beta (log pi(y) - log pi_ref(y)); DPO is
    the Bradley-Terry loss on these rewards.

    :returns: ``(loss, chosen_rewards (B,), rejected_rewards (B,))``.
    """
    check_non_negative("beta", beta)
    check_same_shape(
        "logp_chosen", logp_chosen, logp_rejected=logp_rejected, ref_chosen=ref_chosen,
        ref_rejected=ref_rejected,
    )
    chosen_rewards = beta * (np.asarray(logp_chosen, np.float64) - ref_chosen)  # beta(lp_w - ref_w)
    rejected_rewards = beta * (np.asarray(logp_rejected, np.float64) - ref_rejected)
    loss = -log_sigmoid(chosen_rewards - rejected_rewards).mean()
    return float(loss), chosen_rewards, rejected_rewards


def bradley_terry_loss(
    reward_chosen: np.ndarray, reward_rejected: np.ndarray
) -> tuple[float, float]:
    """The reward model's loss (Bradley & Terry 1952): P(y_w > y_l) = sigmoid(r_w - r_l),

        L = -1/B sum_b log sigmoid(r_w - r_l)

    :returns: ``(loss, accuracy)``, accuracy = share of pairs with r_w > r_l (ties count wrong).
    """
    check_same_shape("reward_chosen", reward_chosen, reward_rejected=reward_rejected)
    margin = np.asarray(reward_chosen, np.float64) - np.asarray(reward_rejected, np.float64)
    return float(-log_sigmoid(margin).mean()), float((margin > 0).mean())


__all__ = [
    "aggregate_token_loss",
    "bradley_terry_loss",
    "clipped_policy_loss",
    "clipped_surrogate",
    "dpo_loss",
    "grpo_loss",
    "log_sigmoid",
    "masked_token_mean",
    "ppo_lm_loss",
    "reinforce_loss",
    "sequence_log_probs",
    "value_loss_clipped",
]
