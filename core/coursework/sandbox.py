"""Running a submission: child processes with memory, CPU and wall-clock limits.

Each child (:mod:`duetrl.core.coursework.harness`) runs in a scratch folder, gets the cases'
calls and inputs (never an expected value) through files, and reports one JSON line per event
through a pipe, read as it comes. A crash, a hang or a memory hog fails the tests it touches,
never the grader: a child that dies is restarted for the tests that remain. One time budget
covers all the tests of a submission (:func:`submission_budget`): a hung function costs its
limit once or twice, not once per test, and tests after the budget is spent are not run.
"""

from __future__ import annotations

import ast
import functools
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
from duetrl.core.coursework.harness import BUDGET_SPENT
from duetrl.core.coursework.specs import BACKEND_NAMES, Assignment

DEFAULT_MEMORY_MB = 2048
"""Address space a submission may add to what its framework took on import."""
STARTUP_S = 90.0
"""Wall-clock allowance of one child for importing its framework (not the submission's time)."""
LOAD_S = 30.0
"""Time limit of importing the submission (its top-level code), within its budget."""
GRACE_S = 3.0
"""How long past a test's limit the grader waits before killing a child whose own timer failed."""
GAP_S = 15.0
"""How long the child may take between two tests (the harness's own work)."""
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


def submission_budget(cases: list[Case]) -> float:
    """The default time budget of one submission, shared by all its tests: twice the longest
    test's limit, never more than their sum. A hung function costs at most that, not one time
    limit per test (the learning seeds, each allowed its full limit, keep their sum)."""
    limits = [float(c.timeout_s) for c in cases] or [0.0]
    return min(sum(limits), 2 * max(limits))


def run_submission(backend: str, submission: Path, assignment: Assignment, cases: list[Case],
                   memory_mb: float, read_blocked: list[str], write_blocked: list[str],
                   budget_s: float | None = None) -> tuple[dict[int, dict], dict[int, tuple]]:
    """Run every case in child processes (restarted after a crash or hang).

    :param budget_s: seconds all the tests may use together (default
        :func:`submission_budget`); each test's own limit is cut to what is left, and tests
        after the budget is spent are not run.
    :returns: ``(outputs by case index, (status, message, seconds) by case index)``.
    """
    budget = submission_budget(cases) if budget_s is None else float(budget_s)
    outputs: dict[int, dict] = {}
    statuses: dict[int, tuple] = {}
    remaining = list(range(len(cases)))
    spent = 0.0
    for _ in range(MAX_RESTARTS + 1):
        if not remaining or budget - spent <= 0:
            break
        remaining, used = _one_child(backend, submission, assignment, cases, remaining,
                                     memory_mb, read_blocked, write_blocked, outputs, statuses,
                                     budget, budget - spent)
        spent += used
    for i in remaining:
        statuses.setdefault(i, ("error", BUDGET_SPENT.format(budget=budget) if budget - spent <= 0
                                else "not run: your code crashed the grader's process too many "
                                     "times", 0.0))
    return outputs, statuses


def protected_files(assignment: Assignment) -> tuple[str, ...]:
    """Files and folders a submission may not read: the oracle, the grader, the assignment's
    solution modules in both backends (sources and ``.pyc``), and any backend file that
    defines one of its forbidden names (a ready-made answer)."""
    return _protected_files(tuple(assignment.forbidden_modules),
                            tuple(assignment.forbidden_names))


@functools.lru_cache(maxsize=32)
def _protected_files(forbidden_modules: tuple[str, ...],
                     forbidden_names: tuple[str, ...]) -> tuple[str, ...]:
    paths = list(importlib.util.find_spec("duetrl.core.reference").submodule_search_locations)
    grader = Path(list(importlib.util.find_spec(
        "duetrl.core.coursework").submodule_search_locations)[0])
    # the child's own code (harness, guard) stays readable: tracebacks read its lines
    paths += [str(p) for p in sorted(grader.iterdir()) if p.stem not in ("harness", "guard")]
    names = set(forbidden_names)
    for backend in BACKEND_NAMES:
        folder = Path(list(importlib.util.find_spec(
            f"duetrl.backends.{backend}").submodule_search_locations)[0])
        for source in sorted(folder.glob("*.py")):
            if source.stem in forbidden_modules or _defines(source, names):
                paths.append(str(source))
                paths += [str(p) for p in sorted((folder / "__pycache__").glob(
                    f"{source.stem}.*.pyc"))]
    return tuple(str(Path(p).resolve()) for p in paths)


def protected_modules(assignment: Assignment) -> list[str]:
    """Module prefixes that hold an answer (see :mod:`duetrl.core.coursework.guard`)."""
    return ["duetrl.core.reference", "duetrl.core.coursework"] + [
        f"duetrl.backends.{b}.{m}" for b in BACKEND_NAMES for m in assignment.forbidden_modules]


