"""The checks behind tutorial ch07_2 (RLlib beside duetrl).

The three joints where two libraries meet: a loss coefficient whose loss is written
differently, a weight layout (canonical ``(in, out)`` kernels, torch's ``(out, in)``), and the
statistic both learning curves are drawn with. Each check compares with duetrl's own code or
with the equation it states, and prints ``✓`` or ``✗``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from duetrl.core.exercises import FRAMEWORK_TOLERANCE, compare
from duetrl.core.scale.rllib import learning_curve


def check_value_loss_coefficient(answer: Callable[[float], float], seed: int | None = None) -> bool:
    """Exercise 1: RLlib's ``vf_loss_coeff`` c' with c' (V - R)^2 = c_V (1/2) (V - R)^2, duetrl's
    value loss, on random values and returns (so the two gradients are equal too)."""
    rng = np.random.default_rng(seed)
    values, returns = rng.normal(size=64), rng.normal(size=64)
    squared = float(np.mean((values - returns) ** 2))
    return compare(
        1,
        lambda c: float(answer(c)) * squared,
        lambda c: c * 0.5 * squared,
        [(0.5,), (1.0,), (0.25,), (2.0,)],
        "RLlib's value loss with your coefficient",
    )


def check_dense_from_canonical(answer: Callable, seed: int | None = None) -> bool:
    """Exercise 2: y = x W + b through a torch ``nn.Linear`` or a Keras ``Dense`` loaded from a
    canonical kernel W ``(in, out)`` and bias b ``(out,)``; the answer takes ``(W, b, x)``.

    A square kernel is among the cases: a missing transpose keeps the shapes and changes
    the values.
    """
    rng = np.random.default_rng(seed)
    cases = [
        (rng.normal(size=(n_in, n_out)), rng.normal(size=n_out), rng.normal(size=(5, n_in)))
        for n_in, n_out in ((4, 4), (4, 16), (16, 2))
    ]
    return compare(
        2,
        answer,
        lambda w, b, x: x @ w + b,
        cases,
        "the layer's output",
        FRAMEWORK_TOLERANCE,
        FRAMEWORK_TOLERANCE,
    )


def check_last_100_mean(answer: Callable, seed: int | None = None) -> bool:
    """Exercise 3: after each finished episode, the mean return of the last 100 episodes (all
    of them while fewer than 100 have finished), as ``rllib.learning_curve`` draws it."""
    rng = np.random.default_rng(seed)
    cases = [(rng.uniform(0, 500, size=n).round(),) for n in (1, 7, 100, 101, 250)]
    return compare(
        3,
        answer,
        lambda r: learning_curve(enumerate(r), 100)[1],
        cases,
        "the mean of the last 100 returns",
    )


CHECKS = (check_value_loss_coefficient, check_dense_from_canonical, check_last_100_mean)
"""The tutorial's ``check_exercise_1, check_exercise_2, check_exercise_3``."""
