"""Training the walker (outline 6.3.3; MINERVA, Das et al. 2018): REINFORCE with a moving-
average baseline and an entropy bonus, on the queries the graph answers, evaluated on the
facts it misses.

    each update u:  B training queries (e_q, r_q, a), each walked ``rollouts`` times (N walks)
                    T hops sampled from pi, the answer edge masked    (walk.walk)
                    R_n = [e_T = a],  A_n = R_n - b                   (b: the baseline)
                    one Adam step on L = -1/(N T) sum A_n log pi - beta mean H   (backend)
                    b <- (1 - lambda) b + lambda mean R               (after the step)
    held-out:       beam search on the held-out facts' queries, filtered ranks, hits@k, MRR
                    (evaluate.py), against the random walks' ranking (path_ranking.py)

:class:`KGRun` is a trainer of ``duetrl.core.run``. Update u is a function of (weights, Adam's
state, the baseline, seed, u) only: its queries and sampling noise come from
``default_rng((seed, 1, u))``, so a resumed run equals the uninterrupted one.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from duetrl.core.cases.kg.evaluate import beam_search, filtered_ranks, ranking_metrics
from duetrl.core.cases.kg.graph import make_family_graph
from duetrl.core.cases.kg.path_ranking import random_walk_scores
from duetrl.core.cases.kg.rules import learned_rules
from duetrl.core.cases.kg.walk import action_grid, walk
from duetrl.core.checkpoint import (
    Checkpoint,
    CheckpointError,
    load_checkpoint,
    require_same_settings,
)
from duetrl.core.interfaces.kg import WalkerConfig
from duetrl.core.interfaces.settings import setting

KG_KIND = "duetrl.kg"
"""The checkpoint kind: tensor groups ``params`` and ``optim``."""


@dataclass
class KGSettings:
    """Settings of a knowledge-graph run (``duetrl kg train``'s flags mirror these)."""

    families: int = setting(14, "family trees in the graph (about 19 people each)")
    generations: int = setting(4, "generations per tree (>= 3)")
    heldout_fraction: float = setting(0.2, "share of the derived facts taken out of the graph")
    hops: int = setting(3, "T, the hops of every walk (the stay counts as one)")
    relation_dim: int = setting(32, "relation embedding size")
    entity_dim: int = setting(32, "entity embedding size")
    history_dim: int = setting(64, "the GRU history encoder's state size")
    mlp_dim: int = setting(64, "the policy MLP's hidden width")
    updates: int = setting(150, "policy-gradient updates")
    batch_queries: int = setting(64, "training queries per update")
    rollouts: int = setting(8, "walks per training query")
    learning_rate: float = setting(3e-3, "Adam step size")
    entropy_coef: float = setting(0.02, "beta, weight of the entropy bonus")
    baseline_rate: float = setting(0.05, "lambda, the moving-average baseline's update rate")
    beam_width: int = setting(32, "walks kept per query by the evaluation's beam search")
    random_walks: int = setting(256, "walks per query of the random-walk baseline")
    eval_every: int = setting(50, "held-out figures every this many updates (and at the end)")
    seed: int = setting(0, "seeds the graph, the weights, the queries and the noise")

    def __post_init__(self) -> None:
        for name in (
            "families",
            "hops",
            "relation_dim",
            "entity_dim",
            "history_dim",
            "mlp_dim",
            "batch_queries",
            "rollouts",
            "beam_width",
            "random_walks",
            "eval_every",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
        if not isinstance(self.updates, int) or self.updates < 0:
            raise ValueError(f"updates: expected an int >= 0, got {self.updates!r}")
        for name in ("learning_rate", "entropy_coef"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name}: expected a number >= 0, got {getattr(self, name)!r}")
        if not 0 < self.baseline_rate <= 1:
            raise ValueError(
                f"baseline_rate: expected a number in (0, 1], got {self.baseline_rate!r}"
            )


def settings_fields() -> tuple:
    """The fields of :class:`KGSettings`, for the command line."""
    return fields(KGSettings)


_GROWABLE = ("updates", "eval_every")
"""Settings a resumed run may change."""


class KGRun:
    """One backend's walker, its learner and the graph; a trainer of ``duetrl.core.run``.

    :param backend: ``duetrl.backends.torch`` or ``duetrl.backends.tf``.
    :param settings: the run's :class:`KGSettings`.
    """

    kind = KG_KIND
    x_key = "update"

    def __init__(self, backend: ModuleType, settings: KGSettings) -> None:
        s = self.settings = settings
        self.backend, self.backend_name, self.seed = backend, backend.NAME, s.seed
        self.description = f"kg ({backend.NAME})"
        self.graph = make_family_graph(s.families, s.generations, s.heldout_fraction, s.seed)
        self.grid = action_grid(self.graph.num_entities, self.graph.facts)
        self.known = self.graph.answers()
        self.train_queries = self.graph.queries("train")
        self.test_queries = self.graph.queries("test")
        self.config = WalkerConfig(
            self.graph.num_entities,
            self.graph.num_relations,
            s.relation_dim,
            s.entity_dim,
            s.history_dim,
            s.mlp_dim,
        )
        self.walker = backend.KGWalker(self.config, seed=s.seed)
        self.learner = backend.KGLearner(self.walker, s.learning_rate, s.entropy_coef)
        self.baseline, self.updates = 0.0, 0
        self.history: dict[str, list[float]] = {}
        self.seconds, self.walks_done = 0.0, 0
        self._heldout: tuple[int, dict[str, Any]] | None = None
        self._random_walk: dict[str, float] | None = None

    # -- one update -----------------------------------------------------------------------------

    def step(self) -> dict[str, float]:
        """Update number :attr:`updates` + 1; held-out figures every ``eval_every`` updates.

        :raises FloatingPointError: when the loss is not finite.
        """
        s, u = self.settings, self.updates
        began = time.perf_counter()
        rng = np.random.default_rng((s.seed, 1, u))
        picked = rng.integers(0, len(self.train_queries), s.batch_queries)
        queries = np.repeat(self.train_queries[picked], s.rollouts, axis=0)  # query-major
        walks = walk(self.backend, self.walker, self.grid, queries, s.hops, True, rng)
        rewards = (walks.entities[:, -1] == queries[:, 2]).astype(np.float64)  # R = [e_T = a]
        advantages = rewards - self.baseline  # A = R - b: the baseline from past updates only
        stats = self.learner.update({**vars(walks), "query_relations": queries[:, 1]}, advantages)
        if not math.isfinite(stats["loss"]):
            raise FloatingPointError(f"training diverged at update {u + 1}: loss {stats['loss']}")
        baseline = self.baseline
        self.baseline = (1 - s.baseline_rate) * baseline + s.baseline_rate * rewards.mean()
        self.updates = u + 1
        if u > 0:  # the first update traces (TF) and warms up: not timed
            self.seconds += time.perf_counter() - began
            self.walks_done += len(queries)
        hits, mrr = float("nan"), float("nan")
        if self.updates % s.eval_every == 0 or self.updates == s.updates:
            figures = self.heldout()
            hits, mrr = figures["hits@1"], figures["mrr"]
        row = {
            "update": float(self.updates),
            "loss": stats["loss"],
            "policy_loss": stats["policy_loss"],
            "entropy": stats["entropy"],
            "grad_norm": stats["grad_norm"],
            "reward": float(rewards.mean()),
            "baseline": baseline,
            "heldout_hits_at_1": hits,
            "heldout_mrr": mrr,
            "wall_s": time.perf_counter() - began,
        }
        for key, value in row.items():
            self.history.setdefault(key, []).append(value)
        return row

    # -- answering queries ----------------------------------------------------------------------

    def rank(self, queries: np.ndarray) -> tuple[np.ndarray, Any]:
        """The filtered ranks of ``queries`` (Q, 3) by beam search, and the beams."""
        beams = beam_search(
            self.backend,
            self.walker,
            self.grid,
            queries,
            self.settings.hops,
            self.settings.beam_width,
        )
        return filtered_ranks(beams.scores, queries, self.known), beams

    def heldout(self) -> dict[str, Any]:
        """hits@1/3/10, MRR and the ranks on the held-out facts, once per update count."""
        if self._heldout is None or self._heldout[0] != self.updates:
            ranks, beams = self.rank(self.test_queries)
            self._heldout = (
                self.updates,
                {**ranking_metrics(ranks), "ranks": ranks, "beams": beams},
            )
        return self._heldout[1]

    def random_walk(self) -> dict[str, float]:
        """The random-walk baseline's hits@k and MRR on the held-out facts (fixed by the
        seed, computed once)."""
        if self._random_walk is None:
            s = self.settings
            scores = random_walk_scores(
                self.grid,
                self.test_queries,
                s.hops,
                s.random_walks,
                np.random.default_rng((s.seed, 2)),
            )
            self._random_walk = ranking_metrics(
                filtered_ranks(scores, self.test_queries, self.known)
            )
        return self._random_walk

    def answer(self, entity: str, relation: str, top: int = 5) -> list[dict[str, Any]]:
        """The ``top`` entities the walker ends on for (entity, relation, ?), the likeliest
        first, each with its probability and whether the graph holds the fact; ValueError for
        an entity or relation the graph lacks."""
        head, rel = self.graph.entity_id(entity), self.graph.relation_id(relation)
        beams = beam_search(
            self.backend,
            self.walker,
            self.grid,
            np.array([[head, rel, 0]]),
            self.settings.hops,
            self.settings.beam_width,
        )
        scores = beams.scores[0]
        in_graph = {int(t) for h, r, t in self.graph.facts if h == head and r == rel}
        held = {int(t) for h, r, t in self.graph.heldout if h == head and r == rel}
        order = [int(e) for e in np.argsort(-scores, kind="stable")[:top] if np.isfinite(scores[e])]
        return [
            {
                "entity": self.graph.entities[e],
                "probability": float(np.exp(scores[e])),
                "fact": "in the graph" if e in in_graph else "held out" if e in held else "no",
            }
            for e in order
        ]

    # -- the run loop's trainer -----------------------------------------------------------------

    def progress(self) -> tuple[int, int]:
        return self.updates, self.settings.updates

    def finished(self) -> bool:
        return self.updates >= self.settings.updates

    def state(self) -> Checkpoint:
        tensors = {
            "params": self.backend.export_params(self.walker),
            "optim": self.learner.optimizer.state_arrays(),
        }
        info = {
            "settings": asdict(self.settings),
            "config": self.config.to_dict(),
            "updates": self.updates,
            "baseline": self.baseline,
            "backend": self.backend.NAME,
            "history": self.history,
        }
        return Checkpoint(KG_KIND, tensors, info)

    def load_state(self, checkpoint: Checkpoint, source: str) -> None:
        """Weights, Adam's state, the baseline, counters, history; CheckpointError for other
        settings (all but ``updates`` and ``eval_every`` must be the same)."""
        require_same_settings(
            checkpoint.metadata.get("settings"), asdict(self.settings), source, _GROWABLE
        )
        self.backend.import_params(self.walker, checkpoint.tensors["params"])
        self.learner.optimizer.load_state_arrays(checkpoint.tensors["optim"])
        self.updates = int(checkpoint.metadata["updates"])
        self.baseline = float(checkpoint.metadata["baseline"])
        self.history = {k: list(v) for k, v in checkpoint.metadata.get("history", {}).items()}
        self._heldout = None

    def evaluate(self) -> dict[str, Any]:
        """The headline figures: held-out hits@1/3/10 and MRR (filtered) against the random-
        walk baseline's, the facts recovered (ranked first), the learned rules, speed."""
        now, walks = self.heldout(), self.random_walk()
        recovered = [
            self.graph.describe(q) for q, r in zip(self.test_queries, now["ranks"]) if r == 1.0
        ]
        return {
            **{f"hits_at_{k}": now[f"hits@{k}"] for k in (1, 3, 10)},
            "mrr": now["mrr"],
            **{f"random_walk_hits_at_{k}": walks[f"hits@{k}"] for k in (1, 3, 10)},
            "random_walk_mrr": walks["mrr"],
            "heldout_facts": len(self.test_queries),
            "recovered_facts": len(recovered),
            "recovered_examples": recovered[:5],
            "rules": learned_rules(self.graph, now["beams"], self.test_queries),
            "walks_per_s": self.walks_done / self.seconds if self.seconds else float("nan"),
            "entities": self.graph.num_entities,
            "facts": len(self.graph.facts),
            "parameters": int(
                sum(v.size for v in self.backend.export_params(self.walker).values())
            ),
        }

    def plot(self, run_dir: Path) -> Path | None:
        """``kg.png``: the training walks' hit rate, held-out hits@1 and MRR by update, and
        the random-walk baseline's hits@1."""
        if not self.history:
            return None
        return plot_kg(
            {self.backend.NAME: self.history},
            Path(run_dir) / "kg.png",
            self.random_walk()["hits@1"],
        )


def plot_kg(
    histories: dict[str, dict[str, list[float]]],
    path: str | Path,
    random_walk_hits: float | None = None,
) -> Path:
    """Training reward and held-out hits@1 / MRR by update, one set of lines per label."""
    from duetrl.core.plots import plot_curves

    curves = {}
    for label, h in histories.items():
        update = np.asarray(h["update"])
        curves[f"{label} training walks reaching the answer"] = (update, np.asarray(h["reward"]))
        for key, what in (
            ("heldout_hits_at_1", "held-out hits@1"),
            ("heldout_mrr", "held-out MRR"),
        ):
            values = np.asarray(h[key])
            seen = ~np.isnan(values)
            curves[f"{label} {what}"] = (update[seen], values[seen])
    if random_walk_hits is not None and curves:
        last = max(float(np.max(h["update"])) for h in histories.values())
        curves["random walks, held-out hits@1"] = (
            np.array([0.0, last]),
            np.array([random_walk_hits] * 2),
        )
    return plot_curves(
        curves,
        path,
        xlabel="update",
        ylabel="rate",
        title="MINERVA: REINFORCE walks on the family graph",
    )


def load_run(backend: ModuleType, path: str | Path) -> KGRun:
    """A :class:`KGRun` rebuilt from its checkpoint (the graph regenerated from the settings,
    which is deterministic), weights loaded."""
    checkpoint = load_checkpoint(path, KG_KIND)
    try:
        settings = KGSettings(**dict(checkpoint.metadata.get("settings") or {}))
    except TypeError as error:
        raise CheckpointError(f"checkpoint {str(path)!r}: invalid settings ({error})") from None
    run = KGRun(backend, settings)
    run.load_state(checkpoint, str(path))
    return run
