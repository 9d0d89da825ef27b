"""The top-K off-policy corrected REINFORCE recommender in float64 NumPy (Chen et al., WSDM
2019, "Top-K Off-Policy Correction for a REINFORCE Recommender System"): the oracle of
``backends/{torch,tf}/recommender.py`` (outline 6.2.2-6.2.3).

A logged event n is (state s_n, shown item a_n, reward R_n, behaviour probability beta_n).
pi(. | s) is the policy's softmax over the N items of the catalogue; the weights in brackets
are constants of the gradient (stop-gradient):

    w_n      = min(pi(a_n | s_n) / beta(a_n | s_n), c)       capped importance weight
    lambda_n = K (1 - pi(a_n | s_n))^(K - 1)                  top-K multiplier
    L_pi     = -1/M sum_n m_n [f_n] R_n log pi(a_n | s_n)    M = sum_n m_n, f_n by method:
               reinforce 1;  off_policy w_n;  top_k lambda_n w_n
    L_beta   = -1/M sum_n m_n log beta_theta'(a_n | sg(s_n))   the behaviour head
    L_next   = -1/M sum_n m_n log pi(h_{n+1} | s_n)          supervised next-item prediction

With f = w the gradient is an unbiased (uncapped) estimate of grad E_{a~pi}[R]; with f = lambda w
it is grad of J_K = E_s sum_a alpha_K(a | s) R(s, a), alpha_K = 1 - (1 - pi)^K, the chance
that a slate of K independent draws from pi holds a (``top_k_objective``; its gradient through
alpha is exactly lambda_K). Off-line estimates of a policy's value from events logged by beta:
IPS = 1/n sum w_n r_n, SNIPS = sum w_n r_n / sum w_n.
"""

from __future__ import annotations

import numpy as np

from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.recommender import (
    check_behaviour_probs,
    check_correction,
    check_events,
    check_items,
)
from duetrl.core.reference.functional import log_softmax
from duetrl.core.reference.gpt import gpt_hidden_states


def softmax(logits: np.ndarray) -> np.ndarray:
    """pi = exp(z) / sum exp(z) over the last axis, in float64."""
    return np.exp(log_softmax(np.asarray(logits, np.float64)))


def top_k_multiplier(pi: np.ndarray, k: int) -> np.ndarray:
    """lambda_K(a | s) = K (1 - pi(a | s))^(K - 1) = d alpha_K / d pi, alpha_K = 1 - (1 - pi)^K."""
    pi = np.asarray(pi, np.float64)
    return k * (1.0 - pi) ** (k - 1)


def importance_weights(pi: np.ndarray, beta: np.ndarray, cap: float) -> np.ndarray:
    """w = min(pi / beta, c); ValueError when a behaviour probability is 0 (or outside (0, 1])."""
    check_behaviour_probs("beta", beta)
    return np.minimum(np.asarray(pi, np.float64) / np.asarray(beta, np.float64), cap)


def event_weights(pi: np.ndarray, beta: np.ndarray, method: str, cap: float, k: int) -> np.ndarray:
    """f_n, the stop-gradient factor of each event: 1, w_n or lambda_n w_n (by ``method``)."""
    check_correction(method, cap, k)
    if method == "supervised":
        raise ValueError(
            "method: 'supervised' has no event weights (it learns from h_{t+1}, "
            "not from rewards); expected one of reinforce, off_policy, top_k"
        )
    pi = np.asarray(pi, np.float64)
    if method == "reinforce":
        return np.ones_like(pi)
    weights = importance_weights(pi, beta, cap)
    return weights * top_k_multiplier(pi, k) if method == "top_k" else weights


def _chosen(logits: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log pi(a | s), pi over all items) of ``logits`` (..., N) at ``actions`` (...)."""
    logp = log_softmax(np.asarray(logits, np.float64))
    check_items("actions", actions, logp.shape[-1])
    return np.take_along_axis(logp, np.asarray(actions)[..., None], axis=-1)[..., 0], np.exp(logp)


def corrected_loss(
    logits: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    beta: np.ndarray,
    mask: np.ndarray,
    method: str = "top_k",
    cap: float = 10.0,
    k: int = 2,
) -> float:
    """L_pi = -1/M sum_n m_n f_n R_n log pi(a_n | s_n): logits (B, E, N), the rest (B, E)."""
    check_events(mask, actions=actions, rewards=rewards, beta=beta)
    logp, _ = _chosen(logits, actions)
    f = event_weights(np.exp(logp), beta, method, cap, k)
    mask = np.asarray(mask, np.float64)
    return float(-(mask * f * np.asarray(rewards, np.float64) * logp).sum() / mask.sum())


def corrected_loss_grad(
    logits: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    beta: np.ndarray,
    mask: np.ndarray,
    method: str = "top_k",
    cap: float = 10.0,
    k: int = 2,
) -> np.ndarray:
    """dL_pi / dz (B, E, N) with f held constant: -1/M m_n f_n R_n (onehot(a_n) - pi(. | s_n))."""
    check_events(mask, actions=actions, rewards=rewards, beta=beta)
    logp, pi = _chosen(logits, actions)
    f = event_weights(np.exp(logp), beta, method, cap, k)
    mask = np.asarray(mask, np.float64)
    onehot = np.eye(pi.shape[-1])[np.asarray(actions)]
    scale = mask * f * np.asarray(rewards, np.float64) / mask.sum()
    return -scale[..., None] * (onehot - pi)


def behaviour_loss(behaviour_logits: np.ndarray, actions: np.ndarray, mask: np.ndarray) -> float:
    """L_beta = -1/M sum_n m_n log beta(a_n | s_n): the behaviour head's cross-entropy."""
    check_events(mask, actions=actions)
    logp, _ = _chosen(behaviour_logits, actions)
    mask = np.asarray(mask, np.float64)
    return float(-(mask * logp).sum() / mask.sum())


