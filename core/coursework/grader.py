"""The grader: a submission's functions against the float64 reference, in a child process.

    report = grade("returns", "hw1/returns.py")          # backend read from its imports
    print(format_report(report, "text"))

Steps: read the submission (a ``.py`` file, or a folder holding the assignment's file); tell
its backend from its imports; refuse it when it imports or copies the solution, or reaches for
files, programs or import tricks; build the public and hidden cases (a secret seed); run the
student's functions in a child process (:mod:`duetrl.core.coursework.harness`) with memory,
CPU and wall-clock limits in a scratch folder; compare what comes back with the reference
(shape, dtype, NaN, values); score each test all or nothing, the assignment by the sum.
A crash, a hang, NaN or a memory hog fails the tests it touches, never the grader: a child
that dies is restarted for the tests that remain.
"""

from __future__ import annotations

import ast
import csv
import importlib.util
import json
import os
import resource
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from duetrl.core.coursework.cases import Case, build_cases
from duetrl.core.coursework.extract import copied_from_solution, function_body, solution_body
from duetrl.core.coursework.specs import BACKEND_NAMES, Assignment, LearningSpec, get_assignment

FORMATS = ("text", "json", "gradescope")
DEFAULT_MEMORY_MB = 2048
"""Address space a submission may add to what its framework took on import."""
STARTUP_S = 90.0
"""Wall-clock allowance of one child for importing its framework and the submission."""
MAX_RESTARTS = 3

_DANGEROUS_MODULES = ("importlib", "ctypes", "subprocess", "socket", "multiprocessing", "shutil",
                      "pathlib", "glob", "pickle", "gc", "inspect", "sys", "os", "io", "builtins",
                      "marshal", "threading", "signal", "resource", "requests", "urllib")
_DANGEROUS_CALLS = ("open", "exec", "eval", "compile", "__import__", "globals", "vars",
                    "breakpoint", "input")
_DANGEROUS_ATTRIBUTES = ("__subclasses__", "__globals__", "__builtins__", "__code__",
                         "__loader__", "f_back", "f_globals", "modules")


@dataclass
class TestResult:
    """One graded test, as Gradescope names its fields."""

    name: str
    score: float
    max_score: float
    output: str
    visibility: str
    seconds: float = 0.0


@dataclass
class Report:
    """A graded submission."""

    assignment: str
    submission: str
    backend: str | None
    tests: list[TestResult] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0

    @property
    def score(self) -> float:
        return float(sum(t.score for t in self.tests))

    @property
    def max_score(self) -> float:
        return float(sum(t.max_score for t in self.tests))


# ---- reading a submission ------------------------------------------------------------------


def find_submission_file(assignment: Assignment, submission: str | Path) -> Path:
    """The student's ``.py`` file: ``submission`` itself, or the assignment's file inside a
    folder (Gradescope's ``/autograder/submission``), or the folder's only ``.py`` file."""
    path = Path(submission)
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(f"submission: no file or folder {str(path)!r}")
    named = sorted(path.rglob(assignment.student_file))
    named = [p for p in named if not p.name.startswith("test_")]
    if named:
        return named[0]
    candidates = [p for p in sorted(path.rglob("*.py")) if not p.name.startswith("test_")]
    if len(candidates) == 1:
        return candidates[0]
    raise FileNotFoundError(f"submission: no {assignment.student_file} in {str(path)!r}")


def detect_backend(source: str) -> str:
    """``"torch"`` or ``"tf"`` from the submission's imports.

    :raises ValueError: when it imports both frameworks or neither (pass ``--backend``).
    """
    found = set()
    for node in ast.walk(ast.parse(source)):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "torch" or parts[:3] == ["duetrl", "backends", "torch"]:
                found.add("torch")
            if parts[0] in ("tensorflow", "keras") or parts[:3] == ["duetrl", "backends", "tf"]:
                found.add("tf")
    if len(found) != 1:
        what = "both torch and tensorflow" if found else "neither torch nor tensorflow"
        raise ValueError(f"backend: the submission imports {what}; pass --backend torch|tf")
    return found.pop()


def _solution_path(backend: str, module: str) -> Path:
    spec = importlib.util.find_spec(f"duetrl.backends.{backend}")
    return Path(list(spec.submodule_search_locations)[0]) / f"{module}.py"


