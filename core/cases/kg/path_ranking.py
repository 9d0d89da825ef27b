"""The baseline: rank entities by how often random walks from the query's entity reach them.

From e_q, ``walks`` walks of T uniform steps (the stay or any edge of the graph, as the agent
may take) are drawn; an entity's score is the share of walks that end on it:

    score(e) = #{walks ending on e} / walks        (ties, e.g. all the unreached: mean place)

It knows the graph's neighbourhoods but not the query relation: what a walk that has learned
*which* edges to follow adds is the difference between its hits@k and these.
"""

from __future__ import annotations

import numpy as np

from duetrl.core.cases.kg.walk import ActionGrid, random_walk_ends


def random_walk_scores(
    grid: ActionGrid, queries: np.ndarray, hops: int, walks: int, rng: np.random.Generator
) -> np.ndarray:
    """(Q, E): the share of ``walks`` uniform walks of ``hops`` steps from each query's entity
    that end on each entity."""
    if not isinstance(walks, int) or walks < 1:
        raise ValueError(f"walks: expected an int >= 1, got {walks!r}")
    queries = np.asarray(queries, np.int64).reshape(-1, 3)
    starts = np.repeat(queries[:, 0], walks)  # query-major
    ends = random_walk_ends(grid, starts, hops, rng).reshape(len(queries), walks)
    scores = np.zeros((len(queries), grid.relations.shape[0]))
    np.add.at(scores, (np.repeat(np.arange(len(queries)), walks), ends.reshape(-1)), 1.0)
    return scores / walks
