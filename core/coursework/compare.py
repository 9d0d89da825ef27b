"""One comparator: a student's answer against the float64 reference.

Both places that judge a student's numbers use it: the exercise checks that end each tutorial
(:mod:`duetrl.core.exercises`, and the tutorials' own checks) and the grader
(:mod:`duetrl.core.coursework.grader`, and the public tests a student runs at home). So the
same wrong answer gets the same verdict in both. The checks, in order:

1. numbers: an array of a numeric dtype (not strings, not objects);
2. shape: exactly the reference's (``()`` is not ``(1,)``; nothing is broadcast);
3. dtype, when one is asked for (the grader: keep the inputs' floating dtype);
4. NaN and inf: none where the reference is finite; where the reference itself is NaN or
   +-inf, the same NaN or the same signed inf (top-k filtering's ``-inf``);
5. values: ``|got - expected| <= atol + rtol * |expected|`` at every finite entry (the test
   of ``np.allclose``; an error equal to the tolerance passes).

What a failure message shows is chosen by ``show``: ``"arrays"`` both arrays in full (the
tutorials: small inputs, the student sees everything), ``"worst"`` the worst entry's index and
both values (a public case), ``"summary"`` only the size of the error (a hidden case: no
hidden value may leak into a message).

A :class:`Verdict` is ``(passed, message)``; a caller with a check of its own after the
comparison (a tutorial's follow-up, a grader's hint) reads it and goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from duetrl.core.coursework.case import Case

SHOW = ("arrays", "worst", "summary")
"""How much of the arrays a failure message shows (see the module docstring)."""


class Verdict(NamedTuple):
    """Whether an answer passed, and what to tell the student (why not, or what was checked).

    Truthy when it passed, so ``if not verdict: return verdict`` reads as it should.
    """

    passed: bool
    message: str = ""

    def __bool__(self) -> bool:
        return bool(self.passed)


def _tolerance(atol: float, rtol: float) -> str:
    return f"{atol:g}" if rtol == 0 else f"{atol:g} + {rtol:g} |expected|"


def compare_arrays(got: Any, expected: Any, atol: float, rtol: float = 0.0,
                   what: str = "the result", show: str = "worst",
                   dtype: str | None = None) -> Verdict:
    """Compare one answer with the reference: numbers, shape, dtype, NaN/inf, then values.

    :param got: the student's answer (an array or anything ``np.asarray`` takes).
    :param expected: the reference's float64 answer.
    :param atol: absolute tolerance; ``rtol``: relative tolerance (of ``|expected|``).
    :param what: names the answer in the message, e.g. ``"the returns"``.
    :param show: ``"arrays"``, ``"worst"`` or ``"summary"``: what a failure message reveals.
    :param dtype: the floating dtype the answer must have (e.g. ``"float32"``), or None.
    :returns: a :class:`Verdict`; its message is empty when the answer passed.
    """
    if show not in SHOW:
        raise ValueError(f"show: expected one of {list(SHOW)}, got {show!r}")
    if not (atol >= 0 and rtol >= 0):  # negative: every answer fails; NaN: every answer passes
        raise ValueError(f"atol, rtol: expected tolerances >= 0, got {atol!r}, {rtol!r}")
    got = np.asarray(got)
    expected = np.asarray(expected, dtype=np.float64)
    if got.dtype.kind not in "fiub":
        return Verdict(False, f"{what} is not a tensor of numbers (got dtype {got.dtype})")
    if got.shape != expected.shape:
        return Verdict(False, f"{what} has the wrong shape: got {got.shape}, expected "
                              f"{expected.shape}")
    if dtype and got.dtype.kind == "f" and str(got.dtype) != dtype:
        why = "keep the inputs' dtype" if dtype.startswith("float") else "ids are integers"
        return Verdict(False, f"{what} has dtype {got.dtype}, expected {dtype} ({why})")
    got = got.astype(np.float64)
    finite = np.isfinite(expected)
    if (~np.isfinite(got) & finite).any():
        return _differs(got, expected, what, show, "contains NaN or inf where the reference is "
                                                   "finite")
    same = np.where(np.isnan(expected), np.isnan(got), got == expected)
    if not same[~finite].all():
        return _differs(got, expected, what, show, "differs where the reference is NaN or inf: "
                                                   "there it must be the same")
    error = np.zeros(expected.shape)  # the entries where the reference is finite
    error[finite] = np.abs(got[finite] - expected[finite])
    excess = error - (atol + rtol * np.abs(np.where(finite, expected, 0.0)))
    if error.size and excess.max() > 0:  # an error equal to the tolerance passes
        index = np.unravel_index(int(np.argmax(excess)), excess.shape)
        return _differs(got, expected, what, show, "differs from the reference", error, index,
                        _tolerance(atol, rtol))
    return Verdict(True, "")


def _differs(got: np.ndarray, expected: np.ndarray, what: str, show: str, reason: str,
             error: np.ndarray | None = None, index: tuple | None = None,
             tolerance: str = "") -> Verdict:
    """The failure message, revealing as much as ``show`` allows."""
    if show == "arrays":
        detail = f"max error {error.max():.2e}" if error is not None else reason
        return Verdict(False, f"{what}: expected\n{np.round(expected, 6)}\ngot\n"
                              f"{np.round(got, 6)}\n({detail})")
    if error is None:
        return Verdict(False, f"{what} {reason}")
    if show == "summary":
        return Verdict(False, f"{what} {reason}: max abs error {error.max():.3g} "
                              f"(tolerance {tolerance})")
    return Verdict(False, f"{what} {reason}: max abs error {error[index]:.3g} at index "
                          f"{tuple(int(i) for i in index)}: got {got[index]:.6g}, expected "
                          f"{expected[index]:.6g} (tolerance {tolerance})")


# ---- the tutorials' exercises: call the answer and the reference on each case -------------


def describe_inputs(case: tuple) -> str:
    """The inputs of a case, arrays by their shape (a hidden input's values are not shown)."""
    return "(" + ", ".join(f"array {x.shape}" if isinstance(x, np.ndarray) else repr(x)
                           for x in case) + ")"


def compare_calls(student: Callable[..., Any], reference: Callable[..., Any],
                  cases: Sequence[tuple], what: str, atol: float = 1e-9,
                  rtol: float = 1e-9) -> Verdict:
    """Call ``student(*case)`` and ``reference(*case)`` on every case; the first mismatch fails.

    An exception in the student's code is a failure, never a crash. On success the message
    says how many inputs agreed; a caller may replace it or add a check of its own.
    """
    for case in cases:
        expected = np.asarray(reference(*case), dtype=np.float64)
        where = f"{what}, for {describe_inputs(case)}"
        try:
            got = np.asarray(student(*case))  # as the grader sees it: strings are no numbers
        except Exception as error:  # the student's code, whatever it raises
            return Verdict(False, f"{where}, raised {type(error).__name__}: {error}")
        verdict = compare_arrays(got, expected, atol, rtol, where, show="arrays")
        if not verdict:
            return verdict
    return Verdict(True, f"{what}: right on all {len(cases)} inputs, as the reference")


# ---- the grader: a case's outputs, as the child process returned them ----------------------


def output_label(key: str) -> str:
    """How a message names output ``key`` of a case (``"loss"`` -> ``"the loss"``)."""
    if key.startswith("param:"):
        return f"parameter {key[6:]} after your update"
    return {"0": "the result", "1": "the second result", "grad": "the gradient",
            "loss": "the loss", "advantages": "the advantages",
            "returns": "the returns"}.get(key, key)


def compare_outputs(case: Case, outputs: dict[str, np.ndarray]) -> Verdict:
    """One case's outputs against its expected values (a hidden case's message hides them)."""
    if case.check is not None:
        return Verdict(*case.check(outputs))
    show = "worst" if case.visibility == "visible" else "summary"
    for key, expected in case.expected.items():
        label = output_label(key)
        if key not in outputs:
            return Verdict(False, f"{label} is missing (return what the statement asks for)")
        verdict = compare_arrays(outputs[key], expected, case.atol, 0.0, label, show,
                                 case.expected_dtype)
        if not verdict:
            return Verdict(False, verdict.message + _diagnosis(case, outputs))
    return Verdict(True, "")


def _diagnosis(case: Case, outputs: dict[str, np.ndarray]) -> str:
    """``"; it matches <a typical mistake>"`` when the wrong answer is one of the case's
    diagnosed mistakes (the same values within the case's tolerance), else ``""``."""
    for mistake, what in getattr(case, "diagnoses", None) or ():
        telling = any(not compare_arrays(v, case.expected[k], case.atol) for k, v in
                      mistake.items() if k in case.expected)  # this case can tell it apart
        if telling and all(k in outputs and compare_arrays(outputs[k], v, case.atol)
                           for k, v in mistake.items()):
            return f"; it matches {what}"
    return ""


def case_verdict(case: Case, status: str, message: str,
                 outputs: dict[str, np.ndarray] | None) -> Verdict:
    """The verdict on one graded case from what running it gave.

    :param status: ``"ok"``, or ``"error"`` when the student's code raised, crashed or ran
        out of time (``message`` says which): a failure.
    :param outputs: the case's outputs when ``status`` is ``"ok"``.
    :returns: passed with ``"passed"``, or failed with the reason and, after a wrong answer,
        the case's hint.
    """
    if status != "ok":
        return Verdict(False, message)
    if outputs is None or "__error__" in outputs:
        verdict = Verdict(False, "the grader could not read your outputs")
    else:
        verdict = compare_outputs(case, outputs)
    if not verdict:
        return Verdict(False, verdict.message + (f". Hint: {case.hint}" if case.hint else ""))
    return Verdict(True, verdict.message or "passed")
