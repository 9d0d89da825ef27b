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
        sweep.pid             the running child's process id and host (only while it runs)
        stdout.txt stderr.txt the child's output, all attempts

A run that exits with an error or is killed is started again, up to ``max_retries`` times, with
``--resume`` when it left a checkpoint; so is a run whose Ray node or worker was lost
(``core/scale/executors.py``), on another node. A run over its time limit (all attempts
together) is killed and reported ``timeout``; exit status 2 (bad input) is not retried: it
would fail again. Inputs several runs share are made once before the runs start
(``core/scale/artefacts.py``); ``--address`` is checked step by step (``core/scale/cluster.py``).
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import shutil
import signal
import socket
import sys
import time
from pathlib import Path

from duetrl.core.checkpoint import atomic_write
from duetrl.core.scale.artefacts import prepare_shared_artefacts
from duetrl.core.scale.cluster import check_address, parse_address
from duetrl.core.scale.executors import RayExecutor, SequentialExecutor
from duetrl.core.scale.run_job import (
    BASE_COLUMNS,
    PID_FILE,
    RESULT_FILE,
    RunJob,
    _write_text,
    read_pid,
)
from duetrl.core.scale.sweep_file import SweepPlan

__all__ = [
    "BASE_COLUMNS",
    "PID_FILE",
    "RayExecutor",
    "SequentialExecutor",
    "check_address",
    "run_sweep",
    "write_results",
]


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

            self.bar = tqdm(
                total=total,
                initial=skipped,
                desc="sweep",
                unit="run",
                file=sys.stderr,
                dynamic_ncols=True,
            )

    def running(self) -> int:
        return sum((job.run_dir / PID_FILE).is_file() for job in self.jobs.values())

    def state(self) -> str:
        return (
            f"done {self.counts['done']}, running {self.running()}, failed "
            f"{self.counts['failed']}, timeout {self.counts['timeout']}"
        )

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
        if row.get("retried"):
            line += f" (retried: {row['retried']})"
        if self.bar is not None:
            if row["status"] != "done":
                self.bar.write(f"sweep: {line}", file=sys.stderr)
            self.bar.update(1)
            self.refresh()
        else:
            finished = sum(self.counts.values())
            print(
                f"sweep [{finished}/{self.total}] {line} ({self.state()})",
                file=sys.stderr,
                flush=True,
            )

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
        raise ValueError(
            f"--resume: run {job.spec.run_id!r} was finished with other settings "
            f"({shlex.join(row.get('argv', []))}); this file asks for "
            f"{shlex.join(job.spec.argv)}. Use another --out for a changed sweep"
        )
    return row


def _kill_children(jobs: list[RunJob]) -> None:
    """Stop the children of unfinished runs (on Ctrl-C), by the pids their runners recorded;
    only this machine's (on a cluster, Ray's cancel stops the others' workers and with them
    their children)."""
    for job in jobs:
        found = read_pid(job.run_dir)
        if found is not None and found[1] in ("", socket.gethostname()):
            try:
                os.kill(found[0], signal.SIGTERM)
            except OSError:
                pass


def run_sweep(
    plan: SweepPlan,
    out: str | Path,
    executor: str = "ray",
    address: str | None = None,
    num_cpus: int | None = None,
    resume: bool = False,
    progress: bool = True,
) -> dict:
    """Carry out every run of ``plan`` into the sweep folder ``out``; returns the outcome:
    ``{"sweep_dir", "results", "runs", "done", "failed", "timeout", "skipped", "executor",
    "wall_s", "retried", "prepared", "rows"}`` (``retried``: the runs started again and why;
    ``prepared``: inputs made once for several runs, see ``core/scale/artefacts.py``).

    :param executor: ``"ray"`` (falls back to ``"sequential"``, with a message, when Ray is not
        installed and no ``address`` is given) or ``"sequential"``.
    :param resume: skip the runs an earlier sweep into ``out`` finished; continue the others
        from their checkpoints.
    :raises ValueError: ``out`` holds another sweep (without ``resume``) or none (with it), an
        ``address`` that is no usable Ray cluster (``core/scale/cluster.py``: one line saying
        what to do), a bad executor name.
    """
    if executor not in ("ray", "sequential"):
        raise ValueError(f"executor: expected 'ray' or 'sequential', got {executor!r}")
    if address is not None and address != "auto":  # a typo is told before anything else
        parse_address(address)
    if num_cpus is not None and num_cpus < 1:
        raise ValueError(f"--num-cpus: expected an integer >= 1, got {num_cpus}")
    sweep_dir = Path(out).resolve()
    copy = sweep_dir / "sweep.toml"
    if copy.is_file() and not resume:
        raise ValueError(
            f"--out: {sweep_dir} already holds a sweep; pass --resume to continue "
            f"it, or choose another --out"
        )
    if resume and not copy.is_file():
        raise ValueError(
            f"--resume: no sweep to continue in {sweep_dir} (no sweep.toml); run "
            f"without --resume first"
        )
    jobs = [
        RunJob(spec, str(sweep_dir), plan.threads_per_run, os.getcwd(), resume)
        for spec in plan.runs
    ]
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
            print(
                "duetrl: Ray is not installed (pip install 'duetrl[scale]'); running the "
                "sweep sequentially",
                file=sys.stderr,
            )
            runner = SequentialExecutor()
    else:
        runner = SequentialExecutor()
    try:  # before any run starts: what several runs would each make at once
        made = prepare_shared_artefacts(plan, os.getcwd(), plan.threads_per_run, progress)
    except BaseException:
        runner.close()
        raise

    sweep_dir.mkdir(parents=True, exist_ok=True)
    if plan.path.resolve() != copy:
        shutil.copyfile(plan.path, copy)
    start = time.monotonic()
    display = Progress(pending, len(jobs), len(rows), progress)

    def on_done(job: RunJob, row: dict) -> None:
        _write_text(job.run_dir / RESULT_FILE, json.dumps(row, indent=2))
        rows[row["run_id"]] = row
        write_results(sweep_dir, plan, [rows[j.spec.run_id] for j in jobs if j.spec.run_id in rows])
        display.finished(row)

    try:
        if rows:
            write_results(
                sweep_dir, plan, [rows[j.spec.run_id] for j in jobs if j.spec.run_id in rows]
            )
        runner.execute(pending, on_done, display.refresh)
    except BaseException:
        _kill_children([job for job in pending if job.spec.run_id not in rows])
        raise
    finally:
        display.close()
        runner.close()
    ordered = [rows[job.spec.run_id] for job in jobs]
    statuses = [row["status"] for row in ordered]
    retried = [
        {
            "run_id": row["run_id"],
            "status": row["status"],
            "attempts": row["attempts"],
            "why": row["retried"],
        }
        for row in ordered
        if row.get("retried")
    ]
    return {
        "sweep_dir": str(sweep_dir),
        "results": str(sweep_dir / "results.csv"),
        "runs": len(jobs),
        "done": statuses.count("done"),
        "failed": statuses.count("failed"),
        "timeout": statuses.count("timeout"),
        "skipped": len(jobs) - len(pending),
        "executor": runner.name,
        "wall_s": round(time.monotonic() - start, 3),
        "retried": retried,
        "prepared": made,
        "rows": ordered,
    }
