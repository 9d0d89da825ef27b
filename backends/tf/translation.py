"""Machine translation with a BLEU reward (outline 6.3.2): self-critical sequence training.

    A_ij = r(y_ij) - r(y^_i)                 the greedy decode y^_i's reward is the baseline
    L(theta) = -1/N sum_ij A_ij sum_t m_ijt log pi_theta(y_ijt | x_i, y_ij,<t)

(Rennie et al., CVPR 2017.) Rows are source-major: the k samples of source i are rows
i k .. i k + k - 1, and m masks each sample's output tokens up to and including <eos>.
Everything around the loss (the language pair, decoding, sacrebleu's rewards, the run) is
host-side and lives once in ``core/cases/translation``; this file holds only the tensors: the
advantage, the loss and the gradient step. The float64 oracle is ``core/reference/scst.py``;
the twin in the other backend has the same names, order and comments
(``duetrl diff translation``).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorflow import Tensor

from duetrl.backends.tf.gpt import GPT
from duetrl.backends.tf.optim import Adam, minimize
from duetrl.backends.tf.rlhf import token_log_probs
from duetrl.core.constants import GRAD_CLIP_NORM
from duetrl.core.interfaces.rlhf import check_non_negative, check_rewards, check_token_inputs


def _per_source(num_samples: int, num_sources: int) -> int:
    """k = N / M; ValueError unless every source has the same whole number of samples."""
    if num_sources < 1 or num_samples % num_sources or num_samples < num_sources:
        raise ValueError(f"greedy_rewards: expected one per source, a divisor of the "
                         f"{num_samples} sample rewards (source-major), got {num_sources}")
    return num_samples // num_sources


def scst_advantages(sample_rewards: Tensor, greedy_rewards: Tensor) -> Tensor:
    """A_ij = r(y_ij) - r(y^_i): (M k,) sample rewards, (M,) greedy rewards -> (M k,)."""
    check_rewards(sample_rewards)
    check_rewards(greedy_rewards)
    k = _per_source(sample_rewards.shape[0], greedy_rewards.shape[0])
    # BEGIN SOLUTION
    baseline = tf.repeat(greedy_rewards, k)  # row i k + j: source i's greedy
    return sample_rewards - baseline
    # END SOLUTION


def scst_loss(logp: Tensor, sample_rewards: Tensor, greedy_rewards: Tensor,
              mask: Tensor) -> Tensor:
    """L = -1/N sum_ij A_ij sum_t m_ijt log pi(y_ijt): (N, T) log-probs and mask -> ()."""
    check_token_inputs(mask, logp=logp)
    # BEGIN SOLUTION
    advantages = scst_advantages(sample_rewards, greedy_rewards)  # (N,)
    check_token_inputs(mask, advantages)
    sequence_logp = tf.reduce_sum(logp * mask, axis=1)  # log pi(y_ij | x_i), padding left out
    return -tf.reduce_mean(advantages * sequence_logp)
    # END SOLUTION


class SCSTLearner:
    """The translation model, its Adam, and one SCST step per call of :meth:`update`.

    Args:
        policy: the ``GPT`` being trained (its maximum-likelihood weights to start from).
        learning_rate: Adam's step size (the loop may change ``self.learning_rate``).
        max_grad_norm: clip the global gradient norm to this (None: no clipping).

    Dropout is off (torch ``eval()``, Keras ``training=False``): the sampled outputs' log-probs
    must be those of the policy that sampled them.

    Example:
        >>> learner = SCSTLearner(GPT(config), learning_rate=1e-4)
        >>> stats = learner.update(tokens, mask, sample_rewards, greedy_rewards)
    """

    def __init__(self, policy: GPT, learning_rate: float = 1e-4,
                 max_grad_norm: float | None = GRAD_CLIP_NORM) -> None:
        check_non_negative("learning_rate", learning_rate)
        self.policy, self.learning_rate = policy, learning_rate
        self.optimizer = Adam(policy, max_grad_norm)
        self.compiled_step = tf.function(self._step, autograph=False)  # eager: several x slower
        self.dtype = tf.as_dtype(policy.wte.embeddings.dtype)

    def update(self, tokens: np.ndarray, mask: np.ndarray, sample_rewards: np.ndarray,
               greedy_rewards: np.ndarray) -> dict[str, float]:
        """One gradient step on the samples ``tokens`` (N, T+1) (prompt and output), their
        output ``mask`` (N, T), rewards (N,) and their sources' greedy rewards (M,).

        Returns:
            floats: ``loss``, ``grad_norm`` (before clipping), ``advantage`` (mean A),
            ``positive`` (the share of samples that beat their greedy decode).
        """
        tokens, mask = np.asarray(tokens, np.int64), np.asarray(mask)
        check_token_inputs(mask, tokens=tokens[:, 1:])  # column t of mask flags token t+1
        _per_source(len(sample_rewards), len(greedy_rewards))
        stats = self.compiled_step(
            tf.constant(tokens), tf.cast(mask, self.dtype),
            tf.cast(np.asarray(sample_rewards), self.dtype),
            tf.cast(np.asarray(greedy_rewards), self.dtype),
            tf.constant(self.learning_rate, tf.float64))  # a tensor: one trace
        return {name: float(value) for name, value in stats.items()}

    def _step(self, tokens: Tensor, mask: Tensor, sample_rewards: Tensor,
              greedy_rewards: Tensor, learning_rate: Tensor) -> dict[str, Tensor]:
        """Loss, gradients, clipping and Adam (traced once per shape)."""
        # dropout off: token_log_probs calls the model with training=False

        def loss_and_stats() -> tuple[Tensor, dict[str, Tensor]]:
            logp = token_log_probs(self.policy, tokens)  # (N, T)
            loss = scst_loss(logp, sample_rewards, greedy_rewards, mask)
            with tf.name_scope("statistics"):  # the tape records them; nothing differentiates
                advantages = scst_advantages(sample_rewards, greedy_rewards)
                stats = {"advantage": tf.reduce_mean(advantages),
                         "positive": tf.reduce_mean(tf.cast(advantages > 0, advantages.dtype))}
            return loss, stats

        return minimize(self.optimizer, loss_and_stats, learning_rate)
