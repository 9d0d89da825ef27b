"""The learned walks read as rules: which relation paths the policy follows for each query
relation, written as "grandparent = parent . parent".

For every query of relation r, beam search keeps the W most probable walks; a walk's path is
its relations with the stays left out. A path's share is the probability the policy gives it,
summed over the kept walks and averaged over the queries of r:

    share(r, p) = 1/|Q_r| sum_{q in Q_r} sum_{walks w of q with path p} pi(w)

Its confidence is measured on the graph itself, as rule miners do (AMIE's standard
confidence): of the pairs (x, y) that the path links, the share for which (x, r, y) is a fact,
in the graph or held out:

    confidence(r, p) = #{(x, y): x -p-> y and (x, r, y) true} / #{(x, y): x -p-> y}
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from duetrl.core.cases.kg.evaluate import Beams
from duetrl.core.cases.kg.graph import FamilyGraph
from duetrl.core.interfaces.kg import NO_OP

Path = tuple[int, ...]


def rule_text(relations: list[str], query_relation: int, path: Path) -> str:
    """``grandparent = parent . parent`` (a path of stays only: ``r = (stay)``)."""
    body = " . ".join(relations[r] for r in path) if path else "(stay)"
    return f"{relations[query_relation]} = {body}"


def path_shares(beams: Beams, queries: np.ndarray) -> dict[int, dict[Path, float]]:
    """share(r, p) for each query relation r of ``queries`` (Q, 3), from their beams."""
    queries = np.asarray(queries, np.int64).reshape(-1, 3)
    shares: dict[int, dict[Path, float]] = defaultdict(lambda: defaultdict(float))
    counts = np.bincount(queries[:, 1])
    for i, relation in enumerate(queries[:, 1]):
        for walk, log_prob in zip(beams.relations[i], beams.log_probs[i]):
            if np.isfinite(log_prob):
                path = tuple(int(r) for r in walk if r != NO_OP)
                shares[int(relation)][path] += float(np.exp(log_prob)) / counts[relation]
    return {r: dict(p) for r, p in shares.items()}


def rule_confidence(graph: FamilyGraph, query_relation: int, path: Path) -> float:
    """confidence(r, p) on ``graph``'s facts (NaN when the path links no pair)."""
    n = graph.num_entities
    reach = np.eye(n, dtype=bool)
    for relation in path:  # x -p-> y: boolean products of the relations' adjacency matrices
        step = np.zeros((n, n), dtype=bool)
        rows = graph.facts[graph.facts[:, 1] == relation]
        step[rows[:, 0], rows[:, 2]] = True
        reach = (reach.astype(np.int64) @ step.astype(np.int64)) > 0
    truth = np.zeros((n, n), dtype=bool)
    for rows in (graph.facts, graph.heldout):
        rows = rows[rows[:, 1] == query_relation]
        truth[rows[:, 0], rows[:, 2]] = True
    linked = reach.sum()
    return float((reach & truth).sum() / linked) if linked else float("nan")


def learned_rules(
    graph: FamilyGraph, beams: Beams, queries: np.ndarray, top: int = 3
) -> dict[str, list[dict]]:
    """The ``top`` paths of each query relation: ``{relation name: [{"rule", "share",
    "confidence"}, ...]}``, the most followed first."""
    out = {}
    for relation, shares in sorted(path_shares(beams, queries).items()):
        best = sorted(shares.items(), key=lambda item: (-item[1], item[0]))[:top]
        out[graph.relations[relation]] = [
            {
                "rule": rule_text(graph.relations, relation, path),
                "share": round(share, 4),
                "confidence": round(rule_confidence(graph, relation, path), 4),
            }
            for path, share in best
        ]
    return out
