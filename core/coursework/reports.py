"""A graded submission and its formats: text for a person, JSON, Gradescope's results.json."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

FORMATS = ("text", "json", "gradescope")
"""What :func:`format_report` writes."""


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