def integrity_problems(source: str, assignment: Assignment, backend: str) -> list[str]:
    """Why a submission may not be graded: imports of the solution or the oracle, copies of
    the solution's bodies, file/process/import tricks. Empty when it is fine."""
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        return [f"SyntaxError: {error.msg} (line {error.lineno} of your file)"]
    problems = []
    solution_modules = {f"duetrl.backends.{backend}.{m}" for m in assignment.forbidden_modules}
    forbidden_prefixes = sorted(solution_modules) + ["duetrl.core.reference",
                                                     "duetrl.core.coursework"]
    graded = set(assignment.todo_names(backend))
    forbidden_names = set(assignment.forbidden_names) | {n.split(".")[0] for n in graded}
    duetrl_aliases = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                       else [node.module or ""])
            for module in modules:
                if any(module == p or module.startswith(p + ".") for p in forbidden_prefixes):
                    problems.append(f"line {node.lineno}: imports {module}, the solution")
                if module.split(".")[0] in _DANGEROUS_MODULES:
                    problems.append(f"line {node.lineno}: imports {module}, which this "
                                    "assignment does not need")
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    if any(full == p for p in forbidden_prefixes):
                        problems.append(f"line {node.lineno}: imports {full}, the solution")
                    elif alias.name in forbidden_names and (
                            (node.module or "").startswith("duetrl")
                            or alias.name in assignment.forbidden_names):
                        problems.append(f"line {node.lineno}: imports {alias.name} from "
                                        f"{node.module}: write it yourself")
                    if (node.module or "").startswith("duetrl"):
                        duetrl_aliases.add(alias.asname or alias.name)
            else:
                for alias in node.names:
                    if alias.name.startswith("duetrl"):
                        duetrl_aliases.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id in _DANGEROUS_CALLS:
            problems.append(f"line {node.lineno}: calls {node.func.id}(), which this assignment "
                            "does not need")
        elif isinstance(node, ast.Attribute):
            if node.attr in _DANGEROUS_ATTRIBUTES:
                problems.append(f"line {node.lineno}: uses .{node.attr}")
            elif node.attr in assignment.forbidden_names:
                problems.append(f"line {node.lineno}: uses .{node.attr}, a ready-made version "
                                "of what you must write")
            elif node.attr in forbidden_names and isinstance(node.value, ast.Name | ast.Attribute) \
                    and _root_name(node.value) in duetrl_aliases:
                problems.append(f"line {node.lineno}: uses the project's {node.attr}: write it "
                                "yourself")
    solution_source = _solution_path(backend, assignment.module).read_text(encoding="utf-8")
    pairs = [(t.name, t.rename or t.name, solution_source) for t in assignment.todos[backend]]
    for module, todo in assignment.extras:
        pairs.append((todo.name, todo.rename or todo.name,
                      _solution_path(backend, module).read_text(encoding="utf-8")))
    for solution_name, student_name, text in pairs:
        body = function_body(source, student_name)
        if body is None:
            continue
        why = copied_from_solution(body, solution_body(text, solution_name))
        if why:
            problems.append(f"{student_name} copies the project's solution: {why}")
    return list(dict.fromkeys(problems))


def _root_name(node: ast.expr) -> str:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else ""


# ---- running the child ---------------------------------------------------------------------


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


# ---- comparing -----------------------------------------------------------------------------


def _label(key: str) -> str:
    if key.startswith("param:"):
        return f"parameter {key[6:]} after your update"
    return {"0": "the result", "1": "the second result", "grad": "the gradient",
            "loss": "the loss", "advantages": "the advantages",
            "returns": "the returns"}.get(key, key)


