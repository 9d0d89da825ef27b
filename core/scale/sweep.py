"""Run a sweep: every run of a sweep file as a child process, through Ray or one after another.

Each run is ``python -m duetrl <command> ... --out SWEEP_DIR/runs/<run_id> --seed S --backend B
--threads T --quiet --json`` in a child process whose OpenMP/MKL/TensorFlow thread variables
are T. Through Ray, each run is a task that asks for ``num_cpus=T``: Ray starts no more runs at
once than the CPUs allow (2 cores, T = 1: two runs), so two frameworks never fight over the
cores. The task only watches its child, so a crash of the child is seen, logged and retried.

    SWEEP_DIR/
      sweep.toml              the sweep file that made it
      results.csv, .parquet   one row per finished run, rewritten (atomically) after each
      runs/<run_id>/          the command's own run folder (log.csv, summary.json, checkpoint)
        sweep_result.json     this run's row: what --resume reads back
        sweep.log             each attempt's command line and how it ended
        sweep.pid             the running child's process id (only while it runs)
        stdout.txt stderr.txt the child's output, all attempts

A run that exits with an error or is killed is started again, up to ``max_retries`` times, with
``--resume`` when it left a checkpoint. A run over its time limit (all attempts together) is
killed and reported ``timeout``; exit status 2 (bad input) is not retried: it would fail again.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shlex
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

from duetrl.core.checkpoint import atomic_write
from duetrl.core.scale.run_job import (
    BASE_COLUMNS,
    PID_FILE,
    RESULT_FILE,
    RunJob,
    _write_text,
    make_row,
    run_job,
)
from duetrl.core.scale.sweep_file import SweepPlan


def check_address(address: str, timeout_s: float = 2.0) -> None:
    """Fail fast and clearly when nothing listens at a Ray ``HOST:PORT`` (before ray.init)."""
    if address == "auto":
        return
    host, sep, port = address.split("://", 1)[-1].rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"--address: expected HOST:PORT of a Ray cluster's head (e.g. "
                         f"10.0.0.5:6379), got {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as error:
        raise ValueError(f"--address: no Ray cluster answers at {address!r} within "
                         f"{timeout_s:g} s ({error}); start one there with `ray start --head`, "
                         f"or leave --address out for a local Ray") from None


class SequentialExecutor:
    """Runs one after another in this process's child processes: the baseline, and the
    fallback without Ray."""

    name = "sequential"

    def execute(self, jobs: list[RunJob], on_done: Callable[[RunJob, dict], None],
                on_change: Callable[[], None]) -> None:
        for job in jobs:
            on_done(job, run_job(job, on_child_start=on_change))

    def close(self) -> None:
        pass


class RayExecutor:
    """Each run a Ray task holding ``threads`` CPUs; a local Ray unless ``address`` is given.

    A Ray session that is already running (``ray.init`` by the caller) is used as it is.
    """

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise ImportError("Ray is not installed: pip install 'duetrl[scale]', or run the "
                              "sweep with --sequential") from None
        self.ray = ray
        self.owns_session = not ray.is_initialized()
        if self.owns_session:
            if address is not None:
                check_address(address)
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False,
                         log_to_driver=False, logging_level=logging.WARNING)

    def largest_machine_cpus(self) -> float:
        return max(node["Resources"].get("CPU", 0) for node in self.ray.nodes() if node["Alive"])

    def execute(self, jobs: list[RunJob], on_done: Callable[[RunJob, dict], None],
                on_change: Callable[[], None]) -> None:
        ray = self.ray
        largest = self.largest_machine_cpus()
        if jobs and jobs[0].threads > largest:
            raise ValueError(f"threads_per_run: {jobs[0].threads} CPUs per run, but the largest "
                             f"machine of this Ray cluster has {largest:g}; no run could start")
        task = ray.remote(run_job)
        pending = {task.options(num_cpus=job.threads, max_retries=1, name=job.spec.run_id)
                   .remote(job): job for job in jobs}
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
                on_change()
                for ref in ready:
                    job = pending.pop(ref)
                    try:
                        row = ray.get(ref)
                    except ray.exceptions.RayError as error:  # the worker itself died
                        message = str(error).strip().splitlines()[0][:300]
                        row = make_row(job, "failed", 1, 0.0, f"Ray task failed: {message}")
                    on_done(job, row)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)

    def close(self) -> None:
        if self.owns_session:
            self.ray.shutdown()


class Progress:
    """Runs done, running and failed: a bar on a terminal, one line per finished run elsewhere.

    "Running" counts the runs whose folder holds a ``sweep.pid`` (a live child).
    """

    def __init__(self, jobs: list[RunJob], total: int, skipped: int, enabled: bool) -> None:
        self.jobs = {job.spec.run_id: job for job in jobs}
        self.total, self.counts = total, {"done": skipped, "failed": 0, "timeout": 0}
        self.enabled = enabled
        self.bar = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=skipped, desc="sweep", unit="run",
                            file=sys.stderr, dynamic_ncols=True)

    def running(self) -> int:
        return sum((job.run_dir / PID_FILE).is_file() for job in self.jobs.values())

    def state(self) -> str:
        return (f"done {self.counts['done']}, running {self.running()}, failed "
                f"{self.counts['failed']}, timeout {self.counts['timeout']}")

    def refresh(self) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(self.state())

    def finished(self, row: dict) -> None:
        self.jobs.pop(row["run_id"], None)
        self.counts[row["status"]] += 1
        if not self.enabled:
            return
        line = f"{row['status']} {row['run_id']} in {row['wall_s']:.1f} s"
        if row["error"]:
            line += f": {row['error']}"
        if self.bar is not None:
            if row["status"] != "done":
                self.bar.write(f"sweep: {line}", file=sys.stderr)
            self.bar.update(1)
            self.refresh()
        else:
            finished = sum(self.counts.values())
            print(f"sweep [{finished}/{self.total}] {line} ({self.state()})", file=sys.stderr,
                  flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def table_columns(plan: SweepPlan, rows: list[dict]) -> list[str]:
    """BASE_COLUMNS, the summaries' scalar fields in order of appearance, setting.*, run_dir."""
    extra: dict[str, None] = {}
    for row in rows:
        for key in row:
            if key not in BASE_COLUMNS and key not in ("settings", "argv", "run_dir"):
                extra[key] = None
    settings = [f"setting.{name}" for name in plan.setting_names()]
    return [*BASE_COLUMNS, *extra, *settings, "run_dir"]


