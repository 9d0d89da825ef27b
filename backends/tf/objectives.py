"""RL for language models (outline 2.3, 3.1.4-3.1.5): the objectives as tensors.

    k1 = -l, k2 = l^2 / 2, k3 = e^l - 1 - l,            l = log pi_ref(y_t) - log pi(y_t)
    GRPO  A_i = (r_i - mean_g) / (std_g + 1e-4);  RLOO  A_i = r_i - mean of the other k - 1
    clip  L = agg_t[-min(rho_t A, clip(rho_t, 1 - eps, 1 + eps) A)],  rho_t = pi / pi_old
    GRPO  L = agg_t[-min(rho_t A, clip(rho_t) A) + beta k3_t]
    PPO   L = L_clip + c_V mean_t[0.5 max((V - R)^2, (V_old + clip(V - V_old, -c, c) - R)^2)]
    DPO   L = -mean log sigmoid(beta ((lp_w - ref_w) - (lp_l - ref_l)))
    BT    L = -mean log sigmoid(r_w - r_l)

Pure functions of tensors, no model: the batch contract is in ``core/interfaces/rlhf.py``; the
float64 oracle, with the equations in full, in ``core/reference/rlhf_advantages.py`` (KL
estimators, advantages) and ``core/reference/rlhf.py`` (losses); the policy, its head and the
learner in ``rlhf.py`` beside this file. The twin in the other backend has the same names,
order and comments (``duetrl diff objectives``). Every mean over completion tokens (or pairs)
is ``masked_mean`` of ``policy.py``: sum(v m) / max(sum m, 1).
"""

from __future__ import annotations

import tensorflow as tf
from tensorflow import Tensor

from duetrl.backends.tf.policy import masked_mean
from duetrl.core.constants import GROUP_ADVANTAGE_EPS, GROUP_STD_DDOF
from duetrl.core.interfaces.rlhf import (
    ADVANTAGE_SCALES,
    NORMALISATIONS,
    check_choice,
    check_group,
    check_non_negative,
    check_rewards,
    check_same_shape,
    check_token_inputs,
)
from duetrl.core.interfaces.rlhf import last_token_index as host_last_token_index
from duetrl.core.tolerances import to_numpy

# ---------------------------------------------------------------------------------------------
# Tokens: the log-probability of each chosen token, and the last completion token of a row
# ---------------------------------------------------------------------------------------------


def gather_log_probs(logits: Tensor, tokens: Tensor) -> Tensor:
    """log softmax(logits)[tokens]: (B, T, V) logits, (B, T) ids -> (B, T), differentiable."""
    logp = tf.nn.log_softmax(logits, axis=-1)  # (B, T, V)
    return tf.gather(logp, tokens[..., None], batch_dims=2)[..., 0]  # (B, T)


def sequence_log_probs(token_logp: Tensor, mask: Tensor) -> Tensor:
    """log pi(y | x) = sum_t m_t log pi(y_t | ...); (B, T) -> (B,)."""
    check_token_inputs(mask, token_logp=token_logp)
    return tf.reduce_sum(token_logp * mask, axis=1)


def last_token_index(mask: Tensor) -> Tensor:
    """Column of each row's last completion token, (B, T) -> (B,) int64: the rule of
    ``core/interfaces/rlhf.py`` as tensors (-1 on a row without one: check on the host)."""
    positions = tf.range(1, mask.shape[1] + 1, dtype=tf.int64)  # column t counts t + 1
    return tf.reduce_max(positions * tf.cast(mask > 0, tf.int64), axis=1) - 1  # 0 if empty, -1


# ---------------------------------------------------------------------------------------------
# KL estimators, per token
# ---------------------------------------------------------------------------------------------


