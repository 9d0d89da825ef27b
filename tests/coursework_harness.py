"""The checks the coursework tests make of every unit-case assignment (``scst``, ``kg``,
``recommender``): grading a submission in this process, and what a right one and a buggy one
must score.

:meth:`Harness.grade` runs every case of the assignment on a submission's source with the
grader's own ``run_call`` and ``case_verdict`` but without its child process (milliseconds a
case; the child process, the guard and the reference solution's full marks are tested once for
every assignment in ``test_coursework.py`` and ``test_grader_guard.py``). On top of it:

- a right submission, written apart from the solution, scores full marks in its framework, is
  no copy of the solution and passes the public tests the student runs at home;
- the student's own copy, filled in as the statement says, scores full marks too;
- each typical bug loses the points of the cases it must fail, keeps those it must pass, and
  the failed cases' messages say what the answer matches, never a hidden value;
- the hidden cases of any seed tell every diagnosed bug apart from the answer and each other.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

from duetrl.core.backend import load_backend
from duetrl.core.coursework.cases import build_cases
from duetrl.core.coursework.compare import case_verdict, compare_arrays
from duetrl.core.coursework.harness import describe_error, run_call
from duetrl.core.coursework.integrity import integrity_problems
from duetrl.core.coursework.make import student_copy
from duetrl.core.coursework.public import check_public_case, public_case_names
from duetrl.core.coursework.specs import get_assignment

Results = dict[str, tuple[float, float, str, str]]
"""``{case name: (score, max, message, visibility)}``."""


@dataclass(frozen=True)
class Harness:
    """The assignment ``name``'s cases, built from ``seed``."""

    name: str
    seed: int

    def grade(self, source: str, tmp_path: Path, backend: str = "torch") -> Results:
        """Every case of the assignment on ``source``, in this process: the grader's calls and
        verdicts without its child process. The source is written as the student's file in
        ``tmp_path`` (where the public tests look for it) and imported under a fresh name."""
        assignment = get_assignment(self.name)
        path = tmp_path / assignment.student_file
        path.write_text(source)
        module_name = f"student_{assignment.module}_{abs(hash(source))}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        results = {}
        for case in build_cases(assignment, self.seed):
            try:
                outputs, status, message = (
                    run_call(case.call, case.arrays, module, load_backend(backend)),
                    "ok",
                    "",
                )
            except Exception as error:  # noqa: BLE001  (the student's code, whatever it raises)
                outputs, status, message = None, "error", describe_error(error, str(path))
            passed, message = case_verdict(case, status, message, outputs)
            results[case.name] = (
                case.points if passed else 0.0,
                case.points,
                message,
                case.visibility,
            )
        return results

    def assert_full_marks(self, source: str, tmp_path: Path, backend: str = "torch") -> Results:
        """A right submission in ``backend``: full marks on every case, no integrity problem,
        and every public case passes as the student's ``test_<module>_public.py`` runs it.
        Returns the grades (for the test's own checks, e.g. the names of the cases)."""
        results = self.grade(source, tmp_path, backend)
        assert all(score == points for score, points, _, _ in results.values()), results
        assert not integrity_problems(source, get_assignment(self.name), backend)
        path = tmp_path / get_assignment(self.name).student_file
        for index in range(len(public_case_names(self.name))):
            assert check_public_case(self.name, backend, path, index) == (True, "passed"), index
        return results

    def assert_filled_copy_scores_full_marks(
        self, bodies: dict[str, str], tmp_path: Path, backend: str = "torch"
    ) -> None:
        """The student's copy with each ``raise NotImplementedError("TODO: <name>")`` replaced
        by ``bodies[name]``: no TODO left, no integrity problem, full marks."""
        filled = student_copy(self.name, backend)
        for name, body in bodies.items():
            filled = filled.replace(f'    raise NotImplementedError("TODO: {name}")\n', body)
        assert 'raise NotImplementedError("TODO: ' not in filled
        assert not integrity_problems(filled, get_assignment(self.name), backend)
        results = self.grade(filled, tmp_path, backend)
        assert all(s == p for s, p, _, _ in results.values()), results

    def assert_bug_loses_its_points(
        self,
        source: str,
        edit: tuple[str, str],
        must_fail: set[str],
        says: str,
        must_pass: set[str],
        tmp_path: Path,
        hinted: set[str] | None = None,
    ) -> None:
        """``source`` with the one-place ``edit`` (old, new) fails every case of ``must_fail``
        and none of ``must_pass``, scores between 0 and full marks, and each case of ``hinted``
        (default: ``must_fail``) says what the answer matches (``says``) with a hint; a hidden
        case gives the size of the error, never a value at an index."""
        assert source.count(edit[0]) == 1, edit[0]
        results = self.grade(source.replace(edit[0], edit[1]), tmp_path)
        failed = {name for name, (score, points, _, _) in results.items() if score < points}
        assert must_fail <= failed, (edit, failed)
        assert not must_pass & failed, (edit, must_pass & failed)
        score = sum(r[0] for r in results.values())
        assert 0 < score < sum(r[1] for r in results.values())
        for name in must_fail if hinted is None else hinted:
            _, _, message, visibility = results[name]
            assert "; it matches " in message and says in message and "Hint: " in message, message
            if visibility == "hidden":  # the size of the error, never a hidden value
                assert "max abs error" in message and " at index " not in message, message

    def assert_diagnoses_told_apart(self, seed: int) -> list:
        """In the cases built from ``seed``, every case has diagnoses, each diagnosed mistake
        has the answer's shapes, differs from the answer and from every other mistake (in one
        output at least). Returns the cases (for the test's own counts)."""
        cases = build_cases(get_assignment(self.name), seed)
        for case in cases:
            assert case.diagnoses, case.name
            for i, (mistake, what) in enumerate(case.diagnoses):
                assert all(v.shape == case.expected[k].shape for k, v in mistake.items()), what
                assert any(
                    not compare_arrays(v, case.expected[k], case.atol) for k, v in mistake.items()
                ), (case.name, what)
                for other, other_what in case.diagnoses[i + 1 :]:
                    assert any(
                        not compare_arrays(mistake[k], other[k], case.atol)
                        for k in mistake
                        if k in other
                    ), (case.name, what, other_what)
        return cases
