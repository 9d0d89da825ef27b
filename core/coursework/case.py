"""One graded case (:class:`Case`) and the tolerances of a student's answer: what every case
builder (``cases.py``, ``cases_lm_agent.py``) returns and the grader compares."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

ATOL_FLOAT64 = 1e-8
"""Student float64 vs the reference: looser than the project's 1e-10, since a student's
correct formula may sum in another order (a closed form, a cumulative product)."""
ATOL_FLOAT32 = 1e-4


@dataclass
class Case:
    """One graded test.

    :param name: shown to the student.
    :param points: its weight; all or nothing.
    :param visibility: ``"visible"`` (a public case: inputs may be shown) or ``"hidden"``.
    :param call: what the child runs (see ``harness.py``); array arguments name keys of
        ``arrays``.
    :param expected: output name -> reference array; compared for shape, dtype, NaN, values.
    :param expected_dtype: the output dtype required (the inputs' floating dtype).
    :param hint: said on failure (never an input value).
    :param check: for learning cases, a function of the child's outputs -> (passed, message).
    :param diagnoses: ``(outputs, what)`` pairs: the outputs a typical mistake gives, computed
        here like ``expected``; a wrong answer that matches one is told ``what`` it did
        (e.g. "a mean over the command's tokens, not their sum"), never an input.
    :param timeout_s: the test's own time limit (a right answer takes milliseconds to a few
        seconds); all the tests of a submission also share one budget (``sandbox.py``).
    """

    name: str
    points: float
    visibility: str
    call: dict
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    expected: dict[str, np.ndarray] = field(default_factory=dict)
    expected_dtype: str | None = "float64"
    atol: float = ATOL_FLOAT64
    hint: str = ""
    timeout_s: float = 10.0
    check: Callable[[dict], tuple[bool, str]] | None = None
    diagnoses: list[tuple[dict[str, np.ndarray], str]] = field(default_factory=list)


def arg(name: str) -> dict:
    """A call's argument that names one of the case's arrays."""
    return {"array": name}
