"""TensorBoard scalars, written once for both backends (``--tensorboard``).

A training command with ``--tensorboard`` writes an event file into its run folder, beside
``log.csv``: every row of the log becomes scalars at the step of its x-axis (environment steps
for ``duetrl train``, the update for ``duetrl rlhf train``). Tags follow CleanRL's layout:

    charts/<key>   how the agent does (mean_return, episodes, reward, epsilon, ...)
    losses/<key>   what the optimiser sees (loss, policy_loss, value_loss, entropy, kl, ...)
    perf/<key>     where the time goes (collect_ms, update_ms)

The writer lives here, on host numbers, not in a backend, so a PyTorch run and a TensorFlow run
of the same command log the same tags at the same steps, and one ``tensorboard --logdir runs``
shows them side by side, a run per folder. Events are written with tensorboardX (no TensorFlow
needed); viewing them needs the ``tensorboard`` package.
"""

from __future__ import annotations

import math
import struct
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

LOSS_KEYS = frozenset({
    "loss", "policy_loss", "value_loss", "entropy", "kl", "clip_fraction", "approx_kl",
    "q_mean", "td_error", "grad_norm", "reward_model_loss",
})
"""Log columns shown under ``losses/``."""

PERF_KEYS = frozenset({"collect_ms", "update_ms", "samples_per_s", "wall_s"})
"""Log columns shown under ``perf/``."""


def scalar_tag(key: str) -> str:
    """The TensorBoard tag of a log column: ``losses/``, ``perf/`` or ``charts/`` + ``key``."""
    if key in LOSS_KEYS or key.endswith("_loss"):
        return f"losses/{key}"
    if key in PERF_KEYS or key.endswith("_ms"):
        return f"perf/{key}"
    return f"charts/{key}"


class ScalarWriter:
    """Writes log rows as TensorBoard scalars into ``run_dir`` (a no-op when not ``enabled``).

    :param run_dir: the run folder; the event file goes next to ``log.csv``.
    :param step_key: the column that is the x-axis (``"env_steps"`` or ``"update"``).
    :param enabled: False makes every call a no-op, so loops need no ``if``.
    :param resume_step: on ``--resume``, the first step the checkpoint does not cover (its last
        logged step + 1): TensorBoard hides what the interrupted run logged from there on, so
        the curve has no doubled tail and keeps the checkpoint's last point.
    """

    def __init__(self, run_dir: str | Path, step_key: str, enabled: bool = True,
                 resume_step: int | None = None) -> None:
        self.step_key = step_key
        self._writer = None
        if enabled:
            from tensorboardX import SummaryWriter

            Path(run_dir).mkdir(parents=True, exist_ok=True)
            # the nanosecond suffix keeps a resumed run's file after the first one in name
            # order (TensorBoard's reading order) even within the same second
            self._writer = SummaryWriter(logdir=str(run_dir), purge_step=resume_step,
                                         filename_suffix=f".{time.time_ns()}")

    def write(self, record: Mapping[str, object]) -> None:
        """One log row: every finite number except the step itself, at ``record[step_key]``."""
        if self._writer is None:
            return
        if self.step_key not in record:
            raise ValueError(f"record: expected a {self.step_key!r} entry (the x-axis), "
                             f"got keys {sorted(record)}")
        step = int(record[self.step_key])  # type: ignore[call-overload]
        for key, value in record.items():
            if key == self.step_key or isinstance(value, str) or value is None:
                continue
            number = float(value)  # type: ignore[arg-type]
            if math.isfinite(number):  # NaN (e.g. no episode finished yet) is left out
                self._writer.add_scalar(scalar_tag(key), number, step)

    def close(self) -> None:
        """Flush and close the event file."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> ScalarWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


def read_scalars(run_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in a run folder's event files: ``{tag: [(step, value), ...]}`` in file order.

    An event file is a sequence of records ``length (uint64) | crc (uint32) | Event proto |
    crc (uint32)``; this reads them with the proto definitions tensorboardX ships, so tests and
    notebooks can check what TensorBoard will show without TensorBoard itself. A resumed run's
    purge marker is honoured as TensorBoard does: earlier points at or after it are dropped.
    """
    from tensorboardX.proto import event_pb2

    START = event_pb2.SessionLog.START

    files = sorted(Path(run_dir).glob("events.out.tfevents.*"))
    if not files:
        raise FileNotFoundError(f"run_dir: no TensorBoard event file in {str(run_dir)!r} "
                                f"(was the run started with --tensorboard?)")
    scalars: dict[str, list[tuple[int, float]]] = {}
    for path in files:
        data, offset = path.read_bytes(), 0
        while offset + 12 <= len(data):
            (length,) = struct.unpack_from("<Q", data, offset)
            payload = data[offset + 12: offset + 12 + length]
            offset += 12 + length + 4
            if len(payload) < length:
                break  # a record still being written: stop at the last whole one
            event = event_pb2.Event.FromString(payload)
            if event.HasField("session_log") and event.session_log.status == START:
                # a resumed run: TensorBoard hides what the interrupted run logged from here on
                scalars = {tag: [(s, v) for s, v in points if s < event.step]
                           for tag, points in scalars.items()}
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((int(event.step), value.simple_value))
    return scalars
