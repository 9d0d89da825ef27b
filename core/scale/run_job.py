"""One run of a sweep: its child process, its retries and time limit, and its row of results.

A run is ``python -m duetrl <command> ... --out SWEEP_DIR/runs/<run_id> --seed S --backend B
--threads T --quiet --json`` in a child process whose thread variables are T (see
``core/scale/sweep.py`` for the folder layout and the executors that call :func:`run_job`).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from duetrl.core.checkpoint import atomic_write
from duetrl.core.scale.sweep_file import RunSpec

RESULT_FILE = "sweep_result.json"
PID_FILE = "sweep.pid"
LOG_FILE = "sweep.log"

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)
"""Environment variables that cap the threads of a child's numerical libraries."""

BASE_COLUMNS = (
    "run_id",
    "command",
    "algorithm",
    "backend",
    "seed",
    "env",
    "status",
    "attempts",
    "wall_s",
    "error",
    "retried",
)
"""The first columns of results.csv (``retried``: why each earlier attempt was started again);
the run's summary.json scalars and ``setting.*`` follow."""

PATH_FIELDS = ("checkpoint", "log", "plot")
"""summary.json's file paths: left out of the table (its run_dir column locates them)."""

BAD_INPUT_STATUS = 2
"""duetrl's exit status for bad input: the same command would fail again, so no retry."""


@dataclass(frozen=True)
class RunJob:
    """What a worker needs to carry out one run (plain data: it travels to Ray workers).

    sweep_dir: absolute path of the sweep folder; the run writes ``sweep_dir/runs/<run_id>``.
    threads: framework threads of the child (and CPUs its Ray task holds).
    cwd: working folder of the child (the sweep's caller's, so relative paths in the sweep
        file mean what they meant there).
    resume: continue a checkpoint left by an earlier sweep (``--resume``).
    first_attempt, spent_s, history: where a run stands when its Ray node or worker was lost
        and the sweep starts it again elsewhere: the number of its next attempt (attempts
        share one budget, ``max_retries + 1``), the seconds its attempts already took (they
        count against ``time_limit_s``) and why each earlier attempt was retried.
    """

    spec: RunSpec
    sweep_dir: str
    threads: int
    cwd: str
    resume: bool = False
    first_attempt: int = 1
    spent_s: float = 0.0
    history: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        allowed = self.spec.max_retries + 1
        if not 1 <= self.first_attempt <= allowed:
            raise ValueError(
                f"first_attempt: expected 1 to {allowed} (max_retries + 1 attempts in all), "
                f"got {self.first_attempt}"
            )

    @property
    def run_dir(self) -> Path:
        return Path(self.sweep_dir) / "runs" / self.spec.run_id


def child_argv(job: RunJob, resume: bool) -> list[str]:
    """The child's command line: the run's own flags plus the ones the sweep manages."""
    spec = job.spec
    argv = [
        sys.executable,
        "-m",
        "duetrl",
        *spec.argv,
        "--out",
        str(job.run_dir),
        "--seed",
        str(spec.seed),
        "--backend",
        spec.backend,
        "--threads",
        str(job.threads),
        "--quiet",
        "--json",
    ]
    return argv + (["--resume"] if resume else [])


def child_environment(threads: int) -> dict[str, str]:
    """The caller's environment with every thread cap set to ``threads``."""
    env = dict(os.environ)
    env.update({name: str(threads) for name in THREAD_VARIABLES})
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("MPLBACKEND", "Agg")
    return env


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


LOG_TIME = "%Y-%m-%d %H:%M:%S"
"""The time stamp at the front of each sweep.log line."""

ATTEMPT_START = re.compile(r"^(\S+ \S+) attempt (\d+)(?: on (.*?))?: (?!(?:done|failed|timeout)\b)")
"""A sweep.log line that starts an attempt: time, attempt number, where it runs (Ray node)."""


def _note(run_dir: Path, text: str) -> None:
    with open(run_dir / LOG_FILE, "a") as log:
        log.write(f"{time.strftime(LOG_TIME)} {text}\n")


