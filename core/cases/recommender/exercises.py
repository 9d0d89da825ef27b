"""The checks behind the exercises of tutorial ch06_2 (the LM-based recommender, top-K
off-policy correction).

Each check calls the student's function on fresh inputs, compares it with the float64 oracle
(``core/reference/recommender.py``) through ``core/exercises.compare`` (the grader's
comparator), prints ``✓`` or ``✗`` and returns True or False; an exception in the student's
code is a ``✗``, never a crash. The student's function is called with NumPy arrays and may
compute in torch or tf inside: a tensor it returns is read back with ``to_numpy``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from duetrl.core.exercises import FRAMEWORK_TOLERANCE, compare
from duetrl.core.reference import recommender as oracle
from duetrl.core.tolerances import to_numpy


def _as_array(answer: Callable[..., object]) -> Callable[..., np.ndarray]:
    return lambda *args: np.asarray(to_numpy(answer(*args)), np.float64)


def _probabilities(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.uniform(0.001, 0.999, shape)


def check_top_k_multiplier(
    answer: Callable[[np.ndarray, int], object], seed: int | None = None
) -> bool:
    """Exercise 1: lambda_K(pi) = K (1 - pi)^(K - 1), elementwise, for K = 1, 2, 3, 8."""
    rng = np.random.default_rng(seed)
    cases = [(np.array([0.0, 0.5, 1.0]), k) for k in (1, 2, 3)]
    cases += [(_probabilities(rng, (4, 5)), k) for k in (1, 2, 8)]
    return compare(
        1,
        _as_array(answer),
        oracle.top_k_multiplier,
        cases,
        "the top-K multiplier",
        atol=FRAMEWORK_TOLERANCE,
        rtol=FRAMEWORK_TOLERANCE,
    )


def check_event_weights(
    answer: Callable[[np.ndarray, np.ndarray, float, int], object], seed: int | None = None
) -> bool:
    """Exercise 2: the top-K corrected weight f = lambda_K(pi) min(pi / beta, c)."""
    rng = np.random.default_rng(seed)
    cases = [
        (np.array([0.2, 0.5, 0.01]), np.array([0.1, 0.05, 0.5]), 10.0, 2),
        (np.array([0.2, 0.5, 0.01]), np.array([0.1, 0.05, 0.5]), 3.0, 2),
    ]
    cases += [
        (_probabilities(rng, (6,)), _probabilities(rng, (6,)), c, k)
        for c, k in ((1.5, 1), (5.0, 4), (100.0, 3))
    ]
    return compare(
        2,
        _as_array(answer),
        lambda pi, beta, c, k: oracle.event_weights(pi, beta, "top_k", c, k),
        cases,
        "the top-K corrected weight",
        atol=FRAMEWORK_TOLERANCE,
        rtol=FRAMEWORK_TOLERANCE,
    )


def check_snips(
    answer: Callable[[np.ndarray, np.ndarray], object], seed: int | None = None
) -> bool:
    """Exercise 3: SNIPS = sum_n w_n r_n / sum_n w_n."""
    rng = np.random.default_rng(seed)
    cases = [
        (np.array([1.0, 1.0]), np.array([0.0, 1.0])),
        (np.array([0.5, 3.0, 0.1]), np.array([1.0, 0.0, 1.0])),
    ]
    cases += [(rng.uniform(0, 5, n), (rng.random(n) < 0.3).astype(float)) for n in (10, 200)]
    return compare(
        3,
        lambda w, r: float(to_numpy(answer(w, r))),
        oracle.snips,
        cases,
        "SNIPS",
        atol=FRAMEWORK_TOLERANCE,
        rtol=FRAMEWORK_TOLERANCE,
    )


CHECKS = (check_top_k_multiplier, check_event_weights, check_snips)
"""The tutorial's ``check_exercise_1, check_exercise_2, check_exercise_3``."""
