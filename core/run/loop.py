"""The run loop, written once for every trainer: a run folder, a progress bar, ``log.csv`` as it
goes, checkpoints, ``--resume``, Ctrl-C, a stop on NaN, ``summary.json``.

    while not trainer.finished():
        row = trainer.step()                      # one update; the trainer's own metrics
        log.csv  <- row                            # appended and flushed at once
        TensorBoard <- row                         # with --tensorboard, at x = row[x_key]
        every checkpoint_every updates: save trainer.state() atomically
        Ctrl-C: finish this update, save, stop
    save; summary.json <- base keys + trainer.evaluate()

A trainer is anything with the few members of :class:`Trainer` (policy gradient, DQN, the
language model, RLHF, the reward model, ...); it owns its numbers, this loop owns the run.
"""

from __future__ import annotations

import csv
import json
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from duetrl.core.checkpoint import Checkpoint, atomic_write, load_checkpoint, save_checkpoint
from duetrl.core.tensorboard import ScalarWriter

CHECKPOINT = "checkpoint.safetensors"
LOG = "log.csv"
SUMMARY = "summary.json"

BASE_KEYS = ("backend", "seed", "updates", "wall_s", "interrupted", "checkpoint", "log", "plot")
"""Keys every run summary (``summary.json`` and every command's ``--json``) starts with."""


class Diverged(ValueError, FloatingPointError):
    """A step produced a non-finite loss: the run stops, the last good checkpoint is kept.

    It is a ValueError (the CLI prints one line and exits with status 2) and, as before, a
    FloatingPointError."""


class Trainer(Protocol):
    """What the run loop needs from a trainer.

    ``kind``: the checkpoint kind it writes (``"duetrl.rl"``, ``"duetrl.gpt"``, ...).
    ``backend_name`` and ``seed``: for the summary. ``description``: the progress bar's label.
    ``x_key``: the log column TensorBoard uses as its x-axis (``"env_steps"``, ``"update"``).
    ``updates``: how many updates are done (the ``update`` column of ``log.csv``).
    """

    kind: str
    backend_name: str
    seed: int
    description: str
    x_key: str
    updates: int

    def progress(self) -> tuple[int, int]:
        """``(done, total)`` in the trainer's own unit (env steps, updates)."""
        ...

    def finished(self) -> bool:
        """True once the budget is spent (or the task is solved)."""
        ...

    def step(self) -> dict[str, Any]:
        """One update; its log row (numbers), with ``update`` and ``x_key`` in it.

        :raises FloatingPointError: when the loss is not finite.
        """
        ...

    def state(self) -> Checkpoint:
        """Everything a resumed run needs, as a checkpoint."""
        ...

    def load_state(self, checkpoint: Checkpoint, source: str) -> None:
        """Continue from ``checkpoint`` (read from ``source``); CheckpointError if it won't fit."""
        ...

    def evaluate(self) -> dict[str, Any]:
        """The final figures of the run, for its summary."""
        ...

    def plot(self, run_dir: Path) -> Path | None:
        """Draw the run's curves into ``run_dir``; the file, or None when there is nothing."""
        ...


def progress_bar(total: int, quiet: bool, description: str, unit: str = "step") -> Any:
    """A tqdm bar on stderr; silent with ``quiet`` or when stderr is not a terminal."""
    from tqdm import tqdm

    disable = quiet or not sys.stderr.isatty()
    return tqdm(total=total, desc=description, unit=unit, file=sys.stderr, disable=disable,
                dynamic_ncols=True)


class StopFlag:
    """First Ctrl-C: finish the current update, save, stop. Second Ctrl-C: stop at once."""

    def __init__(self) -> None:
        self.requested = False
        self.previous: Any = None

    def __enter__(self) -> StopFlag:
        def handler(signum: int, frame: Any) -> None:
            if self.requested:
                raise KeyboardInterrupt
            self.requested = True
            print("\nduetrl: stopping after this update (Ctrl-C again to abort)", file=sys.stderr)

        try:
            self.previous = signal.signal(signal.SIGINT, handler)
        except ValueError:  # not the main thread: leave Ctrl-C alone
            self.previous = None
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def read_log(path: str | Path) -> list[dict[str, str]]:
    """The rows of a ``log.csv`` (strings, as written)."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _keep_logged_rows(path: Path, updates: int) -> dict[str, str] | None:
    """On resume: drop the rows the interrupted run logged after its checkpoint (update >
    ``updates``), atomically, so the log holds each update once; the last kept row."""
    if not path.is_file():
        return None
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames or [], list(reader)
    kept = [row for row in rows if int(float(row["update"])) <= updates]

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as out:
            writer = csv.DictWriter(out, fields)
            writer.writeheader()
            writer.writerows(kept)

    atomic_write(path, write)
    return kept[-1] if kept else None


class _Log:
    """``log.csv``, one row per update, flushed as it goes; the columns are the first row's."""

    def __init__(self, path: Path, append: bool) -> None:
        self.path = path
        self.fields: list[str] | None = None
        if append and path.is_file():
            with open(path, newline="") as f:
                self.fields = csv.DictReader(f).fieldnames or None
        self.file = open(path, "a" if append else "w", newline="")  # noqa: SIM115
        self.writer: csv.DictWriter | None = None

    def write(self, row: dict[str, Any]) -> None:
        if self.writer is None:
            fresh = self.fields is None
            self.fields = self.fields or list(row)
            self.writer = csv.DictWriter(self.file, self.fields, extrasaction="ignore")
            if fresh:
                self.writer.writeheader()
        self.writer.writerow(row)  # floats in full (repr) precision: the log is data
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def _cell(value: Any) -> Any:
    return f"{value:.6g}" if isinstance(value, float) else value


