"""Running a submission: child processes with memory, CPU and wall-clock limits.

Each child (:mod:`duetrl.core.coursework.harness`) runs in a scratch folder, gets the cases'
calls and inputs (never an expected value) through files, and reports one JSON line per event
through a pipe. A crash, a hang or a memory hog fails the tests it touches, never the grader: a
child that dies is restarted for the tests that remain.
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from duetrl.core.coursework.cases import Case
from duetrl.core.coursework.specs import Assignment

DEFAULT_MEMORY_MB = 2048
"""Address space a submission may add to what its framework took on import."""
STARTUP_S = 90.0
"""Wall-clock allowance of one child for importing its framework and the submission."""
MAX_RESTARTS = 3


def _set_child_limits(cpu_seconds: int) -> None:
    os.setsid()
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 2**20, 256 * 2**20))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _child_env(scratch: Path) -> dict[str, str]:
    keep = ("PATH", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV", "SYSTEMROOT")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(HOME=str(scratch), MPLCONFIGDIR=str(scratch / ".mpl"), OMP_NUM_THREADS="1",
               TF_CPP_MIN_LOG_LEVEL="3", TF_ENABLE_ONEDNN_OPTS="0", KERAS_BACKEND="tensorflow",
               PYTHONDONTWRITEBYTECODE="1", PYTHONWARNINGS="ignore", TMPDIR=str(scratch))
    return env


def run_submission(backend: str, submission: Path, assignment: Assignment, cases: list[Case],
                   memory_mb: float, read_blocked: list[str],
                   write_blocked: list[str]) -> tuple[dict[int, dict], dict[int, tuple]]:
    """Run every case in child processes (restarted after a crash or hang).

    :returns: ``(outputs by case index, (status, message, seconds) by case index)``.
    """
    outputs: dict[int, dict] = {}
    statuses: dict[int, tuple] = {}
    remaining = list(range(len(cases)))
    for _ in range(MAX_RESTARTS + 1):
        if not remaining:
            break
        remaining = _one_child(backend, submission, assignment, cases, remaining, memory_mb,
                               read_blocked, write_blocked, outputs, statuses)
    for i in remaining:
        statuses.setdefault(i, ("error", "not run: your code crashed the grader's process "
                                         "too many times", 0.0))
    return outputs, statuses


def _one_child(backend, submission, assignment, cases, indices, memory_mb, read_blocked,
               write_blocked, outputs, statuses) -> list[int]:
    scratch = Path(tempfile.mkdtemp(prefix="duetrl-grade-"))
    try:
        student_dir = scratch / "submission"
        student_dir.mkdir()
        student_file = student_dir / assignment.student_file
        shutil.copyfile(submission, student_file)
        arrays = {f"t{i}|{k}": v for i in indices for k, v in cases[i].arrays.items()}
        np.savez(scratch / "inputs.npz", **arrays)
        tests = [{"id": f"t{i}", "call": cases[i].call, "timeout_s": cases[i].timeout_s}
                 for i in indices]
        module_name = f"student_{assignment.module}"
        todo_names = assignment.todo_names(backend)
        job = {"backend": backend, "submission": str(student_file), "module_name": module_name,
               "memory_mb": memory_mb, "read_blocked": read_blocked,
               "write_blocked": write_blocked, "load_timeout_s": 30.0, "tests": tests,
               "forbidden_modules": [f"duetrl.backends.{backend}.{m}"
                                     for m in assignment.forbidden_modules]
               + ["duetrl.core.reference", "duetrl.core.coursework"],
               "forbidden_names": sorted(set(assignment.forbidden_names) | set(todo_names))}
        (scratch / "job.json").write_text(json.dumps(job))
        budget = STARTUP_S + sum(cases[i].timeout_s for i in indices)
        read_fd, write_fd = os.pipe()
        with open(scratch / "stdout.txt", "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "duetrl.core.coursework.harness", str(scratch),
                 str(write_fd)], cwd=scratch, env=_child_env(scratch), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, pass_fds=(write_fd,),
                preexec_fn=lambda: _set_child_limits(int(budget) + 10))
            os.close(write_fd)
            events = _read_events(process, read_fd, time.monotonic() + budget)
        by_id = {f"t{i}": i for i in indices}
        current = None
        for event in events:
            kind = event.get("event")
            if kind == "load_error":
                for i in indices:
                    statuses[i] = ("error", f"your file could not be imported: "
                                            f"{event.get('message', '')}", 0.0)
                return []
            if kind == "start" and event.get("id") in by_id:
                current = by_id[event["id"]]
            elif kind == "done" and event.get("id") in by_id:
                i = by_id[event["id"]]
                current = None
                seconds = float(event.get("seconds", 0.0))
                if event.get("status") == "ok":
                    outputs[i] = _load_outputs(scratch / "out" / f"t{i}.npz")
                    statuses[i] = ("ok", "", seconds)
                else:
                    statuses[i] = ("error", str(event.get("message", ""))[:400], seconds)
        if current is not None:  # the child died or hung inside this test
            reason = ("time limit: your code did not finish in time (an infinite loop?)"
                      if process.returncode in (None, -signal.SIGKILL, -signal.SIGXCPU)
                      else f"your code crashed the process (exit status {process.returncode}; "
                           "out of memory?)")
            statuses[current] = ("error", reason, cases[current].timeout_s)
        return [i for i in indices if i not in statuses]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _read_events(process: subprocess.Popen, read_fd: int, deadline: float) -> list[dict]:
    """JSON lines from the child until it closes the channel, exits, or the deadline passes."""
    buffer = b""
    try:
        while True:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                break
            ready, _, _ = select.select([read_fd], [], [], min(timeout, 1.0))
            if ready:
                chunk = os.read(read_fd, 65536)
                if not chunk:
                    break
                buffer += chunk
                if len(buffer) > 2**22:  # a submission flooding the channel
                    break
            elif process.poll() is not None:
                break
    finally:
        os.close(read_fd)
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        process.wait()
    events = []
    for line in buffer.decode("utf-8", "replace").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def _load_outputs(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError) as error:
        return {"__error__": np.asarray(str(error))}


def protected_paths(*extra: str | Path | None) -> list[str]:
    """The project's own folders (the reference and the solution) plus ``extra``."""
    paths = []
    for package in ("duetrl", "duetrl.core", "duetrl.backends"):
        spec = importlib.util.find_spec(package)
        paths += list(spec.submodule_search_locations or [])
    return [str(Path(p).resolve()) for p in paths + [e for e in extra if e]]
