"""The grader: a submission's functions against the float64 reference, scored test by test.

    report = grade("returns", "hw1/returns.py")          # backend read from its imports
    print(format_report(report, "text"))                 # duetrl.core.coursework.reports

Steps, one module each: read the submission and refuse it when it imports or copies the
solution, or reaches for files, programs or import tricks (:mod:`.integrity`); build the
public and hidden cases from a secret seed (:mod:`.cases`); run the student's functions in
child processes with memory, CPU and wall-clock limits (:mod:`.sandbox`); compare what comes
back with the reference (:mod:`.compare`: shape, dtype, NaN, values). This module scores each
test all or nothing, the assignment by the sum, and grades a folder of submissions into a CSV;
:mod:`.reports` writes the results as text, JSON or Gradescope's results.json. A crash, a
hang, NaN or a memory hog fails the tests it touches, never the grader.
"""

from __future__ import annotations

import csv
import json
import os
import secrets
import time
from pathlib import Path

from duetrl.core.coursework.cases import build_cases
from duetrl.core.coursework.compare import case_verdict
from duetrl.core.coursework.integrity import (
    detect_backend,
    find_submission_file,
    integrity_problems,
)
from duetrl.core.coursework.reports import Report, TestResult
from duetrl.core.coursework.sandbox import DEFAULT_MEMORY_MB, protected_paths, run_submission
from duetrl.core.coursework.specs import BACKEND_NAMES, LearningSpec, get_assignment


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


def grade(name: str, submission: str | Path, backend: str | None = None, seed: int | None = None,
          hidden: str | Path | None = None, memory_mb: float = DEFAULT_MEMORY_MB,
          learning: LearningSpec | None = None, read_blocked: list[str] | None = None,
          write_blocked: list[str] | None = None, integrity: bool = True,
          time_limit_s: float | None = None, budget_s: float | None = None) -> Report:
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
    :param budget_s: seconds all the tests of the submission may use together (default:
        twice the longest test's limit, never more than their sum; :func:`.submission_budget`).
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
                                       protected_paths(*(write_blocked or [])), budget_s)
    for i, case in enumerate(cases):
        status, message, seconds = statuses.get(i, ("error", "not run", 0.0))
        passed, message = case_verdict(case, status, message, outputs.get(i))
        report.tests.append(TestResult(case.name, float(case.points) if passed else 0.0,
                                       float(case.points),
                                       message, case.visibility, round(seconds, 3)))
    report.seconds = time.perf_counter() - start
    return report


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
