"""The checks behind the exercises of tutorial ch06_3 (question answering, verifiable rewards).

Each check calls the student's function on fresh inputs, compares it with the float64 oracle
(``core/reference/qa_rewards.py``, ``core/reference/rlhf_advantages.py``) or with a formula the
check computes itself, prints ``✓`` or ``✗`` with what was expected (``core/exercises.compare``,
the grader's comparator) and returns True or False; an exception in the student's code is a
``✗``, never a crash. NumPy only: the student's function may compute in torch or tf inside,
it is called with NumPy arrays and its result is read back with ``np.asarray``.
"""

from __future__ import annotations

from collections.abc import Callable
from math import comb

import numpy as np

from duetrl.core.exercises import compare
from duetrl.core.reference import qa_rewards as oracle
from duetrl.core.reference.rlhf_advantages import group_advantages

FORMAT_CASES = [
    "<t>7+5=12 2+4+1=7</t><a>72</a>\n", "<t></t><a>72</a>\n", "<t>x</t><a>72</a> so 72\n",
    "<t>x</t><a>72</a>", "<t>x</t><a></a>\n", "<a>72</a>\n", "<t>x</t></t><a>72</a>\n",
    "<t>x<a>72</a></t><a>72</a>\n", "<t>x</t><a>72</a>\n\n", "\n", "",
]
"""Completions every format reward must score right (the tests' edge cases, and a few more)."""


def _random_completions(seed: int | None, n: int = 300) -> list[str]:
    rng = np.random.default_rng(seed)
    pieces = ["<t>", "</t>", "<a>", "</a>", "72", "7+5=12", "x", " ", "<", ">", "\n"]
    return ["".join(rng.choice(pieces, size=rng.integers(0, 8))) for _ in range(n)]


def check_format_reward(answer: Callable[[str], float], seed: int | None = None) -> bool:
    """Exercise 1: r_format(c) = 1 for ``<t>R</t><a>Y</a>`` + the stop ``"\\n"``, R and Y free
    of ``<`` and ``>``, Y non-empty, nothing after the stop; 0 otherwise."""
    cases = [(c,) for c in FORMAT_CASES + _random_completions(seed)]
    return compare(1, lambda c: float(answer(c)), oracle.format_reward, cases,
                   "the format reward", atol=0.0, rtol=0.0)


def check_group_advantages(answer: Callable[[np.ndarray, int], object],
                           seed: int | None = None) -> bool:
    """Exercise 2: GRPO's A_i = (r_i - mean_g r) / (std_g r + 1e-4), std unbiased, rewards
    laid out prompt-major ``(prompts * k,)``; the student's may return a torch or tf tensor."""
    rng = np.random.default_rng(seed)
    cases = [(np.array([1.0, 0, 0, 1, 0, 0, 0, 0]), 8), (np.array([1.5, 1.5, 0.5, 0.5]), 2),
             (np.array([0.5, 0.5, 0.5, 1.5, 1.5, 1.5]), 3)]  # a group of ties: zeros, no NaN
    cases += [(rng.choice([0.0, 0.5, 1.0, 1.5], size=p * k), k) for p, k in ((4, 8), (3, 4))]

    def student(rewards: np.ndarray, k: int) -> np.ndarray:
        value = answer(rewards, k)
        value = value.numpy() if hasattr(value, "numpy") else value  # a torch or tf tensor
        return np.asarray(value, dtype=np.float64)
    return compare(2, student, group_advantages, cases, "the group-relative advantages",
                   atol=1e-5, rtol=1e-5)  # float32 in the frameworks


def check_pass_at_k(answer: Callable[[int, int, int], float]) -> bool:
    """Exercise 3: the unbiased pass@k of n samples of which c are right (Chen et al. 2021),
    pass@k = 1 - C(n - c, k) / C(n, k)."""
    cases = [(n, c, k) for n, c, k in ((8, 0, 1), (8, 3, 1), (8, 3, 2), (8, 3, 6), (8, 8, 4),
                                       (20, 1, 10), (4, 2, 4))]
    return compare(3, lambda n, c, k: float(answer(n, c, k)),
                   lambda n, c, k: 1.0 - comb(n - c, k) / comb(n, k), cases, "pass@k")


CHECKS = (check_format_reward, check_group_advantages, check_pass_at_k)
"""The tutorial's ``check_exercise_1, check_exercise_2, check_exercise_3``."""
