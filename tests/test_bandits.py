"""Bandits (outline 2.2.3): sub-linear regret for UCB1 and Thompson, the Lai-Robbins bound by
hand, common random numbers, and bad input named clearly."""

from __future__ import annotations

import inspect
import math
import warnings

import numpy as np
import pytest

from duetrl.core import bandits
from duetrl.core.bandits import (
    UCB1,
    Bandit,
    BernoulliBandit,
    DecayingEpsilonGreedy,
    EpsilonGreedy,
    GaussianBandit,
    Softmax,
    ThompsonSampling,
    default_policies,
    kl_divergence,
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
    (lambda: GaussianBandit([0.5, float("nan")]), r"means: expected finite numbers"),
    (lambda: BernoulliBandit([-0.5, 0.5]), r"means: a Bernoulli arm's mean is a probability"),
    (lambda: Bandit(np.array([0.5, 0.2]), "poisson"), r"kind: expected 'bernoulli' or 'gaussian'"),
    (lambda: GaussianBandit([0.0, 1.0], std=0.0), r"std: expected a positive number, got 0.0"),
    (lambda: Softmax(0), r"temperature: expected a positive number, got 0"),
    (lambda: UCB1(-1), r"c: expected a positive number, got -1"),
    (lambda: run_policy(BANDIT, UCB1(), 0, 10), r"horizon: expected a positive int, got 0"),
    (lambda: run_policy(BANDIT, UCB1(), 10, 1), r"num_runs: expected an int >= 2"),
])
def test_bad_input_is_named(make, message) -> None:
    with pytest.raises(ValueError, match=message):
        make()


# ---- hand cases: each rule's index at its boundary, with the randomness scripted ------------
class Scripted:
    """A stand-in for np.random.Generator that returns given draws and records what it was
    asked (so an index can be read before its argmax)."""

    def __init__(self, **draws) -> None:
        self.draws, self.asked = draws, {}

    def _give(self, name, *args, size=None):
        self.asked[name] = args if args else size
        value = self.draws[name]
        return np.array(value(*args) if callable(value) else value, dtype=float)

    def random(self, size=None):
        return self._give("random", size=size)

    def integers(self, low, high, size=None):
        return self._give("integers", size=size).astype(np.int64)

    def beta(self, a, b):
        return self._give("beta", a, b)

    def standard_normal(self, size=None):
        return self._give("standard_normal", size=size)

    def gumbel(self, size=None):
        return self._give("gumbel", size=size)


def _policy(policy, counts, values, bandit=BANDIT):
    policy.reset(*np.shape(counts), bandit)
    policy.counts, policy.values = np.array(counts, float), np.array(values, float)
    return policy


def test_ucb1_index_by_hand(monkeypatch) -> None:
    """Q_a + c sqrt(2 ln t / N_a) at t = 8 (ln 8 = 3 ln 2); an untried arm comes first (1e300)."""
    seen = {}
    monkeypatch.setattr(bandits, "_argmax_random_ties",
                        lambda scores, rng: seen.setdefault("scores", scores).argmax(-1))
    policy = _policy(UCB1(c=0.5), [[4, 1, 2], [0, 3, 5]], [[0.5, 0.25, 1.0], [0.0, 0.5, 0.75]])
    chosen = policy.select(8, None)
    bonus = 0.5 * np.sqrt(2 * 3 * math.log(2) / np.array([[4, 1, 2], [1, 3, 5]]))
    expected = np.array([[0.5, 0.25, 1.0], [1e300, 0.5, 0.75]]) + np.where(
        [[True] * 3, [False, True, True]], bonus, 0.0)
    np.testing.assert_allclose(seen["scores"], expected, rtol=1e-15)
    assert chosen.tolist() == [2, 0]  # 1.0 + 0.5 sqrt(3 ln 2) = 1.72; the untried arm
    seen.clear()
    policy.select(1, None)  # t = 1: ln 1 = 0, no bonus at all
    np.testing.assert_array_equal(seen["scores"][0], [0.5, 0.25, 1.0])


def test_argmax_breaks_ties_uniformly_and_never_overrules_a_real_gap() -> None:
    rng = np.random.default_rng(0)
    picks = bandits._argmax_random_ties(np.zeros((4000, 3)), rng)
    np.testing.assert_allclose(np.bincount(picks) / 4000, [1 / 3] * 3, atol=0.03)
    close = np.tile([0.0, 1e-8, 0.0], (100, 1))  # a gap 10x the jitter still decides
    assert np.all(bandits._argmax_random_ties(close, rng) == 1)


