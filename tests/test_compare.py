"""The one comparator (``core/coursework/compare.py``): the tutorials' exercise checks and the
grader give the same verdict on the same answer, and each rule of the comparison has a case
that a one-character slip in it would get wrong (``>=`` for ``>`` at the tolerance, a shape
that broadcasts, a NaN that compares false, an inf of the wrong sign)."""

from __future__ import annotations

import numpy as np
import pytest

from duetrl.core import exercises
from duetrl.core.coursework.cases import Case
from duetrl.core.coursework.compare import (
    Verdict,
    case_verdict,
    compare_arrays,
    compare_calls,
)

X = np.array([0.5, -1.0, 3.0])
ATOL = 0.25  # a power of two: expected + ATOL is exact, so "error equal to the tolerance" is


def reference(x: np.ndarray) -> np.ndarray:
    return 2.0 * x  # [1, -2, 6]


def boom(x: np.ndarray) -> np.ndarray:
    raise ZeroDivisionError("oops")


ANSWERS = {  # name: (answer, passes)
    "right": (reference, True),
    "off by exactly the tolerance": (lambda x: 2.0 * x + ATOL, True),
    "off by more than the tolerance": (lambda x: 2.0 * x + ATOL * (1 + 1e-6), False),
    "one entry off, negative side": (lambda x: 2.0 * x - np.array([0, 0.5, 0]), False),
    "wrong shape that broadcasts": (lambda x: (2.0 * x)[None, :], False),
    "wrong shape (column)": (lambda x: (2.0 * x)[:, None], False),
    "NaN": (lambda x: np.where(x > 0, np.nan, 2.0 * x), False),
    "inf": (lambda x: np.where(x > 2, np.inf, 2.0 * x), False),
    "exception": (boom, False),
}


def exercise_verdict(answer) -> Verdict:
    return compare_calls(answer, reference, [(X,)], "y", atol=ATOL, rtol=0.0)


def grader_verdict(answer, visibility: str) -> Verdict:
    """What the grader scores: the child returns the outputs, or reports that the code raised."""
    case = Case("y", 1.0, visibility, call={}, expected={"0": reference(X)}, atol=ATOL,
                expected_dtype=None)
    try:
        outputs = {"0": np.asarray(answer(X))}
    except Exception as error:
        return case_verdict(case, "error", f"{type(error).__name__}: {error}", None)
    return case_verdict(case, "ok", "", outputs)


@pytest.mark.parametrize("name", list(ANSWERS))
def test_exercises_and_grader_agree(name: str, capsys) -> None:
    answer, passes = ANSWERS[name]
    verdicts = [exercise_verdict(answer), grader_verdict(answer, "visible"),
                grader_verdict(answer, "hidden")]
    assert [v.passed for v in verdicts] == [passes] * 3, [v.message for v in verdicts]
    assert exercises.compare(1, answer, reference, [(X,)], "y", ATOL, 0.0) is passes
    assert ("✓" if passes else "✗") in capsys.readouterr().out
    if not passes:
        assert all(v.message for v in verdicts)


def test_a_hidden_case_never_shows_its_values() -> None:
    hidden = grader_verdict(ANSWERS["one entry off, negative side"][0], "hidden")
    visible = grader_verdict(ANSWERS["one entry off, negative side"][0], "visible")
    assert "max abs error 0.5" in hidden.message and "-2" not in hidden.message
    assert "at index (1,): got -2.5, expected -2" in visible.message
    assert "expected\n[ 1. -2.  6.]" in exercise_verdict(lambda x: 2.0 * x - 1).message


def test_relative_tolerance_is_of_the_absolute_expected_value() -> None:
    expected = np.array([1.0, -2.0, 6.0])
    allowed = 0.125 * np.abs(expected)  # rtol 1/8: 0.125, 0.25, 0.75 (exact in binary)
    assert compare_arrays(expected + allowed, expected, 0.0, 0.125)
    assert compare_arrays(expected - allowed, expected, 0.0, 0.125)  # -2 - 0.25 too: |expected|
    assert not compare_arrays(expected + np.array([0, 0, 0.76]), expected, 0.0, 0.125)
    assert not compare_arrays(expected + np.array([0.13, 0, 0]), expected, 0.0, 0.125)


