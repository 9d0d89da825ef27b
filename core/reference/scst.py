"""Self-critical sequence training (Rennie et al., CVPR 2017) in float64 NumPy: the oracle of
``backends/{torch,tf}/translation.py`` (outline 6.3.2).

For each source x_i the policy samples k outputs y_ij and decodes one greedily, y^_i; a
sequence-level reward r (sentence BLEU) scores each against the reference. The greedy
decode's reward is the baseline, so a sample is pushed up exactly when it beats what the
model would output at test time:

    A_ij = r(y_ij) - r(y^_i)                                        (the self-critical advantage)
    L(theta) = -1/N sum_ij A_ij sum_t m_ijt log pi_theta(y_ijt | x_i, y_ij,<t)     N = sum_i k
    grad L = -1/N sum_ij A_ij grad log pi_theta(y_ij | x_i)      (REINFORCE with a baseline)

m masks the output tokens (1 up to and including <eos>, 0 on padding and on the prompt); the
baseline does not depend on y_ij, so it leaves the gradient unbiased and only cuts its
variance. Rows are source-major: the k samples of source i are rows i k .. i k + k - 1.
"""

from __future__ import annotations

import numpy as np

from duetrl.core.interfaces.rlhf import check_rewards, check_token_inputs


def samples_per_source(num_samples: int, num_sources: int) -> int:
    """k = N / M: how many sampled outputs each greedy baseline serves; ValueError unless it
    is a whole number >= 1."""
    if num_sources < 1 or num_samples % num_sources or num_samples < num_sources:
        raise ValueError(f"greedy_rewards: expected one per source, a divisor of the "
                         f"{num_samples} sample rewards (source-major), got {num_sources}")
    return num_samples // num_sources


def scst_advantages(sample_rewards: np.ndarray, greedy_rewards: np.ndarray) -> np.ndarray:
    """A_ij = r(y_ij) - r(y^_i): ``(M k,)`` sample and ``(M,)`` greedy rewards -> ``(M k,)``."""
    check_rewards(sample_rewards)
    check_rewards(greedy_rewards)
    sample = np.asarray(sample_rewards, np.float64)
    greedy = np.asarray(greedy_rewards, np.float64)
    k = samples_per_source(sample.shape[0], greedy.shape[0])
    return sample - np.repeat(greedy, k)  # row i k + j gets the baseline of source i


def scst_loss(token_logp: np.ndarray, sample_rewards: np.ndarray, greedy_rewards: np.ndarray,
              mask: np.ndarray) -> float:
    """L = -1/N sum_ij A_ij sum_t m_ijt log pi(y_ijt | ...): ``(N, T)`` token log-probs of the
    samples, ``(N,)`` and ``(M,)`` rewards, ``(N, T)`` mask -> a float."""
    check_token_inputs(mask, token_logp=token_logp)
    advantages = scst_advantages(sample_rewards, greedy_rewards)
    check_token_inputs(mask, advantages)
    sequence_logp = (np.asarray(token_logp, np.float64) * np.asarray(mask, np.float64)).sum(1)
    return float(-(advantages * sequence_logp).mean())


def scst_loss_gradient(token_logp: np.ndarray, sample_rewards: np.ndarray,
                       greedy_rewards: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """dL / d log pi(y_ijt) = -A_ij m_ijt / N: ``(N, T)``, what autograd must give."""
    check_token_inputs(mask, token_logp=token_logp)
    advantages = scst_advantages(sample_rewards, greedy_rewards)
    mask = np.asarray(mask, np.float64)
    return -advantages[:, None] * mask / mask.shape[0]


__all__ = ["samples_per_source", "scst_advantages", "scst_loss", "scst_loss_gradient"]
