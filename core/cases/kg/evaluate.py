"""Answering queries with a trained walker: beam search, filtered ranks, hits@k and MRR.

Beam search keeps, for each query, the W most probable partial walks (sum of log pi along
the walk); after T hops an entity's score is the log of the probability mass of the kept walks
that end on it (log sum exp over them), -inf where none does:

    score(e) = log sum_{walks w in the beam, e_T(w) = e} exp(sum_t log pi(a_t(w) | s_t(w)))

The filtered rank of the answer a of (e_q, r_q, ?) (Bordes et al. 2013): the other known
answers of (e_q, r_q) -- in the graph or held out -- are taken out of the ranking first, so a
query with four right answers is not punished for ranking three of them above the one asked.
Ties are ranked at their mean place: with s the answer's score,

    rank = 1 + #{e kept: s_e > s} + #{e kept, e != a: s_e = s} / 2

so an answer tied with 3 others ranks 2.5 (it would be 1 if ties counted for it, 4 against
it), and entities no walk reached (all -inf) share the mean of the places left.

    hits@k = mean over queries of [rank <= k]        MRR = mean over queries of 1 / rank
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from duetrl.core.cases.kg.walk import ActionGrid, start_walks

HITS_AT = (1, 3, 10)


@dataclass
class Beams:
    """The end of a beam search over Q queries: ``scores`` (Q, E) per entity (log of the kept
    walks' probability mass, -inf where none ends), ``relations`` (Q, W, T) the relation of
    each kept walk's hops, ``log_probs`` (Q, W) each walk's log-probability (-inf: empty)."""

    scores: np.ndarray
    relations: np.ndarray
    log_probs: np.ndarray


def beam_search(
    backend: ModuleType, walker: Any, grid: ActionGrid, queries: np.ndarray, hops: int, width: int
) -> Beams:
    """The ``width`` most probable walks of ``hops`` steps for each query (N, 3) (the answer
    column is not read: nothing is masked, as at test time)."""
    if not isinstance(width, int) or width < 1:
        raise ValueError(f"width: expected an int >= 1, got {width!r}")
    queries = np.asarray(queries, np.int64).reshape(-1, 3)
    q, k = len(queries), grid.width
    beams = np.repeat(queries, width, axis=0)  # (Q W, 3): query-major
    current, previous = start_walks(beams)
    hidden = np.zeros((q * width, walker.config.history_dim))
    log_probs = np.full((q, width), -np.inf)
    log_probs[:, 0] = 0.0  # one live walk per query at first: the W copies are the same walk
    path = np.zeros((q, width, 0), np.int64)
    for _ in range(hops):
        rel, ent = grid.candidates(current)
        log_pi, mask, hidden = backend.inference_step(
            walker,
            hidden,
            previous,
            current,
            beams[:, 1],
            rel,
            ent,
            beams[:, 0],
            beams[:, 2],
            False,
        )
        total = log_probs.reshape(-1, 1) + np.where(mask > 0, log_pi, -np.inf)  # (Q W, K)
        total = total.reshape(q, width * k)
        best = np.argsort(-total, axis=1, kind="stable")[:, :width]  # (Q, W)
        parent, place = best // k, best % k
        rows = (np.arange(q)[:, None] * width + parent).reshape(-1)  # the walk each extends
        log_probs = np.take_along_axis(total, best, axis=1)
        current = ent[rows, place.reshape(-1)]
        previous = rel[rows, place.reshape(-1)]
        hidden = hidden[rows]
        done = path.shape[2]
        path = np.concatenate(
            [
                path.reshape(q * width, done)[rows].reshape(q, width, done),
                previous.reshape(q, width, 1),
            ],
            axis=2,
        )
    scores = np.full((q, walker.config.num_entities), -np.inf)
    ends = current.reshape(q, width)
    for i in range(width):  # log sum exp of the walks that end on each entity
        scores[np.arange(q), ends[:, i]] = np.logaddexp(
            scores[np.arange(q), ends[:, i]], log_probs[:, i]
        )
    return Beams(scores, path, log_probs)


def filtered_ranks(
    scores: np.ndarray, queries: np.ndarray, known: dict[tuple[int, int], set[int]]
) -> np.ndarray:
    """The answer's rank (Q,) among the entities, the other known answers of each query taken
    out, ties at their mean place (the module's docstring)."""
    scores, queries = np.asarray(scores, np.float64), np.asarray(queries, np.int64)
    if scores.ndim != 2 or len(scores) != len(queries):
        raise ValueError(
            f"scores: expected one row per query, ({len(queries)}, E), got {scores.shape}"
        )
    ranks = np.empty(len(queries))
    for i, (head, relation, answer) in enumerate(queries):
        keep = np.ones(scores.shape[1], bool)
        keep[[e for e in known.get((int(head), int(relation)), ()) if e != answer]] = False
        row, target = scores[i, keep], scores[i, answer]
        higher = np.sum(row > target)
        ties = np.sum(row == target) - 1  # the answer itself is kept and equal to itself
        ranks[i] = 1.0 + higher + ties / 2.0
    return ranks


def ranking_metrics(ranks: np.ndarray) -> dict[str, float]:
    """``hits@1``, ``hits@3``, ``hits@10`` and ``mrr`` of the ranks."""
    ranks = np.asarray(ranks, np.float64)
    if ranks.size == 0:
        raise ValueError("ranks: expected at least one query, got none")
    out = {f"hits@{k}": float(np.mean(ranks <= k)) for k in HITS_AT}
    out["mrr"] = float(np.mean(1.0 / ranks))
    return out