def test_the_references_inf_and_nan_must_come_back_in_place() -> None:
    top_k = np.array([[1.5, -np.inf, 0.2]])  # filtered logits: -inf where a token is dropped
    assert compare_arrays(top_k.copy(), top_k, 1e-9)
    assert not compare_arrays(np.array([[1.5, np.inf, 0.2]]), top_k, 1e-9)  # the sign
    assert not compare_arrays(np.array([[1.5, -1e30, 0.2]]), top_k, 1e-9)  # a finite stand-in
    assert not compare_arrays(np.array([[1.5, np.nan, 0.2]]), top_k, 1e-9)
    assert compare_arrays([np.nan, 1.0], [np.nan, 1.0], 0.0)
    assert not compare_arrays([0.0, 1.0], [np.nan, 1.0], 0.0)


def test_scalars_numbers_and_dtypes() -> None:
    assert not compare_arrays(np.array([4.0]), np.float64(4.0), 0.0)  # (1,) is not ()
    assert compare_arrays(4, 4.0, 0.0) and compare_arrays(True, 1.0, 0.0)
    verdict = compare_arrays(np.array(["4"]), [4.0], 0.0)
    assert not verdict and "not a tensor of numbers" in verdict.message
    verdict = compare_arrays(np.float32([1, 2]), [1, 2], 1e-6, dtype="float64")
    assert not verdict and "dtype float32, expected float64" in verdict.message
    assert compare_arrays(np.zeros((0, 3)), np.zeros((0, 3)), 0.0)
    with pytest.raises(ValueError, match="show: expected one of"):
        compare_arrays(1.0, 1.0, 0.0, show="all")


def test_a_verdict_reads_as_a_pair_and_a_truth_value() -> None:
    passed, message = exercise_verdict(reference)
    assert passed and message == "y: right on all 1 inputs, as the reference"
    failed = exercise_verdict(boom)
    assert not failed and failed.message == "y, for (array (3,)), raised ZeroDivisionError: oops"
    hint = Case("y", 1.0, "visible", call={}, expected={"0": reference(X)}, hint="read eq. 3")
    assert case_verdict(hint, "ok", "", {"0": X}).message.endswith(". Hint: read eq. 3")
    assert case_verdict(hint, "ok", "", {}).message.startswith("the result is missing")
    assert case_verdict(hint, "error", "time limit", None) == (False, "time limit")


def test_an_error_in_one_entry_of_a_large_array_is_found_and_located() -> None:
    """999 entries right, one off: a mean of the errors would pass it, the worst entry fails."""
    expected = np.arange(1000.0).reshape(10, 100) / 8  # dyadic: expected + 0.25 is exact
    got = expected.copy()
    got[7, 34] += 0.5
    visible = compare_arrays(got, expected, ATOL, what="y", show="worst")
    assert not visible and visible.message == ("y differs from the reference: max abs error 0.5 "
                                               "at index (7, 34): got 92.25, expected 91.75 "
                                               "(tolerance 0.25)")
    hidden = compare_arrays(got, expected, ATOL, what="y", show="summary")
    assert not hidden and hidden.message == ("y differs from the reference: max abs error 0.5 "
                                             "(tolerance 0.25)")
    got[7, 34] = expected[7, 34] - ATOL  # at the tolerance exactly: passes
    assert compare_arrays(got, expected, ATOL)
    got[7, 34] = np.nan
    assert "contains NaN or inf" in compare_arrays(got, expected, ATOL).message
    relative = expected.copy()
    relative[9, 99] *= 1.0 + 2**-6  # rtol 2^-7 of |124.875| is exceeded there alone
    assert not compare_arrays(relative, expected, 0.0, 2**-7)
    assert compare_arrays(relative, expected, 0.0, 2**-6)


# ---- hand cases from mutation testing (MUTATION.md) ----------------------------------------


def test_an_answer_of_strings_fails_in_the_exercise_as_in_the_grader() -> None:
    """Digits as text are no numbers, in both places (the exercise path once read them as
    float64 and passed them); an unfinished stub's None is no numbers either."""
    for answer in (lambda x: [str(v) for v in 2.0 * x], lambda x: None):
        verdicts = [exercise_verdict(answer), grader_verdict(answer, "visible"),
                    grader_verdict(answer, "hidden")]
        assert [v.passed for v in verdicts] == [False] * 3
        assert all("not a tensor of numbers" in v.message for v in verdicts), verdicts