@contextmanager
def _opened(log: _Log) -> Iterator[_Log]:
    try:
        yield log
    finally:
        log.close()


def run(
    trainer: Trainer,
    out: str | Path,
    resume: bool = False,
    quiet: bool = False,
    checkpoint_every: int = 0,
    tensorboard: bool = False,
    unit: str = "step",
    checkpoint_file: str | Path | None = None,
) -> dict[str, Any]:
    """Run ``trainer`` until it is finished (or Ctrl-C); write the run folder ``out``.

    :param out: the run folder: ``checkpoint.safetensors``, ``log.csv``, ``summary.json``, the
        trainer's plot and, with ``tensorboard``, the event files.
    :param resume: continue from ``out``'s checkpoint (FileNotFoundError when there is none);
        the rows logged after it are dropped, so ``log.csv`` and the weights are those of the
        run that was never interrupted, as far as the trainer's state holds all it depends on.
    :param quiet: no progress bar.
    :param checkpoint_every: save every this many updates (0: only at the end and on Ctrl-C).
    :param tensorboard: also write each row as TensorBoard scalars, at x = ``row[trainer.x_key]``.
    :param unit: the progress bar's unit (the trainer's ``progress()`` unit).
    :param checkpoint_file: the checkpoint's path when not ``out/checkpoint.safetensors`` (a
        command whose file name is part of its interface, e.g. ``lm train``'s
        ``model.safetensors``).
    :returns: the summary: :data:`BASE_KEYS`, then the trainer's :meth:`Trainer.evaluate`.
    :raises Diverged: a non-finite loss; the last good checkpoint is kept.
    """
    if checkpoint_every < 0:
        raise ValueError(f"checkpoint_every: expected an int >= 0, got {checkpoint_every}")
    run_dir = Path(out)
    checkpoint = Path(checkpoint_file) if checkpoint_file is not None else run_dir / CHECKPOINT
    log_path = run_dir / LOG
    resume_step = None
    if resume:
        if not checkpoint.is_file():
            raise FileNotFoundError(f"resume: no checkpoint at {str(checkpoint)!r}")
        trainer.load_state(load_checkpoint(checkpoint, trainer.kind), str(checkpoint))
        last_row = _keep_logged_rows(log_path, trainer.updates)
        resume_step = int(float(last_row[trainer.x_key])) + 1 if last_row else None
    run_dir.mkdir(parents=True, exist_ok=True)
    last_good = trainer.updates if resume else None
    interrupted = False
    done, total = trainer.progress()
    began = time.perf_counter()
    with _opened(_Log(log_path, append=resume)) as log, \
            progress_bar(total, quiet, trainer.description, unit) as bar, StopFlag() as stop, \
            ScalarWriter(run_dir, trainer.x_key, tensorboard, resume_step) as scalars:
        bar.update(done)
        while not trainer.finished():
            try:
                row = trainer.step()
            except FloatingPointError as error:
                kept = (f"the last good checkpoint {str(checkpoint)!r} (update {last_good}) is "
                        f"kept" if last_good is not None else "no checkpoint was written yet")
                raise Diverged(f"{error}; training stopped, {kept}") from None
            log.write(row)
            scalars.write(row)
            bar.update(trainer.progress()[0] - bar.n)
            bar.set_postfix({k: _cell(v) for k, v in list(row.items())[1:5]}, refresh=False)
            if checkpoint_every and trainer.updates % checkpoint_every == 0:
                save_checkpoint(checkpoint, trainer.state())
                last_good = trainer.updates
            if stop.requested:
                interrupted = True
                break
    wall_s = time.perf_counter() - began
    save_checkpoint(checkpoint, trainer.state())
    plot = trainer.plot(run_dir)
    summary = {
        "backend": trainer.backend_name, "seed": trainer.seed, "updates": trainer.updates,
        "wall_s": round(wall_s, 3), "interrupted": interrupted, "checkpoint": str(checkpoint),
        "log": str(log_path), "plot": str(plot) if plot else None,
        **trainer.evaluate(),
    }
    write_summary(run_dir / SUMMARY, summary)
    return summary

def run_folder(checkpoint_path: str | Path) -> Path:
    """The run folder (log.csv, summary.json) of a run whose interface is one checkpoint file:
    ``dir/name.safetensors`` -> ``dir/name_run/``, so runs saved side by side keep apart."""
    path = Path(checkpoint_path)
    return path.with_name(f"{path.stem}_run")


@contextmanager
def run_paths(
    checkpoint_path: str | Path | None, run_dir: str | Path | None = None
) -> Iterator[tuple[Path, Path | None]]:
    """``(run folder, checkpoint file)`` for the file-based APIs: the folder is ``run_dir``,
    else :func:`run_folder` of the checkpoint, else a temporary one removed afterwards (no
    checkpoint asked for: nothing is left behind, and the checkpoint file is None)."""
    if run_dir is not None or checkpoint_path is not None:
        folder = Path(run_dir) if run_dir is not None else run_folder(checkpoint_path)
        yield folder, Path(checkpoint_path) if checkpoint_path is not None else folder / CHECKPOINT
        return
    with tempfile.TemporaryDirectory(prefix="duetrl-run-") as tmp:
        yield Path(tmp), None


def write_summary(path: str | Path, summary: dict[str, Any]) -> Path:
    """``summary.json``, atomically (a reader never sees half a file)."""
    text = json.dumps(summary, indent=2, default=str)
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))