def compare(case: Case, outputs: dict) -> tuple[bool, str]:
    """(passed, message) for one case's outputs against its expected values."""
    if case.check is not None:
        return case.check(outputs)
    hidden = case.visibility != "visible"
    for key, expected in case.expected.items():
        label = _label(key)
        if key not in outputs:
            return False, f"{label} is missing (return what the statement asks for)"
        got = outputs[key]
        if got.dtype.kind not in "fiub":
            return False, f"{label} is not a tensor of numbers (got dtype {got.dtype})"
        expected = np.asarray(expected)
        if got.shape != expected.shape:
            return False, f"{label} has the wrong shape: got {got.shape}, expected {expected.shape}"
        if case.expected_dtype and got.dtype.kind == "f" and str(got.dtype) != case.expected_dtype:
            return False, (f"{label} has dtype {got.dtype}, expected {case.expected_dtype} "
                           "(keep the inputs' dtype)")
        got = got.astype(np.float64)
        bad = ~np.isfinite(got) & np.isfinite(expected)
        if bad.any():
            return False, f"{label} contains NaN or inf where the reference is finite"
        error = np.abs(got - expected)
        if error.size and np.nanmax(error) > case.atol:
            worst = float(np.nanmax(error))
            if hidden:
                return False, f"{label} differs from the reference: max abs error {worst:.3g} " \
                              f"(tolerance {case.atol:g})"
            index = np.unravel_index(int(np.nanargmax(error)), error.shape)
            return False, (f"{label} differs from the reference: max abs error {worst:.3g} at "
                           f"index {tuple(int(i) for i in index)}: got {got[index]:.6g}, "
                           f"expected {expected[index]:.6g} (tolerance {case.atol:g})")
    return True, ""


# ---- grading -------------------------------------------------------------------------------


def read_hidden_seed(hidden: str | Path | None = None, seed: int | None = None) -> int:
    """The hidden cases' seed: ``seed``, else the instructor's ``hidden.json``, else
    ``DUETRL_GRADER_SEED``, else a fresh random one."""
    if seed is not None:
        return int(seed)
    if hidden is not None:
        return int(json.loads(Path(hidden).read_text())["seed"])
    if os.environ.get("DUETRL_GRADER_SEED"):
        return int(os.environ["DUETRL_GRADER_SEED"])
    return secrets.randbits(31)


def protected_paths(*extra: str | Path | None) -> list[str]:
    """The project's own folders (the reference and the solution) plus ``extra``."""
    paths = []
    for package in ("duetrl", "duetrl.core", "duetrl.backends"):
        spec = importlib.util.find_spec(package)
        paths += list(spec.submodule_search_locations or [])
    return [str(Path(p).resolve()) for p in paths + [e for e in extra if e]]


def grade(name: str, submission: str | Path, backend: str | None = None, seed: int | None = None,
          hidden: str | Path | None = None, memory_mb: float = DEFAULT_MEMORY_MB,
          learning: LearningSpec | None = None, read_blocked: list[str] | None = None,
          write_blocked: list[str] | None = None, integrity: bool = True,
          time_limit_s: float | None = None) -> Report:
    """Grade one submission of assignment ``name``.

    :param submission: the student's ``.py`` file or a folder holding it.
    :param backend: ``"torch"`` or ``"tf"``; read from the submission's imports when None.
    :param seed: the hidden cases' seed (default: :func:`read_hidden_seed`).
    :param hidden: an instructor's ``hidden.json`` (``{"seed": ...}``), never shown.
    :param memory_mb: memory the submission may use beyond its framework's.
    :param learning: overrides the learning threshold (environment, budget) of a learning
        assignment, e.g. a small one in tests.
    :param read_blocked: paths the submission may not read (hidden tests, other submissions).
    :param write_blocked: paths it may not change (results); the project's folders always.
    :param integrity: check for imports and copies of the solution (off: an instructor checks
        the project's own solution, which is a copy of itself).
    :param time_limit_s: overrides every case's time limit.
    :returns: a :class:`Report`; problems with the submission are failed tests, not errors.
    """
    assignment = get_assignment(name)
    start = time.perf_counter()
    path = find_submission_file(assignment, submission)
    report = Report(assignment.name, str(submission), None)
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        source = ""
    if backend is None:
        try:
            backend = detect_backend(source)
        except (ValueError, SyntaxError) as error:
            report.error = str(error) if isinstance(error, ValueError) else "SyntaxError"
            backend = None
    elif backend not in BACKEND_NAMES:
        from duetrl.core.backend import canonical_backend_name

        backend = canonical_backend_name(backend)
    report.backend = backend
    cases = build_cases(assignment, read_hidden_seed(hidden, seed), learning=learning)
    if time_limit_s is not None:
        for case in cases:
            case.timeout_s = float(time_limit_s)
    problems = [report.error] if report.error else (
        integrity_problems(source, assignment, backend) if integrity else [])
    if problems:
        message = "not graded: " + "; ".join(problems)
        report.error = message
        report.tests = [TestResult(c.name, 0.0, float(c.points), message, c.visibility)
                        for c in cases]
        report.seconds = time.perf_counter() - start
        return report
    read_paths = [str(Path(p).resolve()) for p in (read_blocked or [])]
    if hidden is not None:
        read_paths.append(str(Path(hidden).resolve().parent))
    outputs, statuses = run_submission(backend, path, assignment, cases, memory_mb, read_paths,
                                       protected_paths(*(write_blocked or [])))
    for i, case in enumerate(cases):
        status, message, seconds = statuses.get(i, ("error", "not run", 0.0))
        passed = False
        if status == "ok":
            if "__error__" in outputs.get(i, {}):
                message = "the grader could not read your outputs"
            else:
                passed, message = compare(case, outputs[i])
        if not passed and case.hint and status == "ok":
            message += f". Hint: {case.hint}"
        elif passed:
            message = message or "passed"
        report.tests.append(TestResult(case.name, float(case.points) if passed else 0.0,
                                       float(case.points),
                                       message, case.visibility, round(seconds, 3)))
    report.seconds = time.perf_counter() - start
    return report


