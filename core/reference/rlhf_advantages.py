"""RL for language models (outline 2.3, 3.1.4-3.1.5) in float64 NumPy: KL estimators, advantages.

From a batch's scores and log-probs to what the loss weighs: the per-token KL estimators,
the group advantages of GRPO and RLOO, PPO's KL-shaped per-token rewards, GAE over completion
tokens and its whitening, on host arrays (the training loop calls them once per batch). With
the losses in ``rlhf.py`` this is the float64 oracle of each backend's ``objectives.py``; the
GPT as a policy is in ``rlhf_policy.py``, the batch contract and its checks in
``core/interfaces/rlhf.py``.

The conventions pinned (the log-ratio's sign, GRPO's unbiased group std, prompt-major
groups) are stated once, in ``core/interfaces/rlhf.py``.
"""

from __future__ import annotations

import numpy as np

from duetrl.core.constants import GROUP_ADVANTAGE_EPS, GROUP_STD_DDOF
from duetrl.core.interfaces.rlhf import (
    ADVANTAGE_SCALES,
    check_choice,
    check_group,
    check_non_negative,
    check_rewards,
    check_same_shape,
    check_token_inputs,
    last_token_index,
)
from duetrl.core.reference.returns import gae, normalize_advantages

# ---------------------------------------------------------------------------------------------
# KL estimators
# ---------------------------------------------------------------------------------------------


def kl_k1(logp: np.ndarray, ref_logp: np.ndarray) -> np.ndarray:
    """k1 = -l = log pi(y_t) - log pi_ref(y_t), with l = ref_logp - logp; per token.

    Unbiased for KL(pi || pi_ref) when y ~ pi, but negative on some samples. Folded into the
    reward it gives the exact gradient of E[r] - beta KL.
    """
    check_same_shape("logp", logp, ref_logp=ref_logp)
    return np.asarray(logp, np.float64) - np.asarray(ref_logp, np.float64)  # k1 = -l


def kl_k2(logp: np.ndarray, ref_logp: np.ndarray) -> np.ndarray:
    """k2 = l^2 / 2 with l = ref_logp - logp; biased, low variance, always >= 0."""
    check_same_shape("logp", logp, ref_logp=ref_logp)
    log_ratio = np.asarray(ref_logp, np.float64) - np.asarray(logp, np.float64)  # l
    return 0.5 * log_ratio**2  # k2 = l^2 / 2


def kl_k3(logp: np.ndarray, ref_logp: np.ndarray) -> np.ndarray:
    """k3 = exp(l) - 1 - l with l = ref_logp - logp; unbiased for KL(pi || pi_ref), always >= 0.

    As a loss term (GRPO) its gradient is that of KL(pi_ref || pi), not KL(pi || pi_ref):
    d k3 / d logp = 1 - pi_ref / pi, whose expectation under pi is -sum pi_ref grad log pi.
    """
    check_same_shape("logp", logp, ref_logp=ref_logp)
    log_ratio = np.asarray(ref_logp, np.float64) - np.asarray(logp, np.float64)  # l
    return np.expm1(log_ratio) - log_ratio  # k3 = e^l - 1 - l


def approx_kl(ratio: np.ndarray) -> np.ndarray:
    """(rho - 1) - log rho with rho = pi / pi_old = e^(lp - lp_old): k3 of pi_old against pi
    (l = log rho), always >= 0; the ``approx_kl`` statistic of the clipped losses."""
    ratio = np.asarray(ratio, np.float64)
    return (ratio - 1.0) - np.log(ratio)  # k3 with l = log rho


# ---------------------------------------------------------------------------------------------
# Advantages
# ---------------------------------------------------------------------------------------------


def group_advantages(rewards: np.ndarray, group_size: int, scale: str = "std") -> np.ndarray:
    """Group-relative advantages, one per completion, rewards laid out prompt-major.

        scale="std" (GRPO):      A_i = (r_i - mean_g) / (std_g + eps)
        scale="none" (Dr. GRPO): A_i = r_i - mean_g

    ========  ======  ===============================================================
    Symbol    Shape   Description
    ========  ======  ===============================================================
    r         (N,)    rewards, N = prompts x group_size; consecutive entries share a prompt
    mean_g    ()      mean of the group_size rewards of r_i's prompt
    std_g     ()      their UNBIASED std, sqrt(sum (r - mean_g)^2 / (k - 1)) (GROUP_STD_DDOF)
    eps       ()      GROUP_ADVANTAGE_EPS = 1e-4
    ========  ======  ===============================================================

    A group whose rewards are all equal gets zero advantages (never NaN).
    """
    rewards = np.asarray(rewards, np.float64)
    check_rewards(rewards)
    check_group(rewards.shape[0], group_size)
    check_choice("scale", scale, ADVANTAGE_SCALES)
    grouped = rewards.reshape(-1, group_size)  # (prompts, k)
    centred = grouped - grouped.mean(axis=1, keepdims=True)  # r - mean_g
    if scale == "std":
        std = grouped.std(axis=1, ddof=GROUP_STD_DDOF, keepdims=True)  # unbiased std_g
        centred = centred / (std + GROUP_ADVANTAGE_EPS)
    return centred.reshape(-1)


