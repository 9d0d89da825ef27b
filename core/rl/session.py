"""Whole runs: ``train`` one backend, or ``compare`` both from the same start, with logs and plots.

A run folder holds ``log.csv`` (one row per update), ``checkpoint.safetensors`` (atomic,
``--resume`` continues it), ``curve.png`` (the learning curve) and ``summary.json``.
Ctrl-C stops after the current update and saves a checkpoint; a non-finite loss stops the run
and keeps the last good checkpoint.
"""

from __future__ import annotations

import csv
import json
import signal
import sys
import time
from pathlib import Path

import numpy as np

from duetrl.core.envs.vector import check_env_id
from duetrl.core.interfaces.rl_settings import ReinforceSettings
from duetrl.core.rl.train import SOLVED_WINDOW, PolicyGradientTrainer
from duetrl.core.tensorboard import ScalarWriter

LOG_FIELDS = ("update", "env_steps", "episodes", "mean_return", "loss", "policy_loss",
              "value_loss", "entropy", "learning_rate", "collect_ms", "update_ms")


def default_target(env_id: str) -> float | None:
    """The environment's registered reward threshold (CartPole-v1: 475), if any."""
    return check_env_id(env_id).reward_threshold


def default_run_dir(algorithm: str, env_id: str, backend: str, seed: int) -> Path:
    return Path("runs") / f"{algorithm}-{env_id.replace('/', '_')}-{backend}-s{seed}"


def _progress(total: int, quiet: bool, description: str):
    from tqdm import tqdm

    disable = quiet or not sys.stderr.isatty()
    return tqdm(total=total, desc=description, unit="step", file=sys.stderr, disable=disable,
                dynamic_ncols=True)


class _StopFlag:
    """First Ctrl-C: finish the current update, save, stop. Second Ctrl-C: stop at once."""

    def __init__(self) -> None:
        self.requested = False
        self.previous = None

    def __enter__(self):
        def handler(signum, frame):
            if self.requested:
                raise KeyboardInterrupt
            self.requested = True
            print("\nduetrl: stopping after this update (Ctrl-C again to abort)", file=sys.stderr)

        try:
            self.previous = signal.signal(signal.SIGINT, handler)
        except ValueError:  # not the main thread: leave Ctrl-C alone
            self.previous = None
        return self

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def plot_learning_curves(trainers: dict[str, PolicyGradientTrainer], path: Path, title: str,
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


def train(algorithm: str, env_id: str, backend: str, settings: ReinforceSettings, seed: int = 0,
          total_steps: int = 100_000, target: float | None = None, out: str | None = None,
          resume: bool = False, quiet: bool = False, checkpoint_every: int = 50,
          dtype: str = "float32", threads: int = 1, tensorboard: bool = False) -> dict:
    """Train one agent until it is solved (``target``) or ``total_steps`` are spent.

    :param tensorboard: also write every log row as TensorBoard scalars into the run folder
        (duetrl.core.tensorboard), the same tags for both backends.

    :returns: the run summary (also written to ``summary.json``).
    :raises ValueError: bad input, or a non-finite loss (naming the update and the checkpoint).
    """
    target = default_target(env_id) if target is None else target
    run_dir = Path(out) if out else default_run_dir(algorithm, env_id, backend, seed)
    checkpoint = run_dir / "checkpoint.safetensors"
    trainer = PolicyGradientTrainer(algorithm, env_id, backend, settings, seed, total_steps, dtype,
                                    threads)
    if resume:
        if not checkpoint.is_file():
            raise FileNotFoundError(f"resume: no checkpoint at {str(checkpoint)!r}")
        trainer.load(checkpoint)
    run_dir.mkdir(parents=True, exist_ok=True)
    log_path = run_dir / "log.csv"
    last_good = trainer.updates if resume else None
    interrupted = False
    start = time.perf_counter()
    with open(log_path, "a" if resume else "w", newline="") as log_file, \
            _progress(total_steps, quiet, f"{algorithm} {backend}") as bar, _StopFlag() as stop, \
            ScalarWriter(run_dir, "env_steps", tensorboard,
                         trainer.env_steps + 1 if resume else None) as scalars:
        writer = csv.DictWriter(log_file, LOG_FIELDS, extrasaction="ignore")
        if not resume:
            writer.writeheader()
        bar.update(trainer.env_steps)
        while trainer.env_steps < total_steps and not trainer.solved(target):
            try:
                record = trainer.step()
            except FloatingPointError as error:
                kept = (f"the last good checkpoint {str(checkpoint)!r} (update {last_good}) is "
                        f"kept" if last_good is not None else "no checkpoint was written yet")
                raise ValueError(f"{error}; training stopped, {kept}") from None
            writer.writerow(record)
            scalars.write({key: record[key] for key in LOG_FIELDS if key in record})
            bar.update(record["env_steps"] - bar.n)
            bar.set_postfix(episodes=trainer.episodes, mean_return=f"{trainer.mean_return():.1f}")
            if trainer.updates % checkpoint_every == 0:
                trainer.save(checkpoint)
                last_good = trainer.updates
            if stop.requested:
                interrupted = True
                break
    wall_s = time.perf_counter() - start
    trainer.save(checkpoint)
    plot = plot_learning_curves({backend: trainer}, run_dir / "curve.png",
                                f"{algorithm} on {env_id} ({backend})", target)
    summary = {
        "algorithm": algorithm, "env": env_id, "backend": backend, "seed": seed,
        "solved": trainer.solved(target), "target": target, "env_steps": trainer.env_steps,
        "episodes": trainer.episodes, "updates": trainer.updates, "wall_s": round(wall_s, 3),
        "final_mean_return": trainer.mean_return(), "interrupted": interrupted,
        "checkpoint": str(checkpoint), "log": str(log_path), "plot": str(plot),
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    trainer.close()
    return summary