def test_compare_calls_default_tolerance_is_1e_9_absolute_plus_1e_9_relative() -> None:
    """References 0 and 1000: 1e-9 + 1e-9 * 1000 = 1.001e-6 is allowed at 1000, 1e-9 at 0."""
    cases = [(np.array([0.0, 1000.0]),)]
    assert compare_calls(lambda x: x + [0.0, 5e-7], lambda x: x, cases, "y")  # rtol's share
    assert not compare_calls(lambda x: x + [0.0, 2e-6], lambda x: x, cases, "y")
    assert not compare_calls(lambda x: x + [1e-6, 0.0], lambda x: x, cases, "y")  # atol alone


def test_a_negative_or_nan_tolerance_is_refused() -> None:
    compare_arrays(1.0, 1.0, 0.0, 0.0)  # zero is a tolerance
    for atol, rtol in ((-0.5, 0.0), (0.0, -0.5), (float("nan"), 0.0), (0.0, float("nan"))):
        with pytest.raises(ValueError, match=r"atol, rtol: expected tolerances >= 0"):
            compare_arrays(1.0, 1.0, atol, rtol)


def test_an_inf_of_the_wrong_sign_is_named() -> None:
    top_k = np.array([[1.5, -np.inf, 0.2]])
    verdict = compare_arrays(np.array([[1.5, np.inf, 0.2]]), top_k, 1e-9, what="the logits")
    assert verdict == (False, "the logits differs where the reference is NaN or inf: there it "
                              "must be the same")


def test_a_boolean_reference_is_compared_as_zeros_and_ones() -> None:
    """A mask as the reference: 1.0 where it is True passes, and a wrong answer's message
    shows the mask as the numbers it was compared with."""
    mask = np.array([True, False])
    assert compare_arrays(np.array([1.0, 0.0]), mask, 0.0)
    verdict = compare_arrays(np.array([1.0, 1.0]), mask, 0.0, what="the mask", show="arrays")
    assert verdict == (False, "the mask: expected\n[1. 0.]\ngot\n[1. 1.]\n(max error 1.00e+00)")


def _graded(expected: dict, **kwargs) -> Case:
    return Case("y", 1.0, "visible", call={}, expected=expected, atol=ATOL, expected_dtype=None,
                hint="read eq. 3", **kwargs)


def test_case_verdicts_on_outputs_missing_unreadable_or_checked() -> None:
    case = _graded({"0": reference(X), "param:W": np.ones(2)})
    assert case_verdict(case, "ok", "", {"0": reference(X), "param:W": np.ones(2)}) == (
        True, "passed")
    assert case_verdict(case, "ok", "", {"0": reference(X)}) == (
        False, "parameter W after your update is missing (return what the statement asks "
               "for). Hint: read eq. 3")
    for unreadable in (None, {"__error__": np.array(1.0)}):
        assert case_verdict(case, "ok", "", unreadable) == (
            False, "the grader could not read your outputs. Hint: read eq. 3")
    learning = _graded({}, check=lambda outputs: (outputs["return"] > 100, "mean return 120"))
    assert case_verdict(learning, "ok", "", {"return": 120}) == (True, "mean return 120")
    assert not case_verdict(learning, "ok", "", {"return": 80})


def test_a_wrong_answer_is_told_which_typical_mistake_it_matches() -> None:
    """Two outputs, two diagnosed mistakes: "doubled" gets the first output right and the second
    doubled; "sign" flips the first. An answer is told a mistake only when all its outputs
    match that mistake's, and only a mistake this case can tell from the right answer."""
    a, b = reference(X), np.array([1.0, 2.0])
    doubled, sign = {"0": a, "1": 2 * b}, {"0": -a, "1": b}
    same = {"0": a}  # a mistake this case cannot tell apart from the right answer
    case = _graded({"0": a, "1": b}, diagnoses=[(same, "same"), (doubled, "doubled"),
                                                (sign, "sign")])
    told = case_verdict(case, "ok", "", {"0": a, "1": 2 * b})
    assert not told and told.message.endswith("; it matches doubled. Hint: read eq. 3")
    assert case_verdict(case, "ok", "", {"0": -a, "1": b}).message.endswith(
        "; it matches sign. Hint: read eq. 3")
    for untold in ({"0": a, "1": 3 * b}, {"0": -a, "1": 2 * b}):  # half of a mistake each
        verdict = case_verdict(case, "ok", "", untold)
        assert not verdict and "it matches" not in verdict.message, verdict