def attempts_started(run_dir: Path, offset: int) -> list[tuple[int, str, float]]:
    """The attempts whose start sweep.log recorded after byte ``offset``: (number, where it
    ran, its start as a Unix time). What a sweep reads back when a Ray node took a run down
    with it (the run's own process could not say how far it got)."""
    path = run_dir / LOG_FILE
    if not path.is_file():
        return []
    with open(path, "rb") as f:
        f.seek(offset)
        lines = f.read().decode(errors="replace").splitlines()
    started = []
    for line in lines:
        match = ATTEMPT_START.match(line)
        if match:
            when = time.mktime(time.strptime(match.group(1), LOG_TIME))
            started.append((int(match.group(2)), match.group(3) or "", when))
    return started


def read_pid(run_dir: Path) -> tuple[int, str] | None:
    """The running child's (pid, host name) from ``sweep.pid``, else None."""
    try:
        pid, _, host = (run_dir / PID_FILE).read_text().partition(" ")
        return int(pid), host.strip()
    except (OSError, ValueError):
        return None


def _die_with_parent_function() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to SIGKILL the child when its parent dies (prctl
    PR_SET_PDEATHSIG, as Ray starts its own processes): a run whose Ray worker or node is lost
    must not go on writing into the folder where its retry now runs. None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    set_death_signal = 1  # PR_SET_PDEATHSIG in <linux/prctl.h>

    def die_with_parent() -> None:
        prctl(set_death_signal, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return die_with_parent


def _last_line(path: Path, offset: int) -> str:
    """The last non-empty line written to ``path`` after ``offset`` (a child's error)."""
    with open(path, "rb") as f:
        f.seek(offset)
        lines = [line.strip() for line in f.read().decode(errors="replace").splitlines()]
    lines = [line for line in lines if line]
    return lines[-1][:300] if lines else ""


def _json_printed(path: Path, offset: int) -> dict | None:
    """The JSON object a child printed (``--json``) to ``path`` after ``offset``, if any."""
    with open(path, "rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace")
    start = text.find("{")
    try:
        printed = json.loads(text[start:]) if start >= 0 else None
    except json.JSONDecodeError:
        return None
    return printed if isinstance(printed, dict) else None


def _run_child(
    job: RunJob, argv: list[str], limit_s: float | None, on_child_start: Callable[[], None] | None
) -> tuple[int | None, str, dict | None]:
    """Run one attempt; returns (exit status, or None if killed at the time limit; the last
    line of its stderr; the JSON summary it printed). The child's pid sits in ``sweep.pid``
    while it runs."""
    run_dir = job.run_dir
    cwd = job.cwd if Path(job.cwd).is_dir() else str(run_dir)
    with open(run_dir / "stdout.txt", "ab") as out, open(run_dir / "stderr.txt", "ab") as err:
        offset, out_offset = err.tell(), out.tell()
        child = subprocess.Popen(
            argv,
            stdout=out,
            stderr=err,
            cwd=cwd,
            env=child_environment(job.threads),
            preexec_fn=_die_with_parent_function(),
        )
        try:  # the host too: on a cluster only that machine may signal the pid
            _write_text(run_dir / PID_FILE, f"{child.pid} {socket.gethostname()}")
            if on_child_start is not None:
                on_child_start()
            try:
                status: int | None = child.wait(timeout=limit_s)
            except subprocess.TimeoutExpired:
                status = None
            except KeyboardInterrupt:  # Ctrl-C reached the child too: it saves, then stops
                with contextlib.suppress(subprocess.TimeoutExpired, KeyboardInterrupt):
                    child.wait(timeout=10)
                raise
        finally:
            if child.poll() is None:  # time limit, or this worker is being stopped
                child.kill()
                child.wait()
            (run_dir / PID_FILE).unlink(missing_ok=True)
    return (
        status,
        _last_line(run_dir / "stderr.txt", offset),
        _json_printed(run_dir / "stdout.txt", out_offset),
    )


def _summary_fields(run_dir: Path) -> dict[str, Any]:
    """The scalar fields of the run's summary.json (its ``wall_s`` renamed ``train_wall_s``,
    its file paths left out)."""
    path = run_dir / "summary.json"
    if not path.is_file():
        return {}
    summary = json.loads(path.read_text())
    fields = {}
    for key, value in summary.items():
        if key == "wall_s":
            fields["train_wall_s"] = value
        elif (
            key not in BASE_COLUMNS
            and key not in PATH_FIELDS
            and isinstance(value, (str, int, float, bool))
        ):
            fields[key] = value
    return fields


def make_row(
    job: RunJob,
    status: str,
    attempts: int,
    wall_s: float,
    error: str,
    retried: tuple[str, ...] = (),
) -> dict:
    """One row of results.csv (before the ``setting.*`` columns, which the table adds)."""
    spec = job.spec
    row = {
        "run_id": spec.run_id,
        "command": spec.command,
        "algorithm": spec.algorithm,
        "backend": spec.backend,
        "seed": spec.seed,
        "env": spec.env,
        "status": status,
        "attempts": attempts,
        "wall_s": round(wall_s, 3),
        "error": error,
        "retried": "; ".join(retried),
    }
    if status == "done":
        row.update(_summary_fields(job.run_dir))
    row.update(settings=dict(spec.settings), argv=list(spec.argv), run_dir=f"runs/{spec.run_id}")
    return row


def run_job(job: RunJob, on_child_start: Callable[[], None] | None = None, where: str = "") -> dict:
    """Carry out one run, with retries and its time limit; returns its row.

    Attempt k > 1 (or the first, when ``job.resume``) passes ``--resume`` if the run folder
    holds a checkpoint, so a killed run continues where its last checkpoint left it.

    :param where: the machine this runs on, for sweep.log (``"Ray node 10.0.0.5 3f2a..."``).
    """
    spec = job.spec
    run_dir = job.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = run_dir / "checkpoint.safetensors"
    start = time.monotonic() - job.spent_s
    attempts, status, error = job.first_attempt - 1, "failed", ""
    retried = list(job.history)
    while attempts <= spec.max_retries:
        limit_s = None
        if spec.time_limit_s is not None:
            limit_s = spec.time_limit_s - (time.monotonic() - start)
            if limit_s <= 0:
                status = "timeout"
                break
        if attempts >= job.first_attempt:  # an attempt of this call failed: retry it
            retried.append(f"attempt {attempts}: {error}")
        attempts += 1
        resume = checkpoint.is_file() and (attempts > 1 or job.resume)
        argv = child_argv(job, resume)
        _note(run_dir, f"attempt {attempts}{' on ' + where if where else ''}: {shlex.join(argv)}")
        code, last_line, printed = _run_child(job, argv, limit_s, on_child_start)
        if code == 0 and printed is not None and not (run_dir / "summary.json").is_file():
            # `rlhf train` prints its summary but writes no summary.json: keep it there too
            _write_text(run_dir / "summary.json", json.dumps(printed, indent=2))
        if code == 0 and (run_dir / "summary.json").is_file():
            status, error = "done", ""
        elif code == 0:
            status, error = "failed", "exited 0 but wrote no summary.json"
        elif code is None:
            status = "timeout"
        elif code < 0:
            status, error = "failed", f"killed by {signal.Signals(-code).name}"
        else:
            status, error = "failed", f"exit status {code}: {last_line or 'no message'}"
        _note(run_dir, f"attempt {attempts}: {status} {error}".rstrip())
        if status in ("done", "timeout") or code == BAD_INPUT_STATUS:
            break
    if status == "timeout":
        error = (
            f"timed out: still running after time_limit_s = {spec.time_limit_s:g} s, "
            f"killed; its last checkpoint is kept and --resume continues it"
        )
        _note(run_dir, error)
    elif status == "failed" and attempts > 1:
        error = f"{error} (after {attempts} attempts)"
    return make_row(job, status, attempts, time.monotonic() - start, error, tuple(retried))
