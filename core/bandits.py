"""Exploration with k-armed bandits (outline 2.2.3 and 9.2.3), in NumPy only.

Framework-free on purpose: a bandit has no state and no network, so there is nothing for
PyTorch or TensorFlow to do here. What matters is the exploration rule, and NumPy runs
hundreds of independent seeds at once: every array below is ``(R, K)`` (R runs, K arms) and
one Python loop walks time, so a 1000-run, 5000-step experiment takes about a second.

==============  ======================================================================
policy          choice at step t (1-based), with N_a pulls of arm a and mean reward Q_a
==============  ======================================================================
epsilon-greedy  a uniform arm with probability eps, else argmax_a Q_a
decaying eps    the same with eps_t = min(1, c K / t)            (Auer et al. 2002)
UCB1            argmax_a Q_a + c sqrt(2 ln t / N_a), each arm once first
Thompson        argmax_a theta_a, theta_a ~ posterior of mu_a: Beta(1 + S_a, 1 + F_a) for
                Bernoulli, N(Q_a N_a / (N_a + 1), sigma^2 / (N_a + 1)) for Gaussian
softmax         a ~ softmax(Q / tau)  (Boltzmann), drawn by Gumbel-max
==============  ======================================================================

Regret after T steps: R(T) = sum_{t<=T} (mu* - mu_{a_t}) (the pseudo-regret: true means, no
reward noise). Lai and Robbins (1985): any consistent policy has

    liminf_T R(T) / ln T >= sum_{a: Delta_a > 0} Delta_a / KL(mu_a, mu*),

with KL the divergence between the arms' reward laws (Bernoulli: p ln(p/q) + (1-p)
ln((1-p)/(1-q)); Gaussian of equal sigma: (p - q)^2 / (2 sigma^2)). Fixed eps-greedy has
linear regret (eps Delta_mean per step forever); UCB1 and Thompson grow like ln T.

Example:
    >>> bandit = BernoulliBandit([0.9, 0.8, 0.5])
    >>> results = run_experiment(bandit, default_policies(), horizon=2000, num_runs=200, seed=0)
    >>> results["ucb1"].mean[-1], lai_robbins_bound(bandit, 2000)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


def _check_probability(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name}: expected a number in [0, 1], got {value!r}")
    return float(value)


def _check_positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            math.isfinite(value) and value > 0):
        raise ValueError(f"{name}: expected a positive number, got {value!r}")
    return float(value)


# ---- bandits ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bandit:
    """K arms with fixed reward laws; ``kind`` is ``"bernoulli"`` or ``"gaussian"``.

    :param means: the arms' mean rewards mu_a, shape (K,), K >= 2.
    :param std: the Gaussian arms' common standard deviation sigma (ignored for Bernoulli).
    """

    means: np.ndarray
    kind: str
    std: float = 1.0

    def __post_init__(self) -> None:
        means = np.asarray(self.means, dtype=np.float64)
        if means.ndim != 1 or means.size < 2:
            raise ValueError(f"means: expected k >= 2 arm means in a 1-d sequence, got shape "
                             f"{means.shape} (a bandit needs at least two arms to choose from)")
        if not np.all(np.isfinite(means)):
            raise ValueError(f"means: expected finite numbers, got {means.tolist()}")
        if self.kind == "bernoulli" and not np.all((means >= 0) & (means <= 1)):
            raise ValueError(f"means: a Bernoulli arm's mean is a probability in [0, 1], got "
                             f"{means.tolist()}")
        if self.kind not in ("bernoulli", "gaussian"):
            raise ValueError(f"kind: expected 'bernoulli' or 'gaussian', got {self.kind!r}")
        _check_positive("std", self.std)
        object.__setattr__(self, "means", means)

    @property
    def num_arms(self) -> int:
        return int(self.means.size)

    @property
    def gaps(self) -> np.ndarray:
        """Delta_a = mu* - mu_a, shape (K,)."""
        return self.means.max() - self.means

    def rewards(self, actions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One reward per run for the pulled arms ``actions`` (R,): Bernoulli 1[u < mu_a],
        Gaussian mu_a + sigma z. The noise is one draw per run and step whatever the arm, so
        two policies run with the same seed see common random numbers."""
        mu = self.means[actions]
        if self.kind == "bernoulli":
            return (rng.random(actions.shape) < mu).astype(np.float64)
        return mu + self.std * rng.standard_normal(actions.shape)


def BernoulliBandit(means: Sequence[float]) -> Bandit:  # noqa: N802  (reads as a class)
    """K arms paying 1 with probability mu_a, else 0."""
    return Bandit(np.asarray(means, dtype=np.float64), "bernoulli")


def GaussianBandit(means: Sequence[float], std: float = 1.0) -> Bandit:  # noqa: N802
    """K arms paying N(mu_a, sigma^2)."""
    return Bandit(np.asarray(means, dtype=np.float64), "gaussian", std)