def _defines(source: Path, names: set[str]) -> bool:
    try:
        tree = ast.parse(source.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return False
    return any(isinstance(n, ast.FunctionDef | ast.ClassDef) and n.name in names
               for n in tree.body)


def _one_child(backend, submission, assignment, cases, indices, memory_mb, read_blocked,
               write_blocked, outputs, statuses, budget, left) -> tuple[list[int], float]:
    """One child for the tests ``indices`` with ``left`` seconds of the budget.

    :returns: ``(the tests still to run, the seconds of the budget this child used)``.
    """
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
               "write_blocked": write_blocked, "load_timeout_s": LOAD_S, "tests": tests,
               "budget_s": budget, "budget_left_s": left,
               "protected_modules": protected_modules(assignment),
               "protected_files": list(protected_files(assignment)),
               "forbidden_modules": [f"duetrl.backends.{backend}.{m}"
                                     for m in assignment.forbidden_modules]
               + ["duetrl.core.reference", "duetrl.core.coursework"],
               "forbidden_names": sorted(set(assignment.forbidden_names) | set(todo_names))}
        (scratch / "job.json").write_text(json.dumps(job))
        cpu = STARTUP_S + LOAD_S + min(left, sum(cases[i].timeout_s for i in indices))
        read_fd, write_fd = os.pipe()
        with open(scratch / "stdout.txt", "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "duetrl.core.coursework.harness", str(scratch),
                 str(write_fd)], cwd=scratch, env=_child_env(scratch), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, pass_fds=(write_fd,),
                preexec_fn=lambda: _set_child_limits(int(cpu) + 10))
            os.close(write_fd)
            run = _Run({f"t{i}": i for i in indices}, cases, left)
            _read_events(process, read_fd, run)
            if run.current is not None and not run.killed:
                run.expire(killed=False)
        for event in run.events:
            if event.get("event") == "load_error":
                for i in indices:
                    statuses[i] = ("error", f"your file could not be imported: "
                                            f"{event.get('message', '')}", 0.0)
                return [], run.spent
        for i, (status, message, seconds) in run.results.items():
            if status == "ok" and i not in run.refused:
                outputs[i] = _load_outputs(scratch / "out" / f"t{i}.npz")
            statuses[i] = (status, message[:400], seconds)
        for i, message in run.refused.items():  # a refusal fails the test, caught or not
            statuses[i] = ("error", message[:400], statuses.get(i, ("", "", 0.0))[2])
        if run.load_refusal:
            for i in indices:
                statuses[i] = ("error", f"{run.load_refusal[:380]} (while your file was "
                                        "imported)", 0.0)
            return [], run.spent
        if run.current is not None:  # the child died or hung inside this test
            i = run.current
            reason = ("time limit: your code did not finish in time (an infinite loop?)"
                      if run.killed or process.returncode in (-signal.SIGKILL, -signal.SIGXCPU)
                      else f"your code crashed the process (exit status {process.returncode}; "
                           "out of memory?)")
            statuses[i] = ("error", run.refused.get(i, reason)[:400], run.current_seconds)
        return [i for i in indices if i not in statuses], run.spent
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class _Run:
    """What the grader knows of one child, event by event, and when it must be stopped."""

    def __init__(self, by_id: dict[str, int], cases: list[Case], left: float) -> None:
        self.by_id, self.cases, self.left = by_id, cases, left
        self.events: list[dict] = []
        self.results: dict[int, tuple] = {}
        self.refused: dict[int, str] = {}
        self.load_refusal = ""
        self.current: int | None = None
        self.last: int | None = None
        self.started = 0.0
        self.current_seconds = 0.0
        self.ready = False
        self.killed = False
        self.spent = 0.0
        self.deadline = time.monotonic() + STARTUP_S + min(LOAD_S, max(left, 0.0)) + GRACE_S

    def on(self, event: dict) -> None:
        now = time.monotonic()
        self.events.append(event)
        kind = event.get("event")
        if kind == "ready":
            self.ready = True
            self.deadline = now + GAP_S
        elif kind == "start" and event.get("id") in self.by_id:
            self.current = self.last = self.by_id[event["id"]]
            self.started = now
            limit = min(float(self.cases[self.current].timeout_s), self.left - self.spent)
            self.deadline = now + max(limit, 0.0) + GRACE_S
        elif kind == "done" and event.get("id") in self.by_id:
            i = self.by_id[event["id"]]
            try:
                seconds = max(float(event.get("seconds", 0.0)), 0.0)
            except (TypeError, ValueError):
                seconds = 0.0
            if i == self.current:
                self.spent += min(seconds, now - self.started)
            self.results[i] = ("ok" if event.get("status") == "ok" else "error",
                               str(event.get("message", "")), seconds)
            self.current = None
            self.deadline = now + GAP_S
        elif kind == "refused":
            message = str(event.get("message", "refused"))
            target = self.current if self.current is not None else self.last
            if not self.ready:
                self.load_refusal = self.load_refusal or message
            elif target is not None:
                self.refused.setdefault(target, message)

    def expire(self, killed: bool = True) -> None:
        """The deadline passed (the child is killed) or the child died: a test in progress
        used its time."""
        self.killed = self.killed or killed
        if self.current is not None:
            self.current_seconds = time.monotonic() - self.started
            self.spent += self.current_seconds


def _read_events(process: subprocess.Popen, read_fd: int, run: _Run) -> None:
    """JSON lines from the child, handed to ``run`` as they come, until it closes the channel,
    exits, or ``run``'s deadline passes (then the child is killed)."""
    buffer = b""
    received = 0
    try:
        while True:
            timeout = run.deadline - time.monotonic()
            if timeout <= 0:
                run.expire()
                break
            ready, _, _ = select.select([read_fd], [], [], min(timeout, 1.0))
            if ready:
                chunk = os.read(read_fd, 65536)
                if not chunk:
                    break
                received += len(chunk)
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    event = _parse(line)
                    if event is not None:
                        run.on(event)
                if received > 2**22:  # a submission flooding the channel
                    run.expire()
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
    event = _parse(buffer)
    if event is not None:
        run.on(event)


def _parse(line: bytes) -> dict | None:
    try:
        event = json.loads(line.decode("utf-8", "replace"))
    except json.JSONDecodeError:
        return None
    return event if isinstance(event, dict) else None


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