def table_records(plan: SweepPlan, rows: list[dict]) -> tuple[list[str], list[dict]]:
    """The table's columns and one flat record per row (None where a run has no value)."""
    columns = table_columns(plan, rows)
    records = []
    for row in rows:
        flat = {**row, **{f"setting.{k}": v for k, v in row["settings"].items()}}
        records.append({column: flat.get(column) for column in columns})
    return columns, records


def write_results(sweep_dir: Path, plan: SweepPlan, rows: list[dict]) -> Path:
    """results.csv (and results.parquet when pandas and pyarrow are installed), atomically."""
    columns, records = table_records(plan, rows)

    def write_csv(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, columns)
            writer.writeheader()
            writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in records)

    path = atomic_write(sweep_dir / "results.csv", write_csv)
    try:
        import pandas as pd
        import pyarrow  # noqa: F401
    except ImportError:
        return path
    frame = pd.DataFrame(records, columns=columns)
    for column in frame.columns:  # a column of strings and numbers is stored as strings
        kinds = {type(v) for v in frame[column] if v is not None and v == v}
        if len(kinds - {int, float}) and len(kinds) > 1:
            frame[column] = [None if v is None else str(v) for v in frame[column]]
    atomic_write(sweep_dir / "results.parquet", lambda tmp: frame.to_parquet(tmp, index=False))
    return path


def _finished_before(job: RunJob) -> dict | None:
    """The row of a run an earlier sweep finished (status done), else None."""
    path = job.run_dir / RESULT_FILE
    if not path.is_file():
        return None
    row = json.loads(path.read_text())
    if row.get("status") != "done" or not (job.run_dir / "summary.json").is_file():
        return None
    if row.get("argv") != list(job.spec.argv):
        raise ValueError(f"--resume: run {job.spec.run_id!r} was finished with other settings "
                         f"({shlex.join(row.get('argv', []))}); this file asks for "
                         f"{shlex.join(job.spec.argv)}. Use another --out for a changed sweep")
    return row