# ---- reports -------------------------------------------------------------------------------


def gradescope_results(report: Report, hidden_visibility: str = "after_due_date") -> dict:
    """Gradescope's ``results.json``: score, output, tests (name, score, max_score, output,
    visibility)."""
    tests = [{"name": t.name, "score": float(t.score), "max_score": float(t.max_score),
              "output": t.output,
              "visibility": "visible" if t.visibility == "visible" else hidden_visibility}
             for t in report.tests]
    summary = (f"{report.assignment} ({report.backend or 'unknown backend'}): "
               f"{report.score:g} / {report.max_score:g}")
    if report.error:
        summary += f"\n{report.error}"
    return {"score": report.score, "output": summary, "visibility": "visible",
            "stdout_visibility": "hidden", "tests": tests}


def format_report(report: Report, fmt: str = "text") -> str:
    """The report as ``text`` (for a person), ``json`` or ``gradescope`` (results.json)."""
    if fmt not in FORMATS:
        raise ValueError(f"format: expected one of {list(FORMATS)}, got {fmt!r}")
    if fmt == "gradescope":
        return json.dumps(gradescope_results(report), indent=2)
    if fmt == "json":
        data = {**asdict(report), "score": report.score, "max_score": report.max_score}
        return json.dumps(data, indent=2)
    lines = [f"{report.assignment} ({report.backend or 'unknown backend'}): "
             f"{report.score:g} / {report.max_score:g}  ({report.seconds:.1f} s)"]
    if report.error:
        lines.append(report.error)
    for t in report.tests:
        mark = "PASS" if t.score == t.max_score else "FAIL"
        tag = "" if t.visibility == "visible" else " [hidden]"
        lines.append(f"  {mark} {t.score:g}/{t.max_score:g}  {t.name}{tag}")
        if mark == "FAIL" and t.output != report.error:
            lines.append(f"         {t.output}")
    return "\n".join(lines)


def grade_batch(name: str, folder: str | Path, csv_path: str | Path, **kwargs) -> list[Report]:
    """Grade every submission in ``folder`` (``.py`` files or one folder per student) and
    write one CSV row per student: student, backend, score, max_score, seconds, failed, error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"batch: no folder {str(folder)!r}")
    entries = [p for p in sorted(folder.iterdir())
               if (p.is_dir() or p.suffix == ".py") and not p.name.startswith((".", "_"))]
    csv_path = Path(csv_path)
    blocked_read = [str(folder.resolve())] + list(kwargs.pop("read_blocked", None) or [])
    blocked_write = [str(csv_path.resolve().parent)] + list(kwargs.pop("write_blocked", None)
                                                            or [])
    reports, rows = [], []
    for entry in entries:
        try:
            report = grade(name, entry, read_blocked=blocked_read, write_blocked=blocked_write,
                           **kwargs)
        except (FileNotFoundError, ValueError) as error:
            report = Report(name, str(entry), None, error=str(error))
        reports.append(report)
        rows.append({"student": entry.stem, "backend": report.backend or "",
                     "score": f"{report.score:g}", "max_score": f"{report.max_score:g}",
                     "seconds": f"{report.seconds:.1f}",
                     "failed": "; ".join(t.name for t in report.tests if t.score < t.max_score),
                     "error": report.error})
    with open(csv_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["student", "backend", "score", "max_score",
                                                    "seconds", "failed", "error"])
        writer.writeheader()
        writer.writerows(rows)
    return reports
