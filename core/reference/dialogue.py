"""The three rewards of RL dialogue generation in float64 NumPy (Li et al., EMNLP 2016,
section 3.3): the oracle of ``backends/{torch,tf}/dialogue.py`` (outline 6.1.2).

A turn is scored from the state (p_i, q_i) -- the turn before last and the last turn -- and
the action a, the reply. All log-probabilities are length-normalised sums of token log-probs
under a mask (1 on the scored sequence's tokens, its closing <sep> included):

    r1 = -1/N_S sum_{s in S} 1/N_s log p_seq2seq(s | a)         ease of answering
    r2 = -log cos(h_{p_i}, h_a)                                 information flow
    r3 = 1/N_a log p_seq2seq(a | q_i, p_i) + 1/N_{q_i} log p_backward(q_i | a)
                                                                semantic coherence
    r  = 0.25 r1 + 0.25 r2 + 0.5 r3                             (the paper's weights)

S is the list of dull replies; N_s, N_a, N_{q_i} are token counts. h_x is the chatbot's last
hidden state LN_f(h_L) at the closing <sep> of turn x, read with x as the only context: the
state from which it would answer x (the paper reads its encoder's). Two turns of one agent
(p_i, then its next turn a) that encode alike give cos near 1 and r2 near 0; cos is floored at
``COS_FLOOR`` so that r2 stays finite (cos <= 0, unrelated or opposite turns, scores
-log COS_FLOOR, the most a turn can earn).
"""

from __future__ import annotations

import numpy as np

from duetrl.core.interfaces.dialogue import COS_FLOOR, REWARD_WEIGHTS
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.reference.functional import log_softmax
from duetrl.core.reference.gpt import gpt_forward, gpt_hidden_states


def _check_masked(logp: np.ndarray, mask: np.ndarray, name: str) -> None:
    if np.shape(logp) != np.shape(mask):
        raise ValueError(f"{name}: expected the shape of its mask {np.shape(mask)}, got "
                         f"{np.shape(logp)}")
    if np.any(np.sum(mask, axis=-1) <= 0):
        raise ValueError(f"{name}: expected every sequence to have at least one token in its "
                         "mask, got an empty one")


def normalised_log_prob(logp: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """1/N sum_t m_t log p_t over the last axis: ``(..., T)`` -> ``(...)``, N = sum_t m_t."""
    logp, mask = np.asarray(logp, np.float64), np.asarray(mask, np.float64)
    return (logp * mask).sum(-1) / mask.sum(-1)


def ease_of_answering(dull_logp: np.ndarray, dull_mask: np.ndarray) -> np.ndarray:
    """r1 = -1/N_S sum_s 1/N_s log p(s | a): ``(B, N_S, T)`` token log-probs of each dull
    reply s after each turn a, and their masks -> ``(B,)``."""
    _check_masked(dull_logp, dull_mask, "dull_logp")
    if np.ndim(dull_logp) != 3:
        raise ValueError(f"dull_logp: expected shape (B, N_S, T), got {np.shape(dull_logp)}")
    return -normalised_log_prob(dull_logp, dull_mask).mean(axis=1)


def information_flow(h_previous: np.ndarray, h_next: np.ndarray,
                     floor: float = COS_FLOOR) -> np.ndarray:
    """r2 = -log max(cos(h_p, h_a), floor): ``(B, D)`` encodings of one agent's consecutive
    turns -> ``(B,)``."""
    a, b = np.asarray(h_previous, np.float64), np.asarray(h_next, np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"h_next: expected the shape of h_previous {a.shape} (B, D), got "
                         f"{b.shape}")
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return -np.log(np.maximum(cos, floor))


def semantic_coherence(forward_logp: np.ndarray, forward_mask: np.ndarray,
                       backward_logp: np.ndarray, backward_mask: np.ndarray) -> np.ndarray:
    """r3 = 1/N_a log p(a | q, p) + 1/N_q log p_backward(q | a): ``(B, T)`` token log-probs
    of the reply under the chatbot and of the last turn under the backward model -> ``(B,)``."""
    _check_masked(forward_logp, forward_mask, "forward_logp")
    _check_masked(backward_logp, backward_mask, "backward_logp")
    return (normalised_log_prob(forward_logp, forward_mask)
            + normalised_log_prob(backward_logp, backward_mask))


def combined_reward(r1: np.ndarray, r2: np.ndarray, r3: np.ndarray,
                    weights: tuple[float, float, float] = REWARD_WEIGHTS) -> np.ndarray:
    """r = l1 r1 + l2 r2 + l3 r3 (default 0.25, 0.25, 0.5)."""
    l1, l2, l3 = weights
    return (l1 * np.asarray(r1, np.float64) + l2 * np.asarray(r2, np.float64)
            + l3 * np.asarray(r3, np.float64))


def token_log_probs(params: dict[str, np.ndarray], tokens: np.ndarray,
                    config: GPTConfig) -> np.ndarray:
    """log p(tokens[:, t+1] | tokens[:, :t+1]) ``(B, T-1)`` under a float64 GPT."""
    tokens = np.asarray(tokens)
    logp = log_softmax(gpt_forward(params, tokens[:, :-1], config))
    return np.take_along_axis(logp, tokens[:, 1:, None], axis=-1)[..., 0]


def turn_rewards(chatbot: dict[str, np.ndarray], backward: dict[str, np.ndarray],
                 config: GPTConfig, rows: dict[str, np.ndarray],
                 weights: tuple[float, float, float] = REWARD_WEIGHTS,
                 floor: float = COS_FLOOR) -> dict[str, np.ndarray]:
    """``r1``, ``r2``, ``r3`` and ``reward`` ``(B,)`` of B turns from the two models' float64
    parameters and the rows of ``core.cases.dialogue.rewards.reward_rows``."""
    b = rows["forward_tokens"].shape[0]
    dull = token_log_probs(chatbot, rows["dull_tokens"], config)
    r1 = ease_of_answering(dull.reshape(b, -1, dull.shape[-1]),
                           rows["dull_mask"].reshape(b, -1, dull.shape[-1]))
    h_p = gpt_hidden_states(chatbot, rows["previous_tokens"], config)[:, -1]
    h_a = gpt_hidden_states(chatbot, rows["next_tokens"], config)[:, -1]
    r2 = information_flow(h_p, h_a, floor)
    r3 = semantic_coherence(token_log_probs(chatbot, rows["forward_tokens"], config),
                            rows["forward_mask"],
                            token_log_probs(backward, rows["backward_tokens"], config),
                            rows["backward_mask"])
    return {"r1": r1, "r2": r2, "r3": r3, "reward": combined_reward(r1, r2, r3, weights)}


__all__ = ["COS_FLOOR", "REWARD_WEIGHTS", "combined_reward", "ease_of_answering",
           "information_flow", "normalised_log_prob", "semantic_coherence", "token_log_probs",
           "turn_rewards"]
