"""The walk's action sets: for every entity, its outgoing edges and the stay action, padded
into one grid, and the moves a batch of walkers makes on it (host-side NumPy).

    row e of the grid:   (NO_OP, e)  (r_1, t_1) ... (r_d, t_d)  (<pad>, e) ... (<pad>, e)
                         the stay    e's d outgoing edges,        padding up to K columns
                                     sorted by (relation, tail)

K = 1 + the largest out-degree. Which places are admissible is the walk's action mask
(``action_mask`` in ``core/reference/kg.py`` and in each backend): not the padding, and,
while training, not the edge that answers the query directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from duetrl.core.interfaces.kg import NO_OP, PAD_RELATION, START


@dataclass(frozen=True)
class ActionGrid:
    """``relations`` and ``targets`` (E, K) int64: column k of row e is the edge (relation,
    target) an agent at entity e may take; column 0 is the stay, the rest edges or padding."""

    relations: np.ndarray
    targets: np.ndarray

    @property
    def width(self) -> int:
        return self.relations.shape[1]

    def candidates(self, entities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The rows of ``entities`` (B,): (relations (B, K), targets (B, K))."""
        return self.relations[entities], self.targets[entities]


def action_grid(num_entities: int, facts: np.ndarray) -> ActionGrid:
    """The grid of ``facts`` (N, 3) rows (head, relation, tail) over ``num_entities``."""
    facts = np.asarray(facts, np.int64).reshape(-1, 3)
    order = np.lexsort((facts[:, 2], facts[:, 1], facts[:, 0]))  # by head, relation, tail
    facts = facts[order]
    degree = np.bincount(facts[:, 0], minlength=num_entities)
    width = 1 + int(degree.max(initial=0))
    entities = np.arange(num_entities)
    relations = np.full((num_entities, width), PAD_RELATION, np.int64)
    targets = np.repeat(entities[:, None], width, axis=1)  # padding points at e itself
    relations[:, 0] = NO_OP  # stay where you are
    first = np.concatenate([[0], np.cumsum(degree)[:-1]])  # each head's first fact
    column = 1 + np.arange(len(facts)) - first[facts[:, 0]]
    relations[facts[:, 0], column] = facts[:, 1]
    targets[facts[:, 0], column] = facts[:, 2]
    return ActionGrid(relations, targets)


@dataclass
class Walks:
    """T hops of N walkers, everything the loss needs, step-major where it has a time axis.

    ``entities`` (N, T+1): e_0 (the query entity) .. e_T; ``relations`` (N, T+1): START, then
    the relation of each hop; ``actions`` (N, T): the column taken; ``candidate_relations`` and
    ``candidate_entities`` (N, T, K): the grid rows of e_0..e_{T-1}; ``masks`` (N, T, K).
    """

    entities: np.ndarray
    relations: np.ndarray
    actions: np.ndarray
    candidate_relations: np.ndarray
    candidate_entities: np.ndarray
    masks: np.ndarray

    def path(self, i: int) -> tuple[int, ...]:
        """Walk i's relations, the stays left out."""
        return tuple(int(r) for r in self.relations[i, 1:] if r != NO_OP)


def start_walks(queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(current entities, previous relations) of walkers standing at each query's head."""
    queries = np.asarray(queries, np.int64).reshape(-1, 3)
    return queries[:, 0].copy(), np.full(len(queries), START, np.int64)


def gumbel_choice(log_pi: np.ndarray, mask: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """argmax_k (log pi_k + g_k) over the admissible places, g_k = -log(-log u_k): a sample of
    pi (B, K) from uniforms drawn on the host, the same for both backends."""
    gumbel = -np.log(-np.log(np.clip(uniforms, 1e-12, 1.0 - 1e-12)))
    return np.argmax(np.where(mask > 0, log_pi + gumbel, -np.inf), axis=1)


def random_walk_ends(
    grid: ActionGrid, starts: np.ndarray, hops: int, rng: np.random.Generator
) -> np.ndarray:
    """Where walks of ``hops`` uniform steps (stay or any edge; no padding) from ``starts``
    end: the path-ranking baseline's walks."""
    current = np.asarray(starts, np.int64).copy()
    for _ in range(hops):
        relations, targets = grid.candidates(current)
        open_places = (relations != PAD_RELATION).astype(np.float64)
        pick = gumbel_choice(np.zeros_like(open_places), open_places, rng.random(open_places.shape))
        current = targets[np.arange(len(current)), pick]
    return current


def walk(
    backend: ModuleType,
    walker: Any,
    grid: ActionGrid,
    queries: np.ndarray,
    hops: int,
    training: bool,
    rng: np.random.Generator,
) -> Walks:
    """Walks of ``hops`` steps sampled from the policy, one per row of ``queries`` (N, 3):
    each step the backend gives log pi and the mask, the host draws the place by Gumbel-max
    with uniforms from ``rng`` (the same in both backends) and moves."""
    queries = np.asarray(queries, np.int64).reshape(-1, 3)
    n = len(queries)
    current, previous = start_walks(queries)
    hidden = np.zeros((n, walker.config.history_dim))
    entities, relations = [current], [previous]
    actions, cand_rel, cand_ent, masks = [], [], [], []
    for _ in range(hops):
        rel, ent = grid.candidates(current)
        log_pi, mask, hidden = backend.inference_step(
            walker,
            hidden,
            previous,
            current,
            queries[:, 1],
            rel,
            ent,
            queries[:, 0],
            queries[:, 2],
            training,
        )
        pick = gumbel_choice(log_pi, mask, rng.random(mask.shape))
        rows = np.arange(n)
        current, previous = ent[rows, pick], rel[rows, pick]
        entities.append(current), relations.append(previous), actions.append(pick)
        cand_rel.append(rel), cand_ent.append(ent), masks.append(mask)
    return Walks(
        np.stack(entities, 1),
        np.stack(relations, 1),
        np.stack(actions, 1),
        np.stack(cand_rel, 1),
        np.stack(cand_ent, 1),
        np.stack(masks, 1),
    )
