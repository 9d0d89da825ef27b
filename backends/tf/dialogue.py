"""Dialogue generation with RL (outline 6.1.2; Li et al., EMNLP 2016): the three rewards as
tensors, and the policy-gradient step.

    r1 = -1/N_S sum_{s in S} 1/N_s log p_seq2seq(s | a)                 ease of answering
    r2 = -log max(cos(h_{p_i}, h_a), COS_FLOOR)                         information flow
    r3 = 1/N_a log p_seq2seq(a | q_i, p_i) + 1/N_{q_i} log p_backward(q_i | a)   coherence
    r  = 0.25 r1 + 0.25 r2 + 0.5 r3
    L(theta) = -1/B sum_b A_b sum_t m_bt log pi_theta(a_bt | p_b, q_b, a_b,<t)  (REINFORCE)

The rows the rewards read are built on the host (``core/cases/dialogue/rewards.py``), the
advantages A (return minus a baseline) too (``core/cases/dialogue/train.py``); this file holds
only the tensors. Float64 oracle: ``core/reference/dialogue.py``; the twin in the other
backend has the same names, order and comments (``duetrl diff dialogue``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow import Tensor

from duetrl.backends.tf.gpt import GPT
from duetrl.backends.tf.objectives import reinforce_loss
from duetrl.backends.tf.optim import Adam, minimize
from duetrl.backends.tf.rlhf import token_log_probs
from duetrl.core.constants import GRAD_CLIP_NORM
from duetrl.core.interfaces.dialogue import COS_FLOOR, REWARD_WEIGHTS
from duetrl.core.interfaces.rlhf import check_non_negative, check_token_inputs


def normalised_log_prob(logp: Tensor, mask: Tensor) -> Tensor:
    """1/N sum_t m_t log p_t over the last axis: (..., T) -> (...), N = sum_t m_t."""
    return tf.reduce_sum(logp * mask, axis=-1) / tf.reduce_sum(mask, axis=-1)


def ease_of_answering(dull_logp: Tensor, dull_mask: Tensor) -> Tensor:
    """r1 = -1/N_S sum_s 1/N_s log p(s | a): (B, N_S, T) log-probs and masks -> (B,)."""
    return -tf.reduce_mean(normalised_log_prob(dull_logp, dull_mask), axis=1)


def information_flow(h_previous: Tensor, h_next: Tensor, floor: float = COS_FLOOR) -> Tensor:
    """r2 = -log max(cos(h_p, h_a), floor): (B, D) encodings -> (B,)."""
    dot = tf.reduce_sum(h_previous * h_next, axis=1)
    cos = dot / (tf.norm(h_previous, axis=1)
                 * tf.norm(h_next, axis=1))
    return -tf.math.log(tf.maximum(cos, floor))  # the floor keeps r2 finite


def semantic_coherence(forward_logp: Tensor, forward_mask: Tensor, backward_logp: Tensor,
                       backward_mask: Tensor) -> Tensor:
    """r3 = 1/N_a log p(a | q, p) + 1/N_q log p_backward(q | a): (B, T) each -> (B,)."""
    return (normalised_log_prob(forward_logp, forward_mask)
            + normalised_log_prob(backward_logp, backward_mask))


def combined_reward(r1: Tensor, r2: Tensor, r3: Tensor,
                    weights: tuple[float, float, float] = REWARD_WEIGHTS) -> Tensor:
    """r = l1 r1 + l2 r2 + l3 r3 (default 0.25, 0.25, 0.5)."""
    return weights[0] * r1 + weights[1] * r2 + weights[2] * r3


def _rewards_graph(chatbot: GPT, backward: GPT, weights: tuple[float, float, float],
                   floor: float) -> Any:
    """The four rewards of one batch of rows (traced once per shape, kept on the chatbot)."""
    graphs = chatbot.__dict__.setdefault("_dialogue_graphs", {})
    key = (id(backward), weights, floor)

    def rewards(rows: dict[str, Tensor]) -> dict[str, Tensor]:
        b = tf.shape(rows["forward_tokens"])[0]
        dull = token_log_probs(chatbot, rows["dull_tokens"])  # (B N_S, T)
        r1 = ease_of_answering(tf.reshape(dull, (b, -1, dull.shape[-1])),
                               tf.reshape(rows["dull_mask"], (b, -1, dull.shape[-1])))
        h_p = chatbot.hidden_states(rows["previous_tokens"])[:, -1]  # at p's closing <sep>
        h_a = chatbot.hidden_states(rows["next_tokens"])[:, -1]
        r2 = information_flow(h_p, h_a, floor)
        r3 = semantic_coherence(token_log_probs(chatbot, rows["forward_tokens"]),
                                rows["forward_mask"],
                                token_log_probs(backward, rows["backward_tokens"]),
                                rows["backward_mask"])
        return {"r1": r1, "r2": r2, "r3": r3, "reward": combined_reward(r1, r2, r3, weights)}

    if key not in graphs:  # eager Keras is several times slower
        graphs[key] = tf.function(rewards, autograph=False)
    return graphs[key]


def turn_rewards(chatbot: GPT, backward: GPT, rows: dict[str, np.ndarray],
                 weights: tuple[float, float, float] = REWARD_WEIGHTS,
                 floor: float = COS_FLOOR) -> dict[str, np.ndarray]:
    """``r1``, ``r2``, ``r3``, ``reward`` (B,) as NumPy, from the rows of
    ``core.cases.dialogue.rewards.reward_rows``; no gradient flows (the reward is a number)."""
    # dropout off: token_log_probs and hidden_states call the models with training=False
    dtype = tf.as_dtype(chatbot.wte.embeddings.dtype)
    tensors = {k: tf.constant(v) if k.endswith("tokens") else tf.cast(v, dtype)
               for k, v in rows.items()}
    out = _rewards_graph(chatbot, backward, tuple(weights), floor)(tensors)
    return {k: tf.cast(v, tf.float64).numpy() for k, v in out.items()}


class DialogueLearner:
    """The chatbot being trained by policy gradient, its Adam, one step per :meth:`update`.

    Args:
        policy: the ``GPT`` (its maximum-likelihood weights to start from).
        learning_rate: Adam's step size (the loop may change ``self.learning_rate``).
        max_grad_norm: clip the global gradient norm to this (None: no clipping).

    Dropout is off: the sampled replies' log-probs must be those of the policy that sampled.
    """

    def __init__(self, policy: GPT, learning_rate: float = 1e-4,
                 max_grad_norm: float | None = GRAD_CLIP_NORM) -> None:
        check_non_negative("learning_rate", learning_rate)
        self.policy, self.learning_rate = policy, learning_rate
        self.optimizer = Adam(policy, max_grad_norm)
        self.compiled_step = tf.function(self._step, autograph=False)  # eager: several x slower
        self.dtype = tf.as_dtype(policy.wte.embeddings.dtype)

    def update(self, tokens: np.ndarray, mask: np.ndarray,
               advantages: np.ndarray) -> dict[str, float]:
        """One REINFORCE step on the turns ``tokens`` (N, T+1) (context and reply), the mask
        (N, T) of the reply tokens the curriculum trains, and their advantages (N,).

        Returns floats: ``loss``, ``grad_norm`` (before clipping).
        """
        tokens, mask = np.asarray(tokens, np.int64), np.asarray(mask)
        check_token_inputs(mask, np.asarray(advantages), tokens=tokens[:, 1:])
        stats = self.compiled_step(
            tf.constant(tokens), tf.cast(mask, self.dtype),
            tf.cast(np.asarray(advantages), self.dtype),
            tf.constant(self.learning_rate, tf.float64))  # a tensor: one trace
        return {name: float(value) for name, value in stats.items()}

    def _step(self, tokens: Tensor, mask: Tensor, advantages: Tensor,
              learning_rate: Tensor) -> dict[str, Tensor]:
        """Loss, gradients, clipping and Adam (traced once per shape)."""
        # dropout off: token_log_probs calls the model with training=False

        def loss_and_stats() -> tuple[Tensor, dict[str, Tensor]]:
            logp = token_log_probs(self.policy, tokens)  # (N, T)
            return reinforce_loss(logp, advantages, mask), {}

        return minimize(self.optimizer, loss_and_stats, learning_rate)
