"""The checks behind tutorial ch02_2 (exploration with bandits).

Each check calls the student's function on fresh inputs, compares it with the float64 rule of
:mod:`duetrl.core.bandits` (or a fact the check computes itself) and prints ``✓`` or ``✗``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from duetrl.core.bandits import BernoulliBandit, lai_robbins_constant
from duetrl.core.exercises import FRAMEWORK_TOLERANCE, compare
from duetrl.core.reference.attention import softmax


def _estimates(rng: np.random.Generator, runs: int, arms: int) -> np.ndarray:
    """Mean-reward estimates Q (runs, arms) without ties (a tie would make argmax ambiguous)."""
    return rng.permutation(arms * runs).reshape(runs, arms) / (arms * runs) + 0.01 * rng.random(
        (runs, arms)
    ) / (arms * runs)


def reference_eps_greedy_probabilities(values: np.ndarray, epsilon: float) -> np.ndarray:
    """pi(a) = eps / K + (1 - eps) [a = argmax_b Q_b], row by row."""
    arms = values.shape[-1]
    greedy = np.eye(arms)[np.argmax(values, axis=-1)]
    return epsilon / arms + (1.0 - epsilon) * greedy


def check_eps_greedy_probabilities(answer: Callable, seed: int | None = None) -> bool:
    """Exercise 1: the probability that epsilon-greedy pulls each arm, from estimates Q (R, K)."""
    rng = np.random.default_rng(seed)
    cases = [
        (_estimates(rng, r, k), eps)
        for r, k, eps in ((1, 2, 0.1), (4, 5, 0.1), (3, 3, 0.0), (2, 6, 1.0), (5, 4, 0.37))
    ]
    return compare(
        1,
        answer,
        reference_eps_greedy_probabilities,
        cases,
        "epsilon-greedy's action probabilities",
    )


def check_lai_robbins_constant(answer: Callable, seed: int | None = None) -> bool:
    """Exercise 2: c = sum_{a: Delta_a > 0} Delta_a / KL(mu_a, mu*) of Bernoulli arms."""
    rng = np.random.default_rng(seed)
    cases = [
        (np.array([0.9, 0.8]),),
        (np.array([0.5, 0.5, 0.2]),),  # a tie for the best
        (np.array([0.9, 0.8, 0.6, 0.4, 0.2]),),
    ]
    cases += [(rng.uniform(0.05, 0.95, size=k),) for k in (3, 7)]
    return compare(
        2,
        lambda means: float(answer(means)),
        lambda means: lai_robbins_constant(BernoulliBandit(means)),
        cases,
        "the Lai-Robbins constant",
    )


def check_softmax_policy(answer: Callable, seed: int | None = None) -> bool:
    """Exercise 3: Boltzmann exploration's pi(a) = softmax(Q / tau)_a, rows of Q (R, K).

    The answer may be a torch or tf tensor (float32): the tolerance is the float32 one. A small
    tau makes Q / tau large (100 here): exp overflows float32 unless the largest is subtracted.
    """
    rng = np.random.default_rng(seed)
    cases = [
        (_estimates(rng, r, k), tau)
        for r, k, tau in ((1, 3, 1.0), (4, 5, 0.1), (3, 4, 0.01), (2, 2, 10.0))
    ]
    return compare(
        3,
        answer,
        lambda q, tau: softmax(q / tau),
        cases,
        "softmax exploration's probabilities",
        FRAMEWORK_TOLERANCE,
        FRAMEWORK_TOLERANCE,
    )


CHECKS = (check_eps_greedy_probabilities, check_lai_robbins_constant, check_softmax_policy)
"""The tutorial's ``check_exercise_1, check_exercise_2, check_exercise_3``."""
