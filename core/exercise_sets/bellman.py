"""The checks behind tutorial ch04_2_bellman_solved_iterated_learned (one lake, three ways).

Each check calls the student's function on fresh MDPs or batches and compares it with the
float64 oracle (:mod:`duetrl.core.reference.dynamic_programming`, :mod:`duetrl.core.reference.dqn`)
through :func:`duetrl.core.exercises.compare`, which prints ``✓`` or ``✗``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from duetrl.core.exercises import FRAMEWORK_TOLERANCE, compare
from duetrl.core.reference.dqn import init_q_params, q_forward, td_targets
from duetrl.core.reference.dynamic_programming import TabularMDP, q_from_v


def random_mdp(rng: np.random.Generator, states: int, actions: int) -> tuple[np.ndarray, ...]:
    """``(P, R)`` with P (S, A, S) of rows summing to less than 1 (the rest terminates)."""
    p = rng.random((states, actions, states + 1)) ** 3  # a few likely successors
    p = (p / p.sum(axis=2, keepdims=True))[:, :, :states]  # the last column: termination
    return p, rng.normal(size=(states, actions))


def _mdp_cases(seed: int | None, with_q: bool) -> list[tuple]:
    rng = np.random.default_rng(seed)
    cases = []
    for states, actions, gamma in ((1, 2, 0.9), (4, 3, 0.0), (6, 4, 0.9), (5, 2, 1.0)):
        p, r = random_mdp(rng, states, actions)
        table = rng.normal(size=(states, actions) if with_q else states)
        cases.append((p, r, table, gamma))
    return cases


def check_bellman_optimality_backup(answer: Callable, seed: int | None = None) -> bool:
    """Exercise 1: one sweep of value iteration, V'(s) = max_a (R[s, a] + gamma P[s, a] . V)."""
    return compare(
        1,
        answer,
        lambda p, r, v, gamma: q_from_v(TabularMDP(p, r), v, gamma).max(axis=1),
        _mdp_cases(seed, with_q=False),
        "one sweep of value iteration",
    )


def check_expected_sarsa_backup(answer: Callable, seed: int | None = None) -> bool:
    """Exercise 2: Q'(s, a) = R + gamma P ((1 - eps) max_a' Q + eps mean_a' Q), eps-greedy's
    expected next value: the operator whose fixed point ``epsilon_greedy_q`` returns."""
    cases = [
        (p, r, q, gamma, eps)
        for (p, r, q, gamma), eps in zip(_mdp_cases(seed, with_q=True), (0.5, 0.1, 0.0, 1.0))
    ]

    def reference(p, r, q, gamma, eps):
        return q_from_v(TabularMDP(p, r), (1 - eps) * q.max(axis=1) + eps * q.mean(axis=1), gamma)

    return compare(2, answer, reference, cases, "the expected-SARSA backup")


def check_dqn_targets(answer: Callable, seed: int | None = None) -> bool:
    """Exercise 3: y = r + gamma^n (1 - term) Q_target(s', a*), a* = argmax_a of Q_online(s', .)
    when ``double``, of Q_target(s', .) otherwise; a torch or tf answer, float32 tolerance.

    The Q-values come from two different random networks of the reference DQN, and the expected
    targets from its ``td_targets``.
    """
    rng = np.random.default_rng(seed)
    cases, expected = [], {}  # expected: the oracle's targets, by the case's rewards array
    for batch_size, double in ((6, False), (6, True), (32, False), (32, True)):
        params = init_q_params(4, 16, 3, int(rng.integers(2**31)))
        other = init_q_params(4, 16, 3, int(rng.integers(2**31)))  # the target lags the online
        params.update({k: v for k, v in other.items() if k.startswith("q_target.")})
        batch = {
            "next_states": rng.normal(size=(batch_size, 4)),
            "rewards": rng.normal(size=batch_size),
            "discounts": rng.choice([0.9, 0.9**3], size=batch_size),  # gamma^n, n = 1 or 3
            "terminations": rng.random(batch_size) < 0.3,
        }
        batch["terminations"][0] = True  # every batch has an end to stop at
        q_next_online = q_forward(params, "q", batch["next_states"])[0]
        q_next_target = q_forward(params, "q_target", batch["next_states"])[0]
        expected[id(batch["rewards"])] = td_targets(params, batch, double)
        cases.append(
            (
                batch["rewards"],
                batch["discounts"],
                batch["terminations"],
                q_next_online,
                q_next_target,
                double,
            )
        )
    return compare(
        3,
        answer,
        lambda rewards, *rest: expected[id(rewards)],
        cases,
        "the TD targets",
        FRAMEWORK_TOLERANCE,
        FRAMEWORK_TOLERANCE,
    )


CHECKS = (check_bellman_optimality_backup, check_expected_sarsa_backup, check_dqn_targets)
"""The tutorial's ``check_exercise_1, check_exercise_2, check_exercise_3``."""
