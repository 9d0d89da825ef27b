"""Training the recommender from logged data (outline 6.2.2): a trainer of ``duetrl.core.run``.

    updates 1 .. pretrain_steps   supervised next-item prediction on the users' own sessions
                                  (every method starts from this language model over items)
    the next ``updates``          the method: supervised (more of the same), reinforce,
                                  off_policy or top_k on the logged events (backend learner)

Each update draws ``batch_size`` logged sessions (E events each) from ``default_rng((seed,
update))``; the behaviour head learns beta from the same events all along. The data are the
simulator's (``simulator.py``, ``logged.py``): ``sessions`` users logged for training, another
``eval_users`` held out; figures (``evaluate.py``) every ``eval_every`` updates and at the end.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from duetrl.core.cases.recommender.catalogue import ITEM_OFFSET, make_catalogue
from duetrl.core.cases.recommender.evaluate import (
    offline_figures,
    plot_recommender,
    simulator_figures,
)
from duetrl.core.cases.recommender.logged import behaviour_probs, log_sessions
from duetrl.core.cases.recommender.simulator import Simulator
from duetrl.core.checkpoint import Checkpoint, require_same_settings
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.recommender import METHODS, PROPENSITIES, WEIGHT_CAP
from duetrl.core.interfaces.settings import setting

RECOMMENDER_KIND = "duetrl.recommender"
"""The checkpoint kind: tensor groups ``params``, ``pretrain_optim`` and ``optim``."""

HELDOUT_SEED = 10_000
"""Held-out users are logged from ``seed + HELDOUT_SEED``: new users, the same catalogue."""


@dataclass
class RecommenderSettings:
    """Settings of a recommender run (``duetrl recommend``'s flags mirror these)."""

    method: str = setting("top_k", "supervised, reinforce, off_policy or top_k")
    k: int = setting(4, "slate size K (lambda_K, the top-K reward, the expected clicks)")
    cap: float = setting(WEIGHT_CAP, "c of the capped importance weight min(pi / beta, c)")
    propensity: str = setting("learned", "beta of the weight: the behaviour head, or logged")
    n_topics: int = setting(6, "topics of the catalogue")
    items_per_topic: int = setting(8, "items per topic (N = n_topics x items_per_topic)")
    history: int = setting(8, "items a session shows the model (L)")
    first_event: int = setting(2, "first logged event after this many items")
    titles: bool = setting(False, "read each item's title words before its token")
    sessions: int = setting(4000, "logged training sessions (users)")
    eval_users: int = setting(1000, "held-out users for the figures")
    n_layer: int = setting(2, "GPT blocks")
    n_head: int = setting(2, "attention heads per block")
    n_embd: int = setting(32, "model width")
    pretrain_steps: int = setting(200, "supervised next-item updates first (every method)")
    updates: int = setting(300, "updates of the method after the warm-up")
    batch_size: int = setting(64, "logged sessions per update")
    learning_rate: float = setting(3e-3, "Adam step size")
    eval_every: int = setting(50, "held-out figures every this many updates (and at the end)")
    seed: int = setting(0, "seeds the catalogue, the users, the logs, the weights, the batches")

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method: expected one of {list(METHODS)}, got {self.method!r}")
        if self.propensity not in PROPENSITIES:
            raise ValueError(
                f"propensity: expected one of {list(PROPENSITIES)}, got {self.propensity!r}"
            )
        for name in (
            "k",
            "n_topics",
            "items_per_topic",
            "history",
            "first_event",
            "sessions",
            "eval_users",
            "n_layer",
            "n_head",
            "n_embd",
            "batch_size",
            "eval_every",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
        for name in ("pretrain_steps", "updates"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"{name}: expected an int >= 0, got {getattr(self, name)!r}")
        if self.pretrain_steps + self.updates < 1:
            raise ValueError("pretrain_steps, updates: expected at least one update in all")
        if self.first_event > self.history:
            raise ValueError(
                f"first_event: expected <= history ({self.history}), got {self.first_event}"
            )
        if self.k > self.n_topics * self.items_per_topic:
            raise ValueError(
                f"k: expected <= the catalogue's {self.n_topics * self.items_per_topic}"
                f" items, got {self.k}"
            )
        for name in ("cap", "learning_rate"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: expected > 0, got {getattr(self, name)!r}")


def settings_fields() -> tuple:
    """The fields of :class:`RecommenderSettings`, for the command line."""
    return fields(RecommenderSettings)


_GROWABLE = ("updates", "eval_every")
"""Settings a resumed run may change."""


class RecommenderRun:
    """One backend's recommender, its learners and the logged data; a trainer of
    ``duetrl.core.run``.

    :param backend: ``duetrl.backends.torch`` or ``duetrl.backends.tf``.
    :param settings: the run's :class:`RecommenderSettings`.
    """

    kind = RECOMMENDER_KIND
    x_key = "update"

    def __init__(self, backend: ModuleType, settings: RecommenderSettings) -> None:
        s = self.settings = settings
        self.backend, self.backend_name, self.seed = backend, backend.NAME, s.seed
        self.description = f"recommend {s.method} ({backend.NAME})"
        self.catalogue = make_catalogue(s.n_topics, s.items_per_topic, seed=s.seed)
        self.simulator = Simulator(self.catalogue)
        self.logs = log_sessions(self.simulator, s.sessions, s.history, s.first_event, s.seed)
        self.heldout = log_sessions(
            self.simulator, s.eval_users, s.history, s.first_event, s.seed + HELDOUT_SEED
        )
        self.tokens = self.catalogue.encode(self.logs.history, s.titles)
        self.heldout_tokens = self.catalogue.encode(self.heldout.history, s.titles)
        self.positions = self.catalogue.state_positions(s.first_event, s.history, s.titles)
        self.config = GPTConfig(
            vocab_size=self.catalogue.vocab_size,
            block_size=self.catalogue.block_size(s.history, s.titles),
            n_layer=s.n_layer,
            n_head=s.n_head,
            n_embd=s.n_embd,
        )
        self.policy = backend.RecommenderPolicy(
            self.config, self.catalogue.size, ITEM_OFFSET, seed=s.seed
        )
        self.pretrainer = backend.RecommenderLearner(self.policy, "supervised", s.learning_rate)
        self.learner = backend.RecommenderLearner(
            self.policy, s.method, s.learning_rate, s.cap, s.k, s.propensity
        )
        self.updates = 0
        self.history: dict[str, list[float]] = {}
        self._figures: tuple[int, dict[str, Any]] | None = None

    @property
    def total(self) -> int:
        return self.settings.pretrain_steps + self.settings.updates

    def branch(self, method: str) -> RecommenderRun:
        """A run of ``method`` that starts where this one stands in its warm-up: the same data,
        weights, Adam state and history, so several methods share one supervised warm-up.

        :raises ValueError: this run is past its warm-up (its method has trained already).
        """
        if self.updates > self.settings.pretrain_steps:
            raise ValueError(
                f"branch: expected a run still in its warm-up (<= "
                f"{self.settings.pretrain_steps} updates), got {self.updates}"
            )
        other = RecommenderRun(self.backend, replace(self.settings, method=method))
        other.backend.import_params(other.policy, self.backend.export_params(self.policy))
        other.pretrainer.optimizer.load_state_arrays(self.pretrainer.optimizer.state_arrays())
        other.updates = self.updates
        other.history = {k: list(v) for k, v in self.history.items()}
        return other

    def step(self) -> dict[str, float]:
        """Update number :attr:`updates` + 1 on a batch of logged sessions.

        :raises FloatingPointError: when the loss is not finite.
        """
        s, u = self.settings, self.updates
        warm = u < s.pretrain_steps
        rows = np.random.default_rng((s.seed, u)).integers(0, len(self.logs), s.batch_size)
        began = time.perf_counter()
        learner = self.pretrainer if warm else self.learner
        stats = learner.update(
            self.tokens[rows],
            self.positions,
            self.logs.actions[rows],
            self.logs.rewards[rows],
            self.logs.propensities[rows],
            self.logs.next_items[rows],
            np.ones(self.logs.actions[rows].shape),
        )
        if not math.isfinite(stats["loss"]):
            raise FloatingPointError(f"training diverged at update {u + 1}: loss {stats['loss']}")
        self.updates = u + 1
        nan = float("nan")
        evaluated = self.updates % s.eval_every == 0 or self.updates in (
            s.pretrain_steps,
            self.total,
        )
        figures = self.figures() if evaluated else {}
        row = {
            "update": float(self.updates),
            "warm_up": float(warm),
            **stats,
            "logged_reward": float(self.logs.rewards[rows].mean()),
            "top_k_reward": figures.get("top_k_reward", nan),
            "expected_clicks": figures.get("expected_clicks", nan),
            "wall_s": time.perf_counter() - began,
        }
        for key, value in row.items():
            self.history.setdefault(key, []).append(value)
        return row

    def probabilities(self, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(pi, beta) ``(S, E, N)`` at every logged state of ``tokens``, in batches of 512."""
        out = [
            self.backend.item_probabilities(self.policy, tokens[i : i + 512], self.positions)
            for i in range(0, len(tokens), 512)
        ]
        return np.concatenate([p for p, _ in out]), np.concatenate([b for _, b in out])

    def figures(self) -> dict[str, Any]:
        """Simulator and off-line figures on the held-out users (``evaluate.py``), computed once
        per update count."""
        if self._figures is None or self._figures[0] != self.updates:
            h, k = self.heldout, self.settings.k
            pi, beta_head = self.probabilities(self.heldout_tokens)
            p = self.simulator.click_probs(h.users)
            last = h.sessions[:, self.settings.history - 1]  # her last item: the final state
            logging_policy = behaviour_probs(self.simulator, last)
            figures = simulator_figures(pi[:, -1], p, logging_policy, k)
            figures.update(offline_figures(pi, h.actions, h.rewards, h.propensities, p, k))
            # the behaviour head against the logged beta(a_n | s_n) it estimates
            beta_learned = np.take_along_axis(beta_head, h.actions[..., None], axis=-1)[..., 0]
            figures["behaviour_head_error"] = float(np.abs(beta_learned - h.propensities).mean())
            self._figures = (self.updates, figures)
        return self._figures[1]

    # -- the run loop's trainer -----------------------------------------------------------------

    def progress(self) -> tuple[int, int]:
        return self.updates, self.total

    def finished(self) -> bool:
        return self.updates >= self.total

    def state(self) -> Checkpoint:
        tensors = {
            "params": self.backend.export_params(self.policy),
            "pretrain_optim": self.pretrainer.optimizer.state_arrays(),
            "optim": self.learner.optimizer.state_arrays(),
        }
        info = {
            "settings": asdict(self.settings),
            "config": self.config.to_dict(),
            "updates": self.updates,
            "backend": self.backend.NAME,
            "history": self.history,
        }
        return Checkpoint(RECOMMENDER_KIND, tensors, info)

    def load_state(self, checkpoint: Checkpoint, source: str) -> None:
        """Weights, both Adam states, the counter, the history; CheckpointError for other
        settings (all but ``updates`` and ``eval_every`` must be the same)."""
        require_same_settings(
            checkpoint.metadata.get("settings"), asdict(self.settings), source, _GROWABLE
        )
        tensors = checkpoint.tensors
        self.backend.import_params(self.policy, tensors["params"])
        self.pretrainer.optimizer.load_state_arrays(tensors["pretrain_optim"])
        self.learner.optimizer.load_state_arrays(tensors["optim"])
        self.updates = int(checkpoint.metadata["updates"])
        self.history = {k: list(v) for k, v in checkpoint.metadata.get("history", {}).items()}
        self._figures = None

    def evaluate(self) -> dict[str, Any]:
        """The headline figures: the held-out users' ``top_k_reward`` of the learned slate
        (with the oracle's and the logging policy's), ``expected_clicks``, its IPS / SNIPS
        estimates and true value, the behaviour head's error, and the method's settings."""
        s = self.settings
        return {
            "method": s.method,
            "k": s.k,
            "cap": s.cap,
            "propensity": s.propensity,
            "titles": s.titles,
            **self.figures(),
            "parameters": int(
                sum(np.size(v) for v in self.backend.export_params(self.policy).values())
            ),
        }

    def plot(self, run_dir: Path) -> Path | None:
        """``recommender.png``: the held-out top-K reward and expected clicks by update."""
        if not self.history:
            return None
        return plot_recommender(
            {f"{self.backend.NAME} {self.settings.method}": self.history},
            Path(run_dir) / "recommender.png",
            self.settings.pretrain_steps,
        )


def load_run(backend: ModuleType, path: str | Path) -> RecommenderRun:
    """A :class:`RecommenderRun` rebuilt from its checkpoint (catalogue, users and logs drawn
    again from the settings, which is deterministic), weights loaded."""
    from duetrl.core.checkpoint import CheckpointError, load_checkpoint

    checkpoint = load_checkpoint(path, RECOMMENDER_KIND)
    try:
        settings = RecommenderSettings(**dict(checkpoint.metadata.get("settings") or {}))
    except TypeError as error:
        raise CheckpointError(f"checkpoint {str(path)!r}: invalid settings ({error})") from None
    run = RecommenderRun(backend, settings)
    run.load_state(checkpoint, str(path))
    return run
