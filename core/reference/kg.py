"""Knowledge-graph reasoning by walking the graph (outline 6.3.3; MINERVA, Das et al., ICLR
2018) in float64 NumPy: the oracle of each backend's ``kg.py``.

A query (e_q, r_q, ?) is answered by a walk of T hops from e_q. At step t the walker stands at
e_t, having come by the relation r_t (START at t = 0); its choices are the K places of e_t's
row of the action grid (``core/cases/kg/walk.py``): the stay (NO_OP, e_t), e_t's outgoing
edges (r_k, e_k), padding.

    m_k = 1 unless place k is padding, or (while training) it is the query's own answer edge:
          e_t = e_q, r_k = r_q and e_k = the answer                         (the action mask)
    x_t = [R[r_t]; E[e_t]]                                        (the step's input)
    h_t = GRU(x_t, h_{t-1}),  h_{-1} = 0                          (the history encoder)
    o_t = W_2 ReLU(W_1 [h_t; E[e_t]; R[r_q]] + b_1) + b_2         (the policy MLP), (d_r + d_e)
    s_k = [R[r_k]; E[e_k]] . o_t                                  (each action's score)
    log pi(k | s_t) = s_k - log sum_{j: m_j = 1} exp(s_j)  where m_k = 1, else 0

The GRU (gates in the order reset, update, new; kernels (in, 3H)):

    [a_r, a_z, a_n] = x W_i + b_i,   [c_r, c_z, c_n] = h W_h + b_h
    r = sigma(a_r + c_r),  z = sigma(a_z + c_z),  n = tanh(a_n + r * c_n)
    h' = (1 - z) * n + z * h

The reward is 1 if e_T is the answer, else 0; REINFORCE with a moving-average baseline b and
an entropy bonus (beta), each walk's advantage A_n = R_n - b on each of its T steps:

    L = -1/(N T) sum_n sum_t A_n log pi(a_nt | s_nt) - beta 1/(N T) sum_n sum_t H(pi(. | s_nt))
    H(pi(. | s)) = -sum_k m_k pi_k log pi_k
    b <- (1 - lambda) b + lambda mean_n R_n           (after each update)
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from duetrl.core.constants import MASK_FILL_VALUE
from duetrl.core.interfaces.kg import PAD_RELATION
from duetrl.core.reference.functional import log_softmax


def action_mask(
    candidate_relations: np.ndarray,
    candidate_entities: np.ndarray,
    current_entities: np.ndarray,
    query_entities: np.ndarray,
    query_relations: np.ndarray,
    answers: np.ndarray,
    training: bool,
) -> np.ndarray:
    """m (B, K), float64: 1 for an admissible place, 0 for padding and (``training``) for the
    edge (e_q, r_q, answer) taken from the query entity itself."""
    rel, ent = np.asarray(candidate_relations), np.asarray(candidate_entities)
    open_places = rel != PAD_RELATION
    if training:
        at_query = (np.asarray(current_entities) == np.asarray(query_entities))[:, None]
        answer_edge = (
            at_query
            & (rel == np.asarray(query_relations)[:, None])
            & (ent == np.asarray(answers)[:, None])
        )
        open_places &= ~answer_edge
    return open_places.astype(np.float64)


def masked_log_softmax(scores: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """log pi over the admissible places (B, K) -> (B, K); 0 at the masked ones."""
    scores, mask = np.asarray(scores, np.float64), np.asarray(mask, np.float64)
    filled = np.where(mask > 0, scores, MASK_FILL_VALUE)
    return log_softmax(filled) * mask


def walk_entropy(log_pi: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """H = -sum_k m_k pi_k log pi_k over the last axis."""
    log_pi, mask = np.asarray(log_pi, np.float64), np.asarray(mask, np.float64)
    return -(np.exp(log_pi) * log_pi * mask).sum(-1)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def gru_cell(params: Mapping[str, np.ndarray], x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """h' = (1 - z) n + z h: ``(B, d_r + d_e)`` inputs and ``(B, H)`` state -> ``(B, H)``."""
    a = x @ params["history.input_gates.kernel"] + params["history.input_gates.bias"]
    c = h @ params["history.hidden_gates.kernel"] + params["history.hidden_gates.bias"]
    a_r, a_z, a_n = np.split(a, 3, axis=-1)
    c_r, c_z, c_n = np.split(c, 3, axis=-1)
    r, z = _sigmoid(a_r + c_r), _sigmoid(a_z + c_z)
    n = np.tanh(a_n + r * c_n)
    return (1.0 - z) * n + z * h