def kl_divergence(bandit: Bandit, p: np.ndarray, q: float) -> np.ndarray:
    """KL(law(p) || law(q)) between two arms of ``bandit``'s kind (elementwise over ``p``)."""
    p = np.asarray(p, dtype=np.float64)
    if bandit.kind == "gaussian":
        return (p - q) ** 2 / (2.0 * bandit.std**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(p > 0, p * np.log(p / q), 0.0)
        b = np.where(p < 1, (1 - p) * np.log((1 - p) / (1 - q)), 0.0)
    return a + b


def lai_robbins_constant(bandit: Bandit) -> float:
    """c = sum_{a: Delta_a > 0} Delta_a / KL(mu_a, mu*): regret grows at least like c ln T.

    A Bernoulli best arm with mu* = 1 makes every KL infinite (one failure rules an arm out),
    so its terms are 0.
    """
    best = float(bandit.means.max())
    worse = bandit.gaps > 0
    kl = kl_divergence(bandit, bandit.means[worse], best)
    return float(np.sum(bandit.gaps[worse] / kl))


def lai_robbins_bound(bandit: Bandit, horizon: int | np.ndarray) -> np.ndarray:
    """The asymptotic lower bound c ln T at ``horizon`` (scalar or array of T >= 1)."""
    return lai_robbins_constant(bandit) * np.log(np.asarray(horizon, dtype=np.float64))


# ---- policies --------------------------------------------------------------------------------
class BanditPolicy:
    """An exploration rule over R independent runs at once; subclasses define :meth:`select`.

    State: ``counts`` N (R, K) and ``values`` Q (R, K), the running mean reward of each arm.
    """

    name = "policy"

    def reset(self, num_runs: int, num_arms: int, bandit: Bandit) -> None:
        self.counts = np.zeros((num_runs, num_arms))
        self.values = np.zeros((num_runs, num_arms))
        self.bandit = bandit

    def select(self, t: int, rng: np.random.Generator) -> np.ndarray:
        """The arm each run pulls at step ``t`` (1-based), shape (R,) int64."""
        raise NotImplementedError

    def update(self, actions: np.ndarray, rewards: np.ndarray) -> None:
        """Q_a <- Q_a + (r - Q_a) / N_a for the pulled arm of each run (the incremental mean)."""
        rows = np.arange(actions.size)
        self.counts[rows, actions] += 1.0
        self.values[rows, actions] += (rewards - self.values[rows, actions]) / \
            self.counts[rows, actions]


def _argmax_random_ties(scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """argmax over the last axis, ties broken uniformly (a tiny random jitter)."""
    return np.argmax(scores + 1e-9 * rng.random(scores.shape), axis=-1)


class EpsilonGreedy(BanditPolicy):
    """With probability epsilon a uniform arm, else the greedy one.

    :param epsilon: exploration rate in [0, 1] (fixed).
    """

    def __init__(self, epsilon: float = 0.1) -> None:
        self.epsilon = _check_probability("epsilon", epsilon)
        self.name = f"eps-greedy {epsilon:g}"

    def current_epsilon(self, t: int) -> float:
        return self.epsilon

    def select(self, t: int, rng: np.random.Generator) -> np.ndarray:
        runs, arms = self.values.shape
        explore = rng.random(runs) < self.current_epsilon(t)
        random_arms = rng.integers(0, arms, size=runs)
        return np.where(explore, random_arms, _argmax_random_ties(self.values, rng))


class DecayingEpsilonGreedy(EpsilonGreedy):
    """epsilon_t = min(1, c K / t): explores less as evidence piles up (Auer et al. 2002).

    :param c: the decay constant (> 0); larger explores longer.
    """

    def __init__(self, c: float = 1.0) -> None:
        self.c = _check_positive("c", c)
        self.name = f"eps = min(1, {c:g}K/t)"

    def current_epsilon(self, t: int) -> float:
        return min(1.0, self.c * self.values.shape[1] / t)


class UCB1(BanditPolicy):
    """argmax_a Q_a + c sqrt(2 ln t / N_a), every arm pulled once first (Auer et al. 2002).

    :param c: bonus scale; 1 for rewards in [0, 1], sigma for Gaussian arms.
    """

    def __init__(self, c: float = 1.0) -> None:
        self.c = _check_positive("c", c)
        self.name = "UCB1"

    def select(self, t: int, rng: np.random.Generator) -> np.ndarray:
        untried = self.counts == 0
        bonus = self.c * np.sqrt(2.0 * math.log(max(t, 1)) / np.maximum(self.counts, 1.0))
        scores = np.where(untried, np.inf, self.values + bonus)
        return _argmax_random_ties(np.where(np.isinf(scores), 1e300, scores), rng)


class ThompsonSampling(BanditPolicy):
    """Pull the arm whose posterior sample is largest (probability matching).

    Bernoulli arms: prior Beta(1, 1), posterior Beta(1 + successes, 1 + failures).
    Gaussian arms of known sigma: prior N(0, sigma^2) on mu_a, posterior
    N(sum r / (N + 1), sigma^2 / (N + 1)).
    """

    name = "Thompson"

    def select(self, t: int, rng: np.random.Generator) -> np.ndarray:
        sums = self.values * self.counts
        if self.bandit.kind == "bernoulli":
            samples = rng.beta(1.0 + sums, 1.0 + self.counts - sums)
        else:
            mean = sums / (self.counts + 1.0)
            samples = mean + self.bandit.std / np.sqrt(self.counts + 1.0) * \
                rng.standard_normal(self.values.shape)
        return np.argmax(samples, axis=-1)


class Softmax(BanditPolicy):
    """Boltzmann exploration: a ~ softmax(Q / tau), drawn as argmax(Q / tau + Gumbel noise).

    :param temperature: tau > 0; small tau is greedy, large tau is uniform.
    """

    def __init__(self, temperature: float = 0.1) -> None:
        self.temperature = _check_positive("temperature", temperature)
        self.name = f"softmax tau={temperature:g}"

    def select(self, t: int, rng: np.random.Generator) -> np.ndarray:
        return np.argmax(self.values / self.temperature + rng.gumbel(size=self.values.shape),
                         axis=-1)


def default_policies(bandit_kind: str = "bernoulli", std: float = 1.0) -> dict[str, BanditPolicy]:
    """The five rules of the chapter, with settings that suit rewards in [0, 1] (or sigma)."""
    scale = 1.0 if bandit_kind == "bernoulli" else std
    policies = [EpsilonGreedy(0.1), DecayingEpsilonGreedy(1.0), UCB1(scale),
                ThompsonSampling(), Softmax(0.1 * scale)]
    return {p.name: p for p in policies}


# ---- the experiment --------------------------------------------------------------------------
@dataclass
class RegretCurve:
    """Cumulative regret of one policy over R runs: per-step mean and a 95% confidence band.

    ``mean``, ``low``, ``high``: (T,), R(t) for t = 1..T; ``final``: (R,) each run's R(T);
    ``optimal_fraction``: (T,) the share of runs pulling a best arm at step t.
    """

    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    final: np.ndarray
    optimal_fraction: np.ndarray


def run_policy(bandit: Bandit, policy: BanditPolicy, horizon: int, num_runs: int,
               seed: int = 0) -> RegretCurve:
    """Run ``policy`` for ``horizon`` steps on ``num_runs`` independent copies of ``bandit``.

    Reward noise comes from its own stream ``[seed, 0]`` and the policy's coins from
    ``[seed, 1]``, so every policy run with one seed meets the same reward noise.
    """
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise ValueError(f"horizon: expected a positive int, got {horizon!r}")
    if isinstance(num_runs, bool) or not isinstance(num_runs, int) or num_runs < 2:
        raise ValueError(f"num_runs: expected an int >= 2 (for a confidence band), got "
                         f"{num_runs!r}")
    reward_rng = np.random.default_rng([seed, 0])
    policy_rng = np.random.default_rng([seed, 1])
    policy.reset(num_runs, bandit.num_arms, bandit)
    gaps, best = bandit.gaps, bandit.gaps == 0
    step_regret = np.empty((horizon, num_runs))
    optimal = np.empty(horizon)
    for t in range(1, horizon + 1):
        actions = policy.select(t, policy_rng)
        policy.update(actions, bandit.rewards(actions, reward_rng))
        step_regret[t - 1] = gaps[actions]  # mu* - mu_{a_t}
        optimal[t - 1] = best[actions].mean()
    regret = np.cumsum(step_regret, axis=0)  # (T, R)
    mean = regret.mean(axis=1)
    half = 1.96 * regret.std(axis=1, ddof=1) / math.sqrt(num_runs)  # 95% normal band
    return RegretCurve(mean, mean - half, mean + half, regret[-1].copy(), optimal)


def run_experiment(bandit: Bandit, policies: Mapping[str, BanditPolicy], horizon: int = 2000,
                   num_runs: int = 200, seed: int = 0) -> dict[str, RegretCurve]:
    """Every policy on the same bandit, the same seeds and the same reward noise."""
    return {name: run_policy(bandit, policy, horizon, num_runs, seed)
            for name, policy in policies.items()}


def plot_regret(results: Mapping[str, RegretCurve], bandit: Bandit, path: str | Path,
                title: str | None = None) -> Path:
    """Cumulative regret against t (log-scaled x) with 95% bands and the c ln t lower bound."""
    from duetrl.core.plots import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, curve in results.items():
        t = np.arange(1, curve.mean.size + 1)
        ax.plot(t, curve.mean, label=name)
        ax.fill_between(t, curve.low, curve.high, alpha=0.2)
    horizon = next(iter(results.values())).mean.size
    t = np.arange(1, horizon + 1)
    ax.plot(t, lai_robbins_bound(bandit, t), "k--",
            label=f"Lai-Robbins {lai_robbins_constant(bandit):.2f} ln t")
    ax.set_xscale("log")
    ax.set_xlabel("step t")
    ax.set_ylabel("cumulative regret")
    ax.set_title(title or f"{bandit.kind} bandit, means {np.round(bandit.means, 2).tolist()}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)