def test_thompson_posteriors_by_hand() -> None:
    """Bernoulli: Beta(1 + S, 1 + F); Gaussian: N(S / (N + 1), sigma^2 / (N + 1))."""
    rng = Scripted(beta=[[0.2, 0.9, 0.5]])
    policy = _policy(ThompsonSampling(), [[4, 0, 2]], [[0.75, 0.0, 0.5]])
    assert policy.select(7, rng).tolist() == [1]
    a, b = rng.asked["beta"]
    np.testing.assert_array_equal(a, [[4.0, 1.0, 2.0]])  # 1 + 3 successes, 1 + 0, 1 + 1
    np.testing.assert_array_equal(b, [[2.0, 1.0, 2.0]])  # 1 + 1 failure, 1 + 0, 1 + 1
    gaussian = GaussianBandit([0.0, 1.0], std=2.0)
    rng = Scripted(standard_normal=[[1.0, -1.0]])
    policy = _policy(ThompsonSampling(), [[3, 1]], [[2.0, 4.0]], gaussian)
    # means 6/4 = 1.5 and 4/2 = 2; draws 1.5 + 2/2 = 2.5 and 2 - 2/sqrt(2) = 0.586
    assert policy.select(5, rng).tolist() == [0]
    rng = Scripted(standard_normal=[[-1.0, 0.0]])
    assert policy.select(5, rng).tolist() == [1]  # 1.5 - 1 = 0.5 < 2
    assert rng.asked["standard_normal"] == (1, 2)
    # no noise: the posterior means S / (N + 1) alone decide. 1.0 / 2 = 0.5 beats 1.9 / 4 =
    # 0.475 (a prior counted twice, S / (N + 2), would say 0.33 < 0.38)
    shrunk = _policy(ThompsonSampling(), [[1, 3]], [[1.0, 1.9 / 3]], gaussian)
    assert shrunk.select(5, Scripted(standard_normal=[[0.0, 0.0]])).tolist() == [0]
    # the spread sigma / sqrt(N + 1) shrinks with pulls: arm 1 (N = 3, mean 0.75 / 4) drawn
    # at z = -0.1 is 0.1875 - 2 / 2 x 0.1 = 0.0875, still above arm 0's 0 + 2 x 0
    narrowing = _policy(ThompsonSampling(), [[0, 3]], [[0.0, 0.25]], gaussian)
    assert narrowing.select(5, Scripted(standard_normal=[[0.0, -0.1]])).tolist() == [1]
    # z = 0.1 at N = 3: 0.1875 + 1 x 0.1 = 0.2875 beats arm 0's 2 x 0.141 = 0.282 (a spread
    # of 2 / sqrt(5) would give 0.2769 and lose)
    assert narrowing.select(5, Scripted(standard_normal=[[0.141, 0.1]])).tolist() == [1]


def test_epsilon_greedy_coin_at_the_exact_epsilon_and_the_decay() -> None:
    """explore when u < eps: u = eps exactly is a greedy step."""
    rng = Scripted(random=[0.0999, 0.1, 0.5], integers=[2, 2, 2])
    policy = _policy(EpsilonGreedy(0.1), [[1, 1, 1]] * 3, [[0.0, 1.0, 0.5]] * 3)
    assert policy.select(3, rng).tolist() == [2, 1, 1]  # explored, greedy, greedy
    decay = _policy(DecayingEpsilonGreedy(c=2.0), [[1, 1, 1]], [[0.0, 1.0, 0.5]])
    assert [decay.current_epsilon(t) for t in (1, 6, 12, 24)] == [1.0, 1.0, 0.5, 0.25]


def test_softmax_divides_by_the_temperature() -> None:
    """argmax(Q / tau + g): Q = [0.5, 0.3], tau = 0.1 gives [5, 3]; a gumbel gap of 1.9 is not
    enough to overturn it, 2.1 is."""
    policy = _policy(Softmax(0.1), [[1, 1], [1, 1]], [[0.5, 0.3], [0.5, 0.3]])
    assert policy.select(2, Scripted(gumbel=[[0.0, 1.9], [0.0, 2.1]])).tolist() == [0, 1]


def test_incremental_mean_update_by_hand() -> None:
    policy = _policy(EpsilonGreedy(0.0), [[0, 0], [0, 0]], [[0.0, 0.0], [0.0, 0.0]])
    for actions, rewards in (([0, 1], [1.0, 4.0]), ([0, 1], [0.0, 2.0]), ([0, 0], [0.5, 3.0])):
        policy.update(np.array(actions), np.array(rewards))
    np.testing.assert_array_equal(policy.counts, [[3, 0], [1, 2]])
    np.testing.assert_array_equal(policy.values, [[0.5, 0.0], [3.0, 3.0]])