def action_scores(
    params: Mapping[str, np.ndarray],
    hidden: np.ndarray,
    current_entities: np.ndarray,
    query_relations: np.ndarray,
    candidate_relations: np.ndarray,
    candidate_entities: np.ndarray,
) -> np.ndarray:
    """s_k = [R[r_k]; E[e_k]] . o_t (B, K), o_t the policy MLP of [h_t; E[e_t]; R[r_q]]."""
    relation_table = params["relation_embeddings.embeddings"]
    entity_table = params["entity_embeddings.embeddings"]
    state = np.concatenate(
        [hidden, entity_table[current_entities], relation_table[query_relations]], axis=-1
    )
    mlp = np.maximum(state @ params["policy_hidden.kernel"] + params["policy_hidden.bias"], 0.0)
    out = mlp @ params["policy_out.kernel"] + params["policy_out.bias"]  # (B, d_r + d_e)
    actions = np.concatenate(
        [relation_table[candidate_relations], entity_table[candidate_entities]], axis=-1
    )  # (B, K, d_r + d_e)
    return np.einsum("bkd,bd->bk", actions, out)


def walker_step(
    params: Mapping[str, np.ndarray],
    hidden: np.ndarray,
    previous_relations: np.ndarray,
    current_entities: np.ndarray,
    query_relations: np.ndarray,
    candidate_relations: np.ndarray,
    candidate_entities: np.ndarray,
    mask: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """One step: (log pi (B, K), h_t (B, H)) from h_{t-1}, r_t, e_t, r_q and e_t's places."""
    params = {k: np.asarray(v, np.float64) for k, v in params.items()}
    x = np.concatenate(
        [
            params["relation_embeddings.embeddings"][previous_relations],
            params["entity_embeddings.embeddings"][current_entities],
        ],
        axis=-1,
    )
    hidden = gru_cell(params, x, np.asarray(hidden, np.float64))
    scores = action_scores(
        params, hidden, current_entities, query_relations, candidate_relations, candidate_entities
    )
    return masked_log_softmax(scores, mask), hidden


def walk_log_probs(
    params: Mapping[str, np.ndarray],
    query_relations: np.ndarray,
    path_relations: np.ndarray,
    path_entities: np.ndarray,
    candidate_relations: np.ndarray,
    candidate_entities: np.ndarray,
    masks: np.ndarray,
) -> np.ndarray:
    """log pi (N, T, K) of every step of N walks replayed: ``path_relations`` and
    ``path_entities`` (N, T) are r_t and e_t, the candidates and masks (N, T, K)."""
    n, t = np.shape(path_entities)
    hidden = np.zeros((n, params["history.hidden_gates.kernel"].shape[0]))
    steps = []
    for step in range(t):
        log_pi, hidden = walker_step(
            params,
            hidden,
            path_relations[:, step],
            path_entities[:, step],
            query_relations,
            candidate_relations[:, step],
            candidate_entities[:, step],
            masks[:, step],
        )
        steps.append(log_pi)
    return np.stack(steps, axis=1)


def walk_loss(
    log_pi: np.ndarray,
    masks: np.ndarray,
    actions: np.ndarray,
    advantages: np.ndarray,
    entropy_coef: float,
) -> tuple[float, dict[str, float]]:
    """L = -1/(N T) sum A_n log pi(a_nt) - beta mean_nt H_nt; stats ``policy_loss``,
    ``entropy``."""
    log_pi = np.asarray(log_pi, np.float64)
    taken = np.take_along_axis(log_pi, np.asarray(actions)[..., None], axis=-1)[..., 0]  # (N, T)
    policy_loss = float(-np.mean(np.asarray(advantages, np.float64)[:, None] * taken))
    entropy = float(np.mean(walk_entropy(log_pi, masks)))
    return policy_loss - entropy_coef * entropy, {"policy_loss": policy_loss, "entropy": entropy}


def walk_loss_gradient(
    log_pi: np.ndarray,
    masks: np.ndarray,
    actions: np.ndarray,
    advantages: np.ndarray,
    entropy_coef: float,
) -> np.ndarray:
    """dL / d log pi (N, T, K), log pi taken as free inputs:
    -A_n [k = a_nt] / (N T) + beta m pi (log pi + 1) / (N T)."""
    log_pi, masks = np.asarray(log_pi, np.float64), np.asarray(masks, np.float64)
    n, t, k = log_pi.shape
    chosen = np.arange(k) == np.asarray(actions)[..., None]  # (N, T, K)
    grad = -np.asarray(advantages, np.float64)[:, None, None] * chosen
    grad = grad + entropy_coef * masks * np.exp(log_pi) * (log_pi + 1.0)
    return grad / (n * t)


def moving_average_baseline(baseline: float, rewards: np.ndarray, rate: float) -> float:
    """b <- (1 - lambda) b + lambda mean(R)."""
    return float((1.0 - rate) * baseline + rate * np.mean(np.asarray(rewards, np.float64)))


__all__ = [
    "action_mask",
    "action_scores",
    "gru_cell",
    "masked_log_softmax",
    "walk_entropy",
    "moving_average_baseline",
    "walk_log_probs",
    "walk_loss",
    "walk_loss_gradient",
    "walker_step",
]
