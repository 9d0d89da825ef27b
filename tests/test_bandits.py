"""Bandits (outline 2.2.3): sub-linear regret for UCB1 and Thompson, the Lai-Robbins bound by
hand, common random numbers, and bad input named clearly."""

from __future__ import annotations

import math

import numpy as np
import pytest

from duetrl.core.bandits import (
    UCB1,
    BernoulliBandit,
    DecayingEpsilonGreedy,
    EpsilonGreedy,
    GaussianBandit,
    Softmax,
    ThompsonSampling,
    default_policies,
    lai_robbins_bound,
    lai_robbins_constant,
    plot_regret,
    run_experiment,
    run_policy,
)

BANDIT = BernoulliBandit([0.9, 0.6, 0.3])


@pytest.fixture(scope="module")
def results():
    policies = {"eps": EpsilonGreedy(0.1), "ucb": UCB1(), "thompson": ThompsonSampling()}
    return {T: run_experiment(BANDIT, policies, horizon=T, num_runs=200, seed=0)
            for T in (500, 2000)}


def test_ucb_and_thompson_regret_is_sublinear_and_beats_fixed_epsilon(results) -> None:
    for name in ("ucb", "thompson"):
        short, long = results[500][name].mean[-1] / 500, results[2000][name].mean[-1] / 2000
        assert long < 0.7 * short, f"{name}: R(T)/T {short:.4f} -> {long:.4f} is not shrinking"
        assert long < 0.03, name
        # beats fixed epsilon-greedy at T = 2000, beyond the confidence bands
        assert results[2000][name].high[-1] < results[2000]["eps"].low[-1], name
    # fixed epsilon-greedy is linear: eps * mean gap per step, at least
    eps_floor = 0.1 * BANDIT.gaps.mean()
    assert results[2000]["eps"].mean[-1] / 2000 > 0.8 * eps_floor
    # Thompson sits near the Lai-Robbins line (which is only asymptotic: within a factor 3)
    assert results[2000]["thompson"].mean[-1] < 3 * lai_robbins_bound(BANDIT, 2000)


def test_lai_robbins_constant_by_hand() -> None:
    bandit = BernoulliBandit([0.9, 0.8])
    kl = 0.8 * math.log(0.8 / 0.9) + 0.2 * math.log(0.2 / 0.1)  # KL(Ber(0.8) || Ber(0.9))
    assert lai_robbins_constant(bandit) == pytest.approx(0.1 / kl, rel=1e-12)
    assert 0.1 / kl == pytest.approx(2.2520997, rel=1e-7)
    assert lai_robbins_bound(bandit, math.e) == pytest.approx(0.1 / kl)
    gaussian = GaussianBandit([1.0, 0.5, 0.0], std=2.0)  # sum 2 sigma^2 / Delta
    assert lai_robbins_constant(gaussian) == pytest.approx(8 / 0.5 + 8 / 1.0)
    assert lai_robbins_constant(BernoulliBandit([1.0, 0.5])) == 0.0


def test_every_policy_runs_on_both_kinds_and_same_seed_repeats() -> None:
    for bandit in (BANDIT, GaussianBandit([0.5, 0.0, -0.5])):
        for name, policy in default_policies(bandit.kind, bandit.std).items():
            a = run_policy(bandit, policy, horizon=50, num_runs=4, seed=3)
            b = run_policy(bandit, policy, horizon=50, num_runs=4, seed=3)
            np.testing.assert_array_equal(a.final, b.final, err_msg=name)
            assert np.all(np.diff(a.mean) >= 0) and np.all(a.low <= a.high)
    curve = run_policy(BANDIT, DecayingEpsilonGreedy(1.0), 2000, 100, seed=0)
    assert curve.optimal_fraction[-200:].mean() > 0.9
    greedy = run_policy(BANDIT, Softmax(0.01), 200, 10, seed=0)
    assert greedy.final.shape == (10,)


def test_plot_saves_a_picture(tmp_path) -> None:
    results = run_experiment(BANDIT, {"ucb": UCB1()}, horizon=50, num_runs=5)
    assert plot_regret(results, BANDIT, tmp_path / "regret.png").stat().st_size > 0


@pytest.mark.parametrize("make, message", [
    (lambda: EpsilonGreedy(1.5), r"epsilon: expected a number in \[0, 1\], got 1.5"),
    (lambda: EpsilonGreedy(-0.1), r"epsilon: expected a number in \[0, 1\], got -0.1"),
    (lambda: BernoulliBandit([0.5]), r"means: expected k >= 2 arm means"),
    (lambda: BernoulliBandit([0.5, 1.2]), r"means: a Bernoulli arm's mean is a probability"),
    (lambda: GaussianBandit([0.0, 1.0], std=0.0), r"std: expected a positive number, got 0.0"),
    (lambda: Softmax(0), r"temperature: expected a positive number, got 0"),
    (lambda: UCB1(-1), r"c: expected a positive number, got -1"),
    (lambda: run_policy(BANDIT, UCB1(), 0, 10), r"horizon: expected a positive int, got 0"),
    (lambda: run_policy(BANDIT, UCB1(), 10, 1), r"num_runs: expected an int >= 2"),
])
def test_bad_input_is_named(make, message) -> None:
    with pytest.raises(ValueError, match=message):
        make()