def test_bernoulli_kl_at_the_edges() -> None:
    """KL(Ber(0) || Ber(q)) = ln(1 / (1 - q)), KL(Ber(1) || Ber(q)) = ln(1 / q), computed
    without a warning (0 log 0 is 0 here, not 0 x -inf); Gaussian (p - q)^2 / (2 sigma^2)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kl_divergence(BANDIT, np.array([0.0, 1.0]), 0.75)
    narrow = GaussianBandit([1.0, 0.0], std=0.5)
    assert kl_divergence(narrow, np.array([0.0, 1.0]), 1.0).tolist() == [2.0, 0.0]
    np.testing.assert_allclose(kl_divergence(BANDIT, np.array([0.0, 1.0, 0.5]), 0.75),
                               [math.log(4.0), math.log(4 / 3),
                                0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)],
                               rtol=1e-15)


class FixedArms(bandits.BanditPolicy):
    """Run r always pulls arm ``arms[r]``: the regret is known exactly."""

    def __init__(self, arms) -> None:
        self.arms = np.array(arms)

    def select(self, t, rng):
        return self.arms


def test_regret_band_and_optimal_fraction_by_hand() -> None:
    """Runs pulling arms 0, 1, 2 of means [0.9, 0.6, 0.3]: R(t) = [0, 0.3 t, 0.6 t], mean 0.3 t,
    sample std 0.3 t (ddof 1), band 1.96 x 0.3 t / sqrt(3); a third of the runs is optimal."""
    curve = run_policy(BANDIT, FixedArms([0, 1, 2]), horizon=4, num_runs=3, seed=0)
    t = np.arange(1, 5)
    np.testing.assert_allclose(curve.mean, 0.3 * t, rtol=1e-12)
    np.testing.assert_allclose(curve.high - curve.mean, 1.96 * 0.3 * t / math.sqrt(3),
                               rtol=1e-12)
    np.testing.assert_allclose(curve.mean - curve.low, 1.96 * 0.3 * t / math.sqrt(3),
                               rtol=1e-12)
    np.testing.assert_allclose(curve.final, [0.0, 1.2, 2.4], rtol=1e-12)
    np.testing.assert_allclose(curve.optimal_fraction, [1 / 3] * 4, rtol=1e-15)


def test_edges_of_the_checks_and_the_defaults_are_accepted() -> None:
    """The closed ends of [0, 1] are rates too; a bandit's means are float64 whatever came in;
    sigma defaults to 1."""
    assert EpsilonGreedy(1.0).epsilon == 1.0 and EpsilonGreedy(0).epsilon == 0.0
    assert BernoulliBandit([0, 1]).means.tolist() == [0.0, 1.0]
    gaussian = Bandit(np.array([1, 0]), "gaussian")
    assert gaussian.std == 1.0 and gaussian.means.dtype == np.float64
    assert gaussian.gaps.tolist() == [0.0, 1.0] and gaussian.num_arms == 2


def test_rewards_by_hand_with_scripted_noise() -> None:
    """Bernoulli 1[u < mu_a] (u = mu_a exactly pays 0); Gaussian mu_a + sigma z."""
    bernoulli = BernoulliBandit([0.25, 0.75])
    draws = Scripted(random=[0.25, 0.2, 0.75, 0.7])
    assert bernoulli.rewards(np.array([0, 0, 1, 1]), draws).tolist() == [0.0, 1.0, 0.0, 1.0]
    gaussian = GaussianBandit([1.0, -1.0], std=2.0)
    draws = Scripted(standard_normal=[0.5, -0.25])
    assert gaussian.rewards(np.array([0, 1]), draws).tolist() == [2.0, -1.5]
    assert GaussianBandit([0.0, 1.0]).std == 1.0


def test_exploration_is_uniform_over_the_arms_and_the_defaults_are_the_chapters() -> None:
    """eps = 1 draws every arm with probability 1/K, never an index outside [0, K)."""
    policy = _policy(EpsilonGreedy(1.0), [[1, 1, 1]] * 6000, [[0.0, 1.0, 0.5]] * 6000)
    arms = policy.select(5, np.random.default_rng(0))
    assert arms.min() >= 0 and arms.max() <= 2
    np.testing.assert_allclose(np.bincount(arms) / 6000, [1 / 3] * 3, atol=0.025)  # 4 sigma
    boltzmann = _policy(Softmax(1.0), [[1, 1]] * 6000, [[0.0, math.log(2.0)]] * 6000)
    arms = boltzmann.select(5, np.random.default_rng(1))  # softmax: 1/3, 2/3, one noise each
    np.testing.assert_allclose(np.bincount(arms) / 6000, [1 / 3, 2 / 3], atol=0.025)
    defaults = inspect.signature(run_experiment).parameters
    assert [defaults[k].default for k in ("horizon", "num_runs", "seed")] == [2000, 200, 0]
    assert (EpsilonGreedy().epsilon, DecayingEpsilonGreedy().c, UCB1().c,
            Softmax().temperature) == (0.1, 1.0, 1.0, 0.1)


def test_one_step_horizon_and_the_default_seed() -> None:
    one = run_policy(BANDIT, FixedArms([1, 2]), horizon=1, num_runs=2)
    np.testing.assert_allclose(one.final, [0.3, 0.6], rtol=1e-12)
    a = run_policy(BANDIT, UCB1(), horizon=30, num_runs=3)
    b = run_policy(BANDIT, UCB1(), horizon=30, num_runs=3, seed=0)
    np.testing.assert_array_equal(a.final, b.final)
    assert run_experiment(BANDIT, {"ucb": UCB1()}, horizon=30, num_runs=3)["ucb"].final \
        .tolist() == b.final.tolist()


def test_reward_noise_is_its_own_stream_seed_0_and_the_policys_is_seed_1() -> None:
    """run_policy's docstring: rewards from default_rng([seed, 0]), coins from [seed, 1]."""

    class Recording(FixedArms):
        def select(self, t, rng):
            self.coins = getattr(self, "coins", []) + [rng.random()]
            return self.arms

        def update(self, actions, rewards):
            self.seen = getattr(self, "seen", []) + [rewards.tolist()]

    policy = Recording([0, 1, 2])
    run_policy(BANDIT, policy, horizon=3, num_runs=3, seed=4)
    noise, coins = np.random.default_rng([4, 0]), np.random.default_rng([4, 1])
    assert policy.seen == [(noise.random(3) < BANDIT.means).astype(float).tolist()
                           for _ in range(3)]
    assert policy.coins == [coins.random() for _ in range(3)]