def _kill_children(jobs: list[RunJob]) -> None:
    """Stop the children of unfinished runs (on Ctrl-C), by the pids their runners recorded."""
    for job in jobs:
        try:
            pid = int((job.run_dir / PID_FILE).read_text())
            os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError):
            pass


def run_sweep(plan: SweepPlan, out: str | Path, executor: str = "ray",
              address: str | None = None, num_cpus: int | None = None, resume: bool = False,
              progress: bool = True) -> dict:
    """Carry out every run of ``plan`` into the sweep folder ``out``; returns the outcome:
    ``{"sweep_dir", "results", "runs", "done", "failed", "timeout", "skipped", "executor",
    "wall_s", "rows"}``.

    :param executor: ``"ray"`` (falls back to ``"sequential"``, with a message, when Ray is not
        installed and no ``address`` is given) or ``"sequential"``.
    :param resume: skip the runs an earlier sweep into ``out`` finished; continue the others
        from their checkpoints.
    :raises ValueError: ``out`` holds another sweep (without ``resume``) or none (with it), an
        unreachable ``address``, a bad executor name.
    """
    if executor not in ("ray", "sequential"):
        raise ValueError(f"executor: expected 'ray' or 'sequential', got {executor!r}")
    if address is not None:  # before anything else, so the message comes at once
        check_address(address)
    if num_cpus is not None and num_cpus < 1:
        raise ValueError(f"--num-cpus: expected an integer >= 1, got {num_cpus}")
    sweep_dir = Path(out).resolve()
    copy = sweep_dir / "sweep.toml"
    if copy.is_file() and not resume:
        raise ValueError(f"--out: {sweep_dir} already holds a sweep; pass --resume to continue "
                         f"it, or choose another --out")
    if resume and not copy.is_file():
        raise ValueError(f"--resume: no sweep to continue in {sweep_dir} (no sweep.toml); run "
                         f"without --resume first")
    jobs = [RunJob(spec, str(sweep_dir), plan.threads_per_run, os.getcwd(), resume)
            for spec in plan.runs]
    rows: dict[str, dict] = {}
    if resume:
        rows = {job.spec.run_id: row for job in jobs if (row := _finished_before(job))}
    pending = [job for job in jobs if job.spec.run_id not in rows]

    if executor == "ray":
        try:
            runner: SequentialExecutor | RayExecutor = RayExecutor(address, num_cpus)
        except ImportError:
            if address is not None:
                raise
            print("duetrl: Ray is not installed (pip install 'duetrl[scale]'); running the "
                  "sweep sequentially", file=sys.stderr)
            runner = SequentialExecutor()
    else:
        runner = SequentialExecutor()

    sweep_dir.mkdir(parents=True, exist_ok=True)
    if plan.path.resolve() != copy:
        shutil.copyfile(plan.path, copy)
    start = time.monotonic()
    display = Progress(pending, len(jobs), len(rows), progress)

    def on_done(job: RunJob, row: dict) -> None:
        _write_text(job.run_dir / RESULT_FILE, json.dumps(row, indent=2))
        rows[row["run_id"]] = row
        write_results(sweep_dir, plan, [rows[j.spec.run_id] for j in jobs
                                        if j.spec.run_id in rows])
        display.finished(row)

    try:
        if rows:
            write_results(sweep_dir, plan, [rows[j.spec.run_id] for j in jobs
                                            if j.spec.run_id in rows])
        runner.execute(pending, on_done, display.refresh)
    except BaseException:
        _kill_children([job for job in pending if job.spec.run_id not in rows])
        raise
    finally:
        display.close()
        runner.close()
    ordered = [rows[job.spec.run_id] for job in jobs]
    statuses = [row["status"] for row in ordered]
    return {"sweep_dir": str(sweep_dir), "results": str(sweep_dir / "results.csv"),
            "runs": len(jobs), "done": statuses.count("done"),
            "failed": statuses.count("failed"), "timeout": statuses.count("timeout"),
            "skipped": len(jobs) - len(pending), "executor": runner.name,
            "wall_s": round(time.monotonic() - start, 3), "rows": ordered}
