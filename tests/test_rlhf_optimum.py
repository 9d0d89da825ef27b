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


# ---- hand cases from mutation testing (MUTATION.md) ----------------------------------------


def test_two_digits_one_pair_by_hand() -> None:
    """L = 2, beta = 1: one pair, theta = 1. Of the 100 answers 55 are sorted (weight e) and 45
    not (weight 1): E[r] = 55e / (55e + 45), Z = (55e + 45) / 100, KL = E[r] / beta - log Z;
    x_0 = a has 10 - a sorted successors: pi*(a) = ((10 - a) e + a) / (55e + 45)."""
    e = math.e
    optimum = sort_digits_optimum(1.0, length=2)
    assert optimum.mean_reward == pytest.approx(55 * e / (55 * e + 45), abs=1e-14)
    assert optimum.log_z == pytest.approx(math.log((55 * e + 45) / 100), abs=1e-14)
    assert optimum.kl == pytest.approx(optimum.mean_reward - optimum.log_z, abs=1e-14)
    a = np.arange(10)
    np.testing.assert_allclose(optimum.initial, ((10 - a) * e + a) / (55 * e + 45), rtol=1e-14)
    sorted_pair = np.where(a[None, :] >= a[:, None], e, 1.0)
    np.testing.assert_allclose(optimum.transitions[0],
                               sorted_pair / ((10 - a) * e + a)[:, None], rtol=1e-14)


def test_defaults_are_eight_digits_and_four_for_brute_force() -> None:
    """optimum_limits() is sort-digits' L = 8: beta -> 0 gives E[r] = 1 and KL = log(10^8 /
    C(17, 8)); brute force enumerates L = 4 by default."""
    limits = optimum_limits()
    assert limits["beta_to_zero"] == {"mean_reward": 1.0,
                                      "kl": pytest.approx(math.log(10**8 / 24310), abs=1e-12)}
    assert limits["beta_to_infinity"] == {"mean_reward": 0.55, "kl": 0.0}
    assert brute_force_optimum(0.3)["mean_reward"] == pytest.approx(
        sort_digits_optimum(0.3, length=4).mean_reward, abs=1e-12)


def test_a_small_sample_draws_every_digit() -> None:
    """Three answers of 8 digits from pi* at beta = 1e6 (uniform): 24 digits, not capped by the
    number of answers drawn."""
    answers = sort_digits_optimum(1e6).sample(3, np.random.default_rng(0))
    assert answers.shape == (3, 8) and answers.max() > 2 and answers.min() >= 0


def test_draw_never_returns_an_index_past_the_last() -> None:
    """Rounding can leave a row's cumulative sum a hair below 1, so a uniform u above it would
    count every entry: the draw stays at the last index. A row summing to 0.5: every u > 0.5
    draws index 1, never 2."""
    from duetrl.core.rlhf.optimum import _draw

    drawn = _draw(np.full((1000, 2), 0.25), np.random.default_rng(0))
    assert set(drawn.tolist()) == {0, 1} and (drawn == 1).mean() > 0.7
