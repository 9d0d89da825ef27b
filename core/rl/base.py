"""What every RL trainer shares with the run loop (core/run/loop.py): the counters, the solved
window, the checkpoint, the summary and the learning curve. Written once for
:class:`~duetrl.core.rl.train.PolicyGradientTrainer` and :class:`~duetrl.core.rl.dqn.DQNTrainer`;
each of them adds only its own ``step()`` (collect, update) and what "solved" means to it.

=================  ===========================================================================
counter            what it counts
=================  ===========================================================================
updates            one per ``step()`` (the ``update`` column of ``log.csv``)
env_steps          environment steps taken (the x-axis of the log, TensorBoard and the curve)
episodes           episodes finished; ``episode_log`` holds (env steps, return) of each and
                   ``recent_returns`` the returns of the last 100
=================  ===========================================================================

A checkpoint holds the canonical parameters, Adam's state, the settings and these counters. It
does not hold the Gymnasium environments' internal state (nor DQN's replay buffer): a resumed
run re-seeds its environments and noise from (seed, updates), so it is a valid continuation of
the interrupted run, not a bit-for-bit replay of the uninterrupted one. The counters, the
parameters and the optimiser state it resumes from are exact.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from duetrl.core.checkpoint import (
    Checkpoint,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)
from duetrl.core.weights import describe, validate_params

SOLVED_WINDOW = 100
"""'Solved' (for the policy-gradient trainers) = the mean return of the last 100 training
episodes reaches the target; the learning curve is smoothed over the same window."""

EPISODE_LOG_KEPT = 5000
"""Episodes of ``episode_log`` a checkpoint keeps (the most recent)."""


class RLTrainer:
    """The run-loop half of an RL trainer (:class:`duetrl.core.run.Trainer`).

    A subclass sets ``kind``, ``algorithm``, ``env_id``, ``seed``, ``total_steps``, ``dtype``,
    ``target``, ``settings``, ``backend``, ``agent`` and ``envs``, calls
    :meth:`start_counters`, and writes ``step()``, :meth:`reached_target` and
    :meth:`restart_streams`.
    """

    kind: str
    x_key = "env_steps"
    extra_counters: tuple[str, ...] = ()
    """Counters of the subclass's own that its checkpoint keeps (DQN: ``gradient_steps``)."""

    algorithm: str
    env_id: str
    seed: int
    total_steps: int
    dtype: str
    target: float | None
    settings: Any
    backend: Any
    agent: Any
    envs: Any

    def start_counters(self) -> None:
        """All counters at zero: no update, no step, no episode yet."""
        self.updates = self.env_steps = self.episodes = 0
        self.recent_returns: deque[float] = deque(maxlen=SOLVED_WINDOW)
        self.episode_log: list[tuple[int, float]] = []  # (env steps, return) per episode
        self.last_loss = float("nan")

    # ---- what the run loop asks ---------------------------------------------------------
    @property
    def backend_name(self) -> str:
        return str(self.backend.NAME)

    @property
    def description(self) -> str:
        """The progress bar's label: ``"ppo torch"``."""
        return f"{self.algorithm} {self.backend.NAME}"

    def progress(self) -> tuple[int, int]:
        """``(env steps taken, env-step budget)``."""
        return self.env_steps, self.total_steps

    def finished(self) -> bool:
        """The env-step budget is spent, or the target is reached."""
        return self.env_steps >= self.total_steps or self.reached_target()

    def reached_target(self) -> bool:
        """True once the trainer's own target is reached (False without one)."""
        raise NotImplementedError

    def restart_streams(self) -> None:
        """After a checkpoint is loaded: re-seed the noise and the environments from
        (seed, updates), which the checkpoint does not hold."""
        raise NotImplementedError

    def mean_return(self) -> float:
        """Mean return of the last 100 finished episodes (NaN before the first)."""
        return float(np.mean(self.recent_returns)) if self.recent_returns else float("nan")

    def evaluate(self) -> dict[str, Any]:
        """The run's final figures, for ``summary.json`` and ``duetrl compare``."""
        return {
            "algorithm": self.algorithm, "env": self.env_id, "solved": self.reached_target(),
            "target": self.target, "env_steps": self.env_steps, "episodes": self.episodes,
            "final_mean_return": self.mean_return(), "last_loss": self.last_loss,
        }

    def plot(self, run_dir: str | Path) -> Path | None:
        """``curve.png``: the mean return of the last 100 episodes against env steps."""
        title = f"{self.title} on {self.env_id} ({self.backend.NAME})"
        return plot_learning_curves({self.backend.NAME: self}, Path(run_dir) / "curve.png",
                                    title, self.target)

    @property
    def title(self) -> str:
        """The algorithm's name in plot titles."""
        return self.algorithm

    # ---- parameters and checkpoints ------------------------------------------------------
    def params(self) -> dict[str, np.ndarray]:
        """The agent's canonical parameters (NumPy copies)."""
        return self.backend.export_params(self.agent)

    def state(self) -> Checkpoint:
        """Parameters, optimiser state, settings and counters (not the environments)."""
        metadata = {
            "algorithm": self.algorithm, "env_id": self.env_id, "backend": self.backend.NAME,
            "dtype": self.dtype, "seed": self.seed, "total_steps": self.total_steps,
            "settings": dataclasses.asdict(self.settings), "updates": self.updates,
            "env_steps": self.env_steps, "episodes": self.episodes,
            **{name: getattr(self, name) for name in self.extra_counters},
            "recent_returns": list(self.recent_returns),
            "episode_log": self.episode_log[-EPISODE_LOG_KEPT:],
        }
        tensors = {"params": self.params(), "optim": self.agent.optimizer.state_arrays()}
        return Checkpoint(self.kind, tensors, metadata)

    def load_state(self, checkpoint: Checkpoint, source: str) -> None:
        """Continue from a checkpoint of the same algorithm, environment and network shape
        (from either backend); CheckpointError naming what differs, before anything loads.

        The environments and noise are re-seeded from (seed, update), so a resumed run is a
        valid continuation, not a bit-for-bit replay of the uninterrupted one.
        """
        metadata = checkpoint.metadata
        for key, expected in (("algorithm", self.algorithm), ("env_id", self.env_id)):
            if metadata.get(key) != expected:
                raise CheckpointError(f"{source}: was written by {key} {metadata.get(key)!r}, "
                                      f"expected {expected!r}")
        validate_params(checkpoint.tensors.get("params", {}), describe(self.params()),
                        f"{source} [params]")
        self.backend.import_params(self.agent, checkpoint.tensors["params"])
        self.agent.optimizer.load_state_arrays(checkpoint.tensors.get("optim", {}))
        self.updates, self.env_steps = metadata["updates"], metadata["env_steps"]
        self.episodes = metadata["episodes"]
        for name in self.extra_counters:
            setattr(self, name, metadata[name])
        self.recent_returns.clear()
        self.recent_returns.extend(metadata["recent_returns"])
        self.episode_log = [(int(steps), float(ret)) for steps, ret in metadata["episode_log"]]
        self.restart_streams()

    def save(self, path: str | Path) -> Path:
        """Write :meth:`state` to ``path`` (atomic)."""
        return save_checkpoint(path, self.state())

    def load(self, path: str | Path) -> dict[str, Any]:
        """:meth:`load_state` from the file ``path``; returns the checkpoint's metadata."""
        checkpoint = load_checkpoint(path, self.kind)
        self.load_state(checkpoint, f"checkpoint {str(path)!r}")
        return checkpoint.metadata

    def close(self) -> None:
        self.envs.close()


def plot_learning_curves(trainers: Mapping[str, RLTrainer], path: Path, title: str,
                         target: float | None) -> Path:
    """Mean return of the last 100 episodes against environment steps, one line per run."""
    from duetrl.core.plots import plot_curves

    curves = {}
    for label, trainer in trainers.items():
        steps = np.array([s for s, _ in trainer.episode_log], dtype=float)
        returns = np.array([r for _, r in trainer.episode_log], dtype=float)
        if not len(returns):  # no episode finished yet (a very short run): nothing to draw
            continue
        window = np.ones(SOLVED_WINDOW)
        counts = np.convolve(np.ones_like(returns), window)[: len(returns)]
        smoothed = np.convolve(returns, window)[: len(returns)] / np.maximum(counts, 1)
        curves[label] = (steps, smoothed)
    return plot_curves(curves, path, "environment steps", "mean return (last 100 episodes)",
                       title=title, hline=target)
