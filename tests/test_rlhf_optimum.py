"""The exact optimum of E[r] - beta KL on sort-digits: transfer matrix vs brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest

from duetrl.core.rlhf.optimum import (
    brute_force_optimum,
    optimum_limits,
    sort_digits_optimum,
)
from duetrl.core.rlhf.tasks import sorted_pairs_fraction


@pytest.mark.parametrize("beta", [0.02, 0.05, 0.1, 0.3, 1.0, 10.0])
def test_transfer_matrix_equals_brute_force_at_length_4(beta: float) -> None:
    exact = sort_digits_optimum(beta, length=4)
    brute = brute_force_optimum(beta, length=4)  # all 10^4 answers enumerated
    assert exact.mean_reward == pytest.approx(brute["mean_reward"], abs=1e-10)
    assert exact.kl == pytest.approx(brute["kl"], abs=1e-10)
    assert exact.log_z == pytest.approx(brute["log_z"], abs=1e-10)
    assert exact.objective == pytest.approx(beta * brute["log_z"], abs=1e-10)  # J = beta log Z


def test_brute_force_uses_the_task_reward() -> None:
    reward = lambda y: sorted_pairs_fraction("".join(map(str, y)), length=len(y))  # noqa: E731
    brute = brute_force_optimum(0.1, length=3, reward=reward)
    assert brute["mean_reward"] == pytest.approx(sort_digits_optimum(0.1, 3).mean_reward, abs=1e-12)


def test_both_beta_limits() -> None:
    limits = optimum_limits(length=8)
    large = sort_digits_optimum(1e6)  # beta -> infinity: pi* = pi_ref
    assert large.mean_reward == pytest.approx(0.55, abs=1e-6)
    assert large.kl == pytest.approx(0.0, abs=1e-9)
    assert limits["beta_to_infinity"] == {"mean_reward": 0.55, "kl": 0.0}
    small = sort_digits_optimum(1e-3)  # beta -> 0: uniform over the sorted answers
    expected_kl = math.log(10**8 / math.comb(17, 8))  # C(17, 8) = 24310 sorted answers
    assert limits["beta_to_zero"]["kl"] == pytest.approx(expected_kl, abs=1e-12)
    assert small.mean_reward == pytest.approx(1.0, abs=1e-9)
    assert small.kl == pytest.approx(expected_kl, abs=1e-6)
    # and brute force agrees at length 4 near both ends
    assert brute_force_optimum(1e-3, 4)["kl"] == pytest.approx(
        optimum_limits(length=4)["beta_to_zero"]["kl"], abs=1e-6)
    assert brute_force_optimum(1e6, 4)["mean_reward"] == pytest.approx(0.55, abs=1e-6)


def test_reward_rises_and_kl_falls_with_beta() -> None:
    betas = [0.03, 0.05, 0.1, 0.2, 0.5]
    optima = [sort_digits_optimum(b) for b in betas]
    assert all(a.mean_reward > b.mean_reward for a, b in zip(optima, optima[1:]))
    assert all(a.kl > b.kl for a, b in zip(optima, optima[1:]))


def test_the_chain_samples_pi_star() -> None:
    optimum = sort_digits_optimum(0.1)
    assert np.allclose(optimum.transitions.sum(axis=2), 1.0)
    assert optimum.initial.sum() == pytest.approx(1.0)
    answers = optimum.sample(100_000, np.random.default_rng(0))
    rewards = (answers[:, 1:] >= answers[:, :-1]).mean(axis=1)
    assert rewards.mean() == pytest.approx(optimum.mean_reward, abs=0.003)


def test_bad_beta_is_named() -> None:
    for beta in (0.0, -0.1, float("inf")):
        with pytest.raises(ValueError, match="beta: expected a positive finite float"):
            sort_digits_optimum(beta)
    with pytest.raises(ValueError, match="length: expected at least 2"):
        sort_digits_optimum(0.1, length=1)
