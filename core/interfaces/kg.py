"""The walker of knowledge-graph reasoning (outline 6.3.3; MINERVA, Das et al. 2018): its
symbols, sizes and canonical parameters, shared by the float64 oracle
(``core/reference/kg.py``) and both backends (``backends/*/kg.py``).

Canonical parameters (a kernel is (in, out)); d_r, d_e embedding sizes, H history size, M the
policy MLP's width::

    relation_embeddings.embeddings (R, d_r)      entity_embeddings.embeddings (E, d_e)
    history.input_gates.{kernel (d_r + d_e, 3H), bias (3H,)}     a GRU cell: gates r, z, n
    history.hidden_gates.{kernel (H, 3H), bias (3H,)}
    policy_hidden.{kernel (H + d_e + d_r, M), bias (M,)}
    policy_out.{kernel (M, d_r + d_e), bias (d_r + d_e,)}
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from duetrl.core.initializers import dense_params

SPECIAL_RELATIONS = ("<pad>", "NO_OP", "START")
PAD_RELATION = 0
"""The relation id of an empty place of the padded action grid: never admissible."""
NO_OP = 1
"""The stay action's relation: (NO_OP, the current entity), always admissible."""
START = 2
"""The "relation taken" fed to the history encoder before the first hop."""
EMBEDDING_STD = 0.1
"""Embeddings ~ N(0, 0.1^2), drawn with NumPy (kernels: Glorot-uniform, biases 0)."""


@dataclass(frozen=True)
class WalkerConfig:
    """Sizes of the walker.

    :param num_entities: E, the graph's entities.
    :param num_relations: R, the relation vocabulary with the three special symbols.
    :param relation_dim: d_r, a relation's embedding size.
    :param entity_dim: d_e, an entity's embedding size.
    :param history_dim: H, the GRU's state size (the encoding of the path so far).
    :param mlp_dim: M, the policy MLP's hidden width.
    """

    num_entities: int
    num_relations: int
    relation_dim: int = 32
    entity_dim: int = 32
    history_dim: int = 64
    mlp_dim: int = 64

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
        if self.num_relations <= START:
            raise ValueError(
                f"num_relations: expected more than the {START + 1} special "
                f"symbols, got {self.num_relations}"
            )

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def init_walker_params(
    config: WalkerConfig, seed: int = 0, dtype: str = "float32"
) -> dict[str, np.ndarray]:
    """The walker's initial canonical parameters from ``numpy.random.default_rng(seed)``."""
    rng = np.random.default_rng([seed, 633])
    c = config
    edge = c.relation_dim + c.entity_dim  # an action is [relation embedding; entity embedding]
    params = {
        "relation_embeddings.embeddings": rng.normal(
            0, EMBEDDING_STD, (c.num_relations, c.relation_dim)
        ),
        "entity_embeddings.embeddings": rng.normal(
            0, EMBEDDING_STD, (c.num_entities, c.entity_dim)
        ),
        **dense_params(rng, "history.input_gates", edge, 3 * c.history_dim),
        **dense_params(rng, "history.hidden_gates", c.history_dim, 3 * c.history_dim),
        **dense_params(rng, "policy_hidden", c.history_dim + edge, c.mlp_dim),
        **dense_params(rng, "policy_out", c.mlp_dim, edge),
    }
    return {k: v.astype(dtype) for k, v in params.items()}


def check_walk_arrays(
    candidate_relations: np.ndarray, candidate_entities: np.ndarray, config: WalkerConfig
) -> None:
    """ValueError unless the candidates are two int grids of one shape with ids in range."""
    rel, ent = np.asarray(candidate_relations), np.asarray(candidate_entities)
    if rel.shape != ent.shape:
        raise ValueError(
            f"candidate_entities: expected the shape of candidate_relations "
            f"{rel.shape}, got {ent.shape}"
        )
    for name, ids, size in (
        ("candidate_relations", rel, config.num_relations),
        ("candidate_entities", ent, config.num_entities),
    ):
        if not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"{name}: expected integer ids, got dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= size):
            raise ValueError(f"{name}: expected ids in [0, {size}), got [{ids.min()}, {ids.max()}]")