def rloo_advantages(rewards: np.ndarray, group_size: int) -> np.ndarray:
    """REINFORCE leave-one-out: A_i = r_i - 1/(k-1) sum_{j != i} r_j = k/(k-1) (r_i - mean_g).

    Rewards ``(N,)`` prompt-major as in :func:`group_advantages`; the baseline of a sample
    never uses the sample itself, so it stays unbiased.
    """
    rewards = np.asarray(rewards, np.float64)
    check_rewards(rewards)
    check_group(rewards.shape[0], group_size)
    grouped = rewards.reshape(-1, group_size)  # (prompts, k)
    others = (grouped.sum(axis=1, keepdims=True) - grouped) / (group_size - 1)  # mean of others
    return (grouped - others).reshape(-1)


def kl_shaped_rewards(
    score: np.ndarray, logp: np.ndarray, ref_logp: np.ndarray, mask: np.ndarray, beta: float
) -> np.ndarray:
    """Per-token rewards of PPO for LMs (Ziegler et al. 2019, Stiennon et al. 2020):

        r_t = -beta * k1_t * m_t + score * [t == last completion token]

    with k1_t = logp_t - ref_logp_t. Summed over a sequence: score - beta * KL estimate.

    :param score: ``(B,)`` the task's (or reward model's) score of each completion.
    :param logp: ``(B, T)`` log pi of the sampled tokens (the sampling policy's).
    :param ref_logp: ``(B, T)`` log pi_ref of the same tokens.
    :param mask: ``(B, T)`` completion mask; every row needs at least one 1.
    :param beta: KL coefficient >= 0.
    :returns: ``(B, T)`` float64 rewards, 0 outside the mask.
    """
    check_non_negative("beta", beta)
    check_token_inputs(mask, logp=logp, ref_logp=ref_logp)
    check_same_shape("mask rows", np.zeros(np.shape(mask)[:1]), score=score)
    mask = np.asarray(mask, np.float64)
    rewards = -beta * kl_k1(logp, ref_logp) * mask  # -beta k1_t on completion tokens
    rows = np.arange(mask.shape[0])
    rewards[rows, last_token_index(mask)] += np.asarray(score, np.float64)  # + score at the end
    return rewards


def token_gae(
    rewards: np.ndarray, values: np.ndarray, mask: np.ndarray, gamma: float = 1.0,
    lam: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """GAE over completion tokens, by :func:`duetrl.core.reference.returns.gae`:

        delta_t = r_t + gamma V(s_{t+1}) - V(s_t)      (V after the last token = 0)
        A_t = delta_t + gamma lambda A_{t+1},   R_t = A_t + V(s_t)

    The episode terminates at each row's last completion token; prompt and padding columns
    are zero in the outputs.

    :param rewards: ``(B, T)`` per-token rewards (:func:`kl_shaped_rewards`).
    :param values: ``(B, T)`` V(s_t) of the sampling-time value head.
    :param mask: ``(B, T)`` completion mask.
    :returns: ``(advantages, returns)``, each ``(B, T)`` float64.
    """
    check_token_inputs(mask, rewards=rewards, values=values)
    mask = np.asarray(mask, np.float64)
    rewards = np.asarray(rewards, np.float64) * mask
    values = np.asarray(values, np.float64) * mask
    terminations = np.zeros_like(mask)
    terminations[np.arange(mask.shape[0]), last_token_index(mask)] = 1.0  # episode ends here
    next_values = np.concatenate([values[:, 1:], np.zeros_like(values[:, :1])], axis=1)
    advantages, returns = gae(  # time-major (T, B), as core/reference/returns.py expects
        rewards.T, values.T, next_values.T, terminations.T, np.zeros_like(mask).T, gamma, lam
    )
    return advantages.T * mask, returns.T * mask


def whiten_advantages(advantages: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(A - mean) / (std + eps) over the completion tokens (population std, ADVANTAGE_EPS);
    :func:`duetrl.core.reference.returns.normalize_advantages` with the mask. 0 outside it."""
    check_token_inputs(mask, advantages=advantages)
    return normalize_advantages(advantages, mask)


__all__ = [
    "approx_kl",
    "group_advantages",
    "kl_k1",
    "kl_k2",
    "kl_k3",
    "kl_shaped_rewards",
    "rloo_advantages",
    "token_gae",
    "whiten_advantages",
]