def next_item_loss(logits: np.ndarray, targets: np.ndarray, mask: np.ndarray) -> float:
    """L_next = -1/M sum_n m_n log pi(h_{n+1} | s_n): supervised next-item prediction."""
    check_events(mask, targets=targets)
    logp, _ = _chosen(logits, targets)
    mask = np.asarray(mask, np.float64)
    return float(-(mask * logp).sum() / mask.sum())


def slate_inclusion(pi: np.ndarray, k: int) -> np.ndarray:
    """alpha_K(a | s) = 1 - (1 - pi(a | s))^K: the chance a slate of K draws from pi holds a."""
    return 1.0 - (1.0 - np.asarray(pi, np.float64)) ** k


def top_k_objective(logits: np.ndarray, rewards: np.ndarray, k: int) -> float:
    """J_K = sum_a alpha_K(a) R(a) of one state: ``logits`` (N,) and expected rewards (N,)."""
    return float((slate_inclusion(softmax(logits), k) * np.asarray(rewards, np.float64)).sum())


def top_k_objective_grad(logits: np.ndarray, rewards: np.ndarray, k: int) -> np.ndarray:
    """dJ_K / dz_j = pi_j (lambda_j R_j - sum_a pi_a lambda_a R_a) (softmax's Jacobian)."""
    pi = softmax(logits)
    g = top_k_multiplier(pi, k) * np.asarray(rewards, np.float64)  # dJ / dpi_a
    return pi * (g - (pi * g).sum())


def ips(weights: np.ndarray, rewards: np.ndarray) -> float:
    """IPS = 1/n sum_n w_n r_n: unbiased when w = pi_target / beta is not capped."""
    w, r = np.asarray(weights, np.float64).ravel(), np.asarray(rewards, np.float64).ravel()
    if w.shape != r.shape or w.size == 0:
        raise ValueError(
            f"rewards: expected the shape of weights {w.shape} (non-empty), got {r.shape}"
        )
    return float((w * r).mean())


def snips(weights: np.ndarray, rewards: np.ndarray) -> float:
    """SNIPS = sum_n w_n r_n / sum_n w_n: biased, far lower variance (weights normalised)."""
    w, r = np.asarray(weights, np.float64).ravel(), np.asarray(rewards, np.float64).ravel()
    if w.shape != r.shape or w.size == 0:
        raise ValueError(
            f"rewards: expected the shape of weights {w.shape} (non-empty), got {r.shape}"
        )
    if not w.sum() > 0:
        raise ValueError(f"weights: expected a positive sum (SNIPS divides by it), got {w.sum()!r}")
    return float((w * r).sum() / w.sum())


def recommender_outputs(
    params: dict[str, np.ndarray],
    tokens: np.ndarray,
    positions: np.ndarray,
    config: GPTConfig,
    num_items: int,
    item_offset: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(policy logits, behaviour logits), each (B, E, N), of token rows (B, T) at the state
    positions (E,): z = h W_te[items]^T (the tied head's item rows) and z_beta = h K + b
    (the behaviour head, on the same h: its gradient stopped in the backends)."""
    h = gpt_hidden_states(
        {k.removeprefix("gpt."): v for k, v in params.items() if k.startswith("gpt.")},
        tokens,
        config,
        "tokens",
    )
    h = h[:, np.asarray(positions)]  # (B, E, D)
    table = np.asarray(params["gpt.wte.embeddings"], np.float64)
    items = table[item_offset : item_offset + num_items]  # (N, D): the item tokens' rows
    behaviour = h @ np.asarray(params["behaviour.kernel"], np.float64)
    return h @ items.T, behaviour + np.asarray(params["behaviour.bias"], np.float64)


__all__ = [
    "behaviour_loss",
    "corrected_loss",
    "corrected_loss_grad",
    "event_weights",
    "importance_weights",
    "ips",
    "next_item_loss",
    "recommender_outputs",
    "slate_inclusion",
    "snips",
    "softmax",
    "top_k_multiplier",
    "top_k_objective",
    "top_k_objective_grad",
]