def test_regret_and_optimal_fraction_follow_time() -> None:
    """Every run pulls arm (t - 1) mod 3 at step t: step regrets 0, 0.3, 0.6, 0, so R(t) =
    0, 0.3, 0.9, 0.9 and the optimal fraction 1, 0, 0, 1, each at its own step."""

    class Cycling(FixedArms):
        def select(self, t, rng):
            return np.full(2, (t - 1) % 3)

    curve = run_policy(BANDIT, Cycling([0, 0]), horizon=4, num_runs=2)
    np.testing.assert_allclose(curve.mean, [0.0, 0.3, 0.9, 0.9], rtol=1e-12)
    assert curve.optimal_fraction.tolist() == [1.0, 0.0, 0.0, 1.0]


def test_default_policies_scale_with_the_rewards() -> None:
    """Bernoulli: eps 0.1, eps = min(1, K/t), UCB1 c = 1, softmax tau 0.1; Gaussian: c and tau
    scale with sigma."""
    bern = list(default_policies("bernoulli").values())
    assert (bern[0].epsilon, bern[1].c, bern[2].c, bern[4].temperature) == (0.1, 1.0, 1.0, 0.1)
    gauss = list(default_policies("gaussian", std=3.0).values())
    assert (gauss[2].c, gauss[4].temperature) == (3.0, 0.1 * 3.0)
    assert isinstance(gauss[3], ThompsonSampling)


# ---- hand cases from mutation testing (MUTATION.md) ----------------------------------------


def test_thompson_spread_of_an_untried_gaussian_arm_is_sigma() -> None:
    """sigma = 2: the untried arm 0 (N = 0) drawn at z = 0.1 is 0 + 2 / sqrt(1) x 0.1 = 0.2,
    above arm 1's posterior mean 0.75 / 4 = 0.1875 drawn at z = 0 (a spread sigma / sqrt(N + 2)
    would give 2 / sqrt(2) x 0.1 = 0.141 and lose)."""
    gaussian = GaussianBandit([0.0, 1.0], std=2.0)
    policy = _policy(ThompsonSampling(), [[0, 3]], [[0.0, 0.25]], gaussian)
    assert policy.select(5, Scripted(standard_normal=[[0.1, 0.0]])).tolist() == [0]


def test_default_policies_for_gaussian_rewards_assume_sigma_1() -> None:
    gauss = list(default_policies("gaussian").values())
    assert (gauss[2].c, gauss[4].temperature) == (1.0, 0.1)