def kl_k1(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """k1 = -l = logp - ref_logp; unbiased, can be negative; (B, T) -> (B, T)."""
    check_same_shape("logp", logp, ref_logp=ref_logp)
    return logp - ref_logp  # k1 = -l


def kl_k2(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """k2 = l^2 / 2; biased, always >= 0."""
    check_same_shape("logp", logp, ref_logp=ref_logp)
    log_ratio = ref_logp - logp  # l
    return 0.5 * log_ratio**2  # k2 = l^2 / 2


def kl_k3(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """k3 = e^l - 1 - l; unbiased, always >= 0 (as a loss: the gradient of KL(pi_ref || pi))."""
    check_same_shape("logp", logp, ref_logp=ref_logp)
    log_ratio = ref_logp - logp  # l
    return tf.math.expm1(log_ratio) - log_ratio  # k3 = e^l - 1 - l


def approx_kl(ratio: Tensor) -> Tensor:
    """(rho - 1) - log rho: k3 of pi_old against pi with l = log rho, rho = pi / pi_old; >= 0."""
    return (ratio - 1.0) - tf.math.log(ratio)  # k3 with l = log rho


# ---------------------------------------------------------------------------------------------
# Advantages, rewards laid out prompt-major (consecutive group_size entries share a prompt)
# ---------------------------------------------------------------------------------------------


def group_advantages(rewards: Tensor, group_size: int, scale: str = "std") -> Tensor:
    """GRPO (r - mean_g) / (std_g + eps), unbiased std; ``scale="none"``: Dr. GRPO r - mean_g."""
    check_rewards(rewards)
    check_group(rewards.shape[0], group_size)
    check_choice("scale", scale, ADVANTAGE_SCALES)
    grouped = tf.reshape(rewards, (-1, group_size))  # (prompts, k)
    centred = grouped - tf.reduce_mean(grouped, axis=1, keepdims=True)  # r - mean_g
    if scale == "std":
        variance = tf.reduce_sum(centred**2, axis=1, keepdims=True) / (group_size - GROUP_STD_DDOF)
        centred = centred / (tf.sqrt(variance) + GROUP_ADVANTAGE_EPS)  # unbiased std_g
    return tf.reshape(centred, (-1,))


def rloo_advantages(rewards: Tensor, group_size: int) -> Tensor:
    """A_i = r_i - 1/(k-1) sum_{j != i} r_j, the leave-one-out baseline."""
    check_rewards(rewards)
    check_group(rewards.shape[0], group_size)
    grouped = tf.reshape(rewards, (-1, group_size))  # (prompts, k)
    others = (tf.reduce_sum(grouped, axis=1, keepdims=True) - grouped) / (group_size - 1)
    return tf.reshape(grouped - others, (-1,))


def kl_shaped_rewards(
    score: Tensor, logp: Tensor, ref_logp: Tensor, mask: Tensor, beta: float
) -> Tensor:
    """r_t = -beta k1_t m_t + score [t == last completion token]; (B,), (B, T) x 3 -> (B, T)."""
    check_non_negative("beta", beta)
    check_token_inputs(mask, logp=logp, ref_logp=ref_logp)
    host_last_token_index(to_numpy(mask))  # ValueError on a row without a completion token
    at_end = tf.one_hot(last_token_index(mask), mask.shape[1], dtype=logp.dtype)  # (B, T)
    return -beta * kl_k1(logp, ref_logp) * mask + at_end * score[:, None]


# ---------------------------------------------------------------------------------------------
# Losses over completion tokens (mask = 1 on completion tokens)
# ---------------------------------------------------------------------------------------------


def aggregate_token_loss(
    per_token_loss: Tensor,
    mask: Tensor,
    normalisation: str,
    max_length: int | None = None,
    total_tokens: float | None = None,
) -> Tensor:
    """Reduce (B, T) to a scalar by ``grpo`` | ``bnpo`` | ``dr_grpo`` | ``dapo`` (see core)."""
    check_choice("normalisation", normalisation, NORMALISATIONS)
    check_token_inputs(mask, per_token_loss=per_token_loss)
    summed = per_token_loss * mask  # m_bt l_bt
    if normalisation == "grpo":  # 1/B sum_b sum_t m l / |y_b|
        lengths = tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)  # |y_b|
        return tf.reduce_mean(tf.reduce_sum(summed, axis=1) / lengths)
    if normalisation == "dr_grpo":  # sum m l / (B max_length)
        length = mask.shape[1] if max_length is None else max_length
        return tf.reduce_sum(summed) / (mask.shape[0] * length)
    if normalisation == "dapo" and total_tokens is not None:  # sum m l / all tokens
        return tf.reduce_sum(summed) / total_tokens
    return masked_mean(per_token_loss, mask)  # bnpo: sum m l / sum m


def _broadcast_advantages(advantages: Tensor) -> Tensor:
    return advantages[:, None] if len(advantages.shape) == 1 else advantages  # (B,) -> (B, 1)


def clipped_surrogate(
    logp: Tensor, old_logp: Tensor, advantages: Tensor, clip_eps: float
) -> tuple[Tensor, Tensor, Tensor]:
    """Per token -min(rho A, clip(rho, 1 - eps, 1 + eps) A); returns (loss, rho, clipped)."""
    advantages = _broadcast_advantages(advantages)
    ratio = tf.exp(logp - old_logp)  # rho = pi / pi_old
    clipped_ratio = tf.clip_by_value(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    loss = -tf.minimum(ratio * advantages, clipped_ratio * advantages)
    clipped = ((ratio < 1.0 - clip_eps) & (advantages < 0)) | (
        (ratio > 1.0 + clip_eps) & (advantages > 0)
    )
    return loss, ratio, clipped


def clipped_policy_loss(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    clip_eps: float,
    normalisation: str = "bnpo",
) -> tuple[Tensor, dict[str, Tensor]]:
    """The PPO clipped surrogate, aggregated; stats ``clip_fraction``, ``approx_kl``."""
    check_non_negative("clip_eps", clip_eps)
    check_token_inputs(mask, advantages, logp=logp, old_logp=old_logp)
    per_token, ratio, clipped = clipped_surrogate(logp, old_logp, advantages, clip_eps)
    loss = aggregate_token_loss(per_token, mask, normalisation)
    with tf.name_scope("statistics"):  # the tape records them; nothing differentiates them
        stats = {
            "clip_fraction": masked_mean(tf.cast(clipped, mask.dtype), mask),
            "approx_kl": masked_mean(approx_kl(ratio), mask),
        }
    return loss, stats


def reinforce_loss(logp: Tensor, advantages: Tensor, mask: Tensor) -> Tensor:
    """Sequence REINFORCE with a baseline: -1/B sum_b A_b sum_t m_bt log pi(y_bt)."""
    check_token_inputs(mask, advantages, logp=logp)
    weighted = _broadcast_advantages(advantages) * logp * mask
    return -tf.reduce_mean(tf.reduce_sum(weighted, axis=1))  # -mean_b A_b sum_t m logp


def grpo_loss(
    logp: Tensor,
    old_logp: Tensor,
    ref_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    clip_eps: float,
    beta: float,
    normalisation: str = "grpo",
) -> tuple[Tensor, dict[str, Tensor]]:
    """agg_t[-min(rho A, clip(rho) A) + beta k3_t]; stats clip_fraction, approx_kl, kl."""
    check_non_negative("beta", beta)
    check_non_negative("clip_eps", clip_eps)
    check_token_inputs(mask, advantages, logp=logp, old_logp=old_logp, ref_logp=ref_logp)
    surrogate, ratio, clipped = clipped_surrogate(logp, old_logp, advantages, clip_eps)
    k3 = kl_k3(logp, ref_logp)
    loss = aggregate_token_loss(surrogate + beta * k3, mask, normalisation)  # + beta k3_t
    with tf.name_scope("statistics"):  # the tape records them; nothing differentiates them
        stats = {
            "clip_fraction": masked_mean(tf.cast(clipped, mask.dtype), mask),
            "approx_kl": masked_mean(approx_kl(ratio), mask),
            "kl": masked_mean(k3, mask),
        }
    return loss, stats


def value_loss_clipped(
    values: Tensor,
    old_values: Tensor,
    returns: Tensor,
    mask: Tensor,
    clip_range: float,
) -> tuple[Tensor, dict[str, Tensor]]:
    """mean_t[0.5 max((V - R)^2, (V_old + clip(V - V_old, -c, c) - R)^2)]."""
    check_non_negative("clip_range", clip_range)
    check_token_inputs(mask, values=values, old_values=old_values, returns=returns)
    clipped_values = old_values + tf.clip_by_value(values - old_values, -clip_range, clip_range)
    unclipped_error, clipped_error = (values - returns) ** 2, (clipped_values - returns) ** 2
    loss = masked_mean(0.5 * tf.maximum(unclipped_error, clipped_error), mask)
    with tf.name_scope("statistics"):  # the tape records them; nothing differentiates them
        clipped = (tf.abs(values - old_values) > clip_range) & (clipped_error > unclipped_error)
        stats = {"value_clip_fraction": masked_mean(tf.cast(clipped, mask.dtype), mask)}
    return loss, stats


def ppo_lm_loss(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    values: Tensor,
    old_values: Tensor,
    returns: Tensor,
    mask: Tensor,
    clip_eps: float,
    clip_range: float,
    vf_coef: float,
    normalisation: str = "bnpo",
) -> tuple[Tensor, dict[str, Tensor]]:
    """L_clip + vf_coef L_V; stats ``policy_loss``, ``value_loss`` and those of both parts."""
    check_non_negative("vf_coef", vf_coef)
    policy_loss, stats = clipped_policy_loss(
        logp, old_logp, advantages, mask, clip_eps, normalisation
    )
    value_loss, value_stats = value_loss_clipped(values, old_values, returns, mask, clip_range)
    stats = {"policy_loss": policy_loss, "value_loss": value_loss, **stats, **value_stats}
    return policy_loss + vf_coef * value_loss, stats  # L_clip + c_V L_V


# ---------------------------------------------------------------------------------------------
# Preferences: a pair (y_w, y_l) per row; ``weights`` (B,) of 0 or 1 drop padding rows
# ---------------------------------------------------------------------------------------------


def preference_accuracy(margin: Tensor, weights: Tensor | None = None) -> Tensor:
    """The share of pairs with r_w - r_l > 0 (a tie counts wrong), over the pairs weighted 1."""
    return masked_mean(tf.cast(margin > 0, margin.dtype), weights)


def dpo_loss(
    logp_chosen: Tensor,
    logp_rejected: Tensor,
    ref_chosen: Tensor,
    ref_rejected: Tensor,
    beta: float,
    weights: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
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
    loss = -masked_mean(tf.math.log_sigmoid(chosen_rewards - rejected_rewards), weights)
    return loss, chosen_rewards, rejected_rewards


def bradley_terry_loss(reward_chosen: Tensor, reward_rejected: Tensor) -> tuple[Tensor, Tensor]:
    """-mean log sigmoid(r_w - r_l), and the accuracy (share with r_w > r_l)."""
    check_same_shape("reward_chosen", reward_chosen, reward_rejected=reward_rejected)
    margin = reward_chosen - reward_rejected
    return -tf.reduce_mean(tf.math.log_sigmoid(margin)), preference_accuracy(margin)
