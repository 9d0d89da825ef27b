"""RL for language models (outline 2.3, 3.1.4-3.1.5) in float64 NumPy: the GPT as a policy.

    log pi(y_t | x, y_<t) = log softmax(LN_f(h_L) W_te^T)_t [y_t]    (the tied head)
    H_t = -sum_v p_v log p_v                                        (the policy's entropy)
    v_t = LN_f(h_L)_t w + b                                         (a scalar head: V, a reward)
    score(y) = v at y's last completion token                       (a reward model's score)

The oracle of each backend's ``rlhf.py`` (``token_log_probs``, ``policy_outputs``,
``ValueHead``, ``sequence_scores``), from canonical GPT parameters
(``core/interfaces/gpt_params.py``) and the head's (``init_value_head_params``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.rlhf import last_token_index
from duetrl.core.reference.functional import log_softmax
from duetrl.core.reference.gpt import gpt_hidden_states

# ---------------------------------------------------------------------------------------------
# The GPT as a policy, and its scalar head (oracles of the backends' token_log_probs, ValueHead)
# ---------------------------------------------------------------------------------------------


def token_log_probs(
    params: Mapping[str, np.ndarray], tokens: np.ndarray, config: GPTConfig
) -> np.ndarray:
    """log pi(tokens[:, t+1] | tokens[:, :t+1]) for every t: ``(B, T)`` ids -> ``(B, T-1)``."""
    tokens = np.asarray(tokens)
    hidden = hidden_states(params, tokens[:, :-1], config)  # (B, T-1, D)
    logits = hidden @ np.asarray(params["wte.embeddings"], np.float64).T  # the tied head
    logp = log_softmax(logits)  # (B, T-1, V)
    return np.take_along_axis(logp, tokens[:, 1:, None], axis=-1)[..., 0]


def token_entropy(logits: np.ndarray) -> np.ndarray:
    """H_t = -sum_v p_v log p_v of each position's next-token distribution: (..., V) -> (...)."""
    logp = log_softmax(logits)
    return -(np.exp(logp) * logp).sum(axis=-1)


def hidden_states(
    params: Mapping[str, np.ndarray], tokens: np.ndarray, config: GPTConfig
) -> np.ndarray:
    """LN_f(h_L) ``(B, T, D)``: the GPT's last hidden states, the input of its tied head and of
    a value head (:func:`duetrl.core.reference.gpt.gpt_hidden_states`)."""
    return gpt_hidden_states(dict(params), tokens, config, name="tokens")


def scalar_head(
    params: Mapping[str, np.ndarray],
    head_params: Mapping[str, np.ndarray],
    tokens: np.ndarray,
    config: GPTConfig,
) -> np.ndarray:
    """v_t = LN_f(h_L)_t w + b for every position: ``(B, T)`` ids -> ``(B, T)`` values."""
    hidden = hidden_states(params, tokens, config)  # (B, T, D)
    kernel = np.asarray(head_params["linear.kernel"], np.float64)
    return (hidden @ kernel)[..., 0] + float(np.asarray(head_params["linear.bias"])[0])


def sequence_scores(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A reward model's score: the head's value at the last completion token.

    :param values: ``(B, T)`` head outputs on the full tokens.
    :param mask: ``(B, T-1)`` completion mask (column t flags token t+1).
    :returns: ``(B,)``: values[b, last_b + 1].
    """
    values = np.asarray(values, np.float64)
    return values[np.arange(values.shape[0]), last_token_index(mask) + 1]


__all__ = [
    "hidden_states",
    "scalar_head",
    "sequence_scores",
    "token_entropy",
    "token_log_probs",
]
