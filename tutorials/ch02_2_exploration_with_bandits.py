# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exploration with bandits (outline 2.2.3, 9.2.3)
#
# A k-armed bandit is RL with one state: pull an arm, get a reward, learn which arm pays.
# The whole difficulty is *exploration*: an arm that looked bad after three pulls may be the
# best. We measure a rule by its regret $R(T) = \sum_{t \le T} (\mu^* - \mu_{a_t})$, and
# Lai and Robbins proved that no sensible rule beats
#
# $$\liminf_T \frac{R(T)}{\ln T} \ge \sum_{a:\Delta_a>0} \frac{\Delta_a}{\mathrm{KL}(\mu_a, \mu^*)}.$$
#
# This chapter's code, `duetrl.core.bandits`, is NumPy only on purpose: there is no network,
# and NumPy runs hundreds of seeds at once (every array is (runs, arms)). Exercise 3 writes
# one rule in PyTorch or TensorFlow, to see what a framework adds to a softmax.

# %%
import inspect

import numpy as np

from duetrl.core.bandits import (
    UCB1,
    BernoulliBandit,
    DecayingEpsilonGreedy,
    EpsilonGreedy,
    Softmax,
    ThompsonSampling,
    default_policies,
    lai_robbins_bound,
    lai_robbins_constant,
    plot_regret,
    run_experiment,
)
from duetrl.core.tutorial import claim, figure_dir, quick_mode

QUICK = quick_mode()
HORIZON, RUNS = (1000, 100) if QUICK else (10_000, 1000)

# %% [markdown]
# ## 1. Five exploration rules
#
# Every rule keeps, for each arm $a$, the number of pulls $N_a$ and the mean reward so far
# $Q_a$ (updated incrementally, $Q_a \leftarrow Q_a + (r - Q_a)/N_a$), and differs only in
# how it picks the next arm at step $t$:
#
# | rule | pull | why it explores |
# |---|---|---|
# | $\varepsilon$-greedy | a uniform arm with probability $\varepsilon$, else $\arg\max_a Q_a$ | a fixed share of random pulls, forever |
# | decaying $\varepsilon$ | the same with $\varepsilon_t = \min(1, cK/t)$ | random pulls thin out like $1/t$, so they add up to only $cK \ln T$ |
# | UCB1 | $\arg\max_a Q_a + c\sqrt{2\ln t / N_a}$ (each arm once first) | optimism: a rarely pulled arm gets a large bonus |
# | Thompson | $\arg\max_a \theta_a$, $\theta_a \sim \text{Beta}(1 + S_a, 1 + F_a)$ | an arm is pulled as often as it is *probably* the best |
# | softmax (Boltzmann) | $a \sim \text{softmax}(Q/\tau)$ | every arm keeps a share $\propto e^{Q_a/\tau}$ |
#
# ($S_a$, $F_a$: successes and failures of arm $a$.) Decaying $\varepsilon$ stops exploring
# as evidence piles up, but its schedule ignores the evidence itself: with $c$ too small for
# the smallest gap it may settle on a wrong arm for good. Softmax never stops: with a fixed
# $\tau$, arms whose means differ by $\tau$ keep pull shares in the ratio $e : 1$. The code
# is a few lines each:

# %%
for rule in (EpsilonGreedy.select, DecayingEpsilonGreedy.current_epsilon, UCB1.select,
             ThompsonSampling.select, Softmax.select):
    print(inspect.getsource(rule))

# %% [markdown]
# ## 2. Regret of the five rules
#
# All five on one Bernoulli bandit with means $[0.9, 0.8, 0.6, 0.4, 0.2]$, the same reward
# noise for each (one seed), averaged over many runs, with a 95% band.

# %%
bandit = BernoulliBandit([0.9, 0.8, 0.6, 0.4, 0.2])
results = run_experiment(bandit, default_policies(), horizon=HORIZON, num_runs=RUNS, seed=0)
print(f"{'policy':<22}{'R(T)':>8}  95% band        best arm pulled at T")
# the text's table below (the full run): R(10^4) and the best arm's share at 10^4, in order
QUOTED = [(338.3, 0.92), (136.4, 0.89), (186.8, 0.96), (23.0, 1.00), (388.4, 0.74)]
for (name, curve), (regret, best) in zip(results.items(), QUOTED):
    print(f"{name:<22}{curve.mean[-1]:>8.1f}  [{curve.low[-1]:.1f}, {curve.high[-1]:.1f}]"
          f"  {curve.optimal_fraction[-1]:>10.0%}")
    claim(f"{name}: R(10^4)", curve.mean[-1], regret, 0.05)
    claim(f"{name}: the best arm's share at 10^4", curve.optimal_fraction[-1], best, 0.005)
print(f"Lai-Robbins {lai_robbins_constant(bandit):.2f} ln T = "
      f"{float(lai_robbins_bound(bandit, HORIZON)):.1f}")
path = plot_regret(results, bandit, figure_dir() / "ch02_2_regret.png")
print("figure:", path)

# %% [markdown]
# ```{figcaption}
# Cumulative regret of each bandit algorithm against the step (logarithmic axis), averaged
# over runs, with the Lai-Robbins lower bound dashed.
# ```
#
# **What to see.** The step axis is *logarithmic*, so a regret that grows like $\ln t$ is a
# straight line on it (the dashed Lai-Robbins bound $c \ln t$ is one), and a regret that
# grows like $t$ bends upward ever more steeply. Measured with 1000 runs of 10 000 steps
# (the full run of this notebook; quick mode uses 100 runs of 1000 steps):
#
# | rule | $R(10^3)$ | $R(10^4)$ | best arm pulled at $10^4$ |
# |---|---|---|---|
# | $\varepsilon$-greedy 0.1 | 48.3 | 338.3 | 92% |
# | $\varepsilon = \min(1, K/t)$ | 28.2 | 136.4 | 89% |
# | UCB1 | 74.2 | 186.8 | 96% |
# | Thompson | 16.0 | 23.0 | 100% |
# | softmax $\tau = 0.1$ | 65.3 | 388.4 | 74% |
# | Lai-Robbins $4.40 \ln T$ | 30.4 | 40.5 | |
#
# * Fixed $\varepsilon$-greedy and softmax curve upward: their regret is linear in $T$.
#   $\varepsilon$-greedy pays $\varepsilon$ times the mean gap per step for ever
#   ($0.1 \times 0.32 = 0.032$; from $10^3$ to $10^4$ it gained $290/9000 = 0.032$ per step:
#   exercise 1). Softmax with $\tau = 0.1$ keeps pulling the 0.8 arm about $e^{-1}$ times as
#   often as the best one.
# * Decaying $\varepsilon$ starts best of the simple rules, then bends up too: in about one
#   run in ten it settled on the 0.8 arm before its exploration ran out.
# * UCB1 and Thompson become straight lines: logarithmic regret. UCB1's slope is large (its
#   bonus is built for the worst case); Thompson's is the smallest, and its curve lies
#   *below* the bound at these $T$: Lai and Robbins bound the slope as $T \to \infty$
#   (a $\liminf$ of $R(T)/\ln T$), not the regret at every finite $T$.
#
# ## Exercises
#
# Each exercise is a function with one line marked `# your code here`, preset to an answer
# so that this notebook runs; replace it with yours and run the check, which compares it with
# the float64 rule on fresh inputs and prints ✓ or ✗ with what it expected.
#
# 1. **Where $\varepsilon$-greedy's straight line comes from.** From the estimates $Q$
#    (runs, arms), return the probability of each arm under $\varepsilon$-greedy. With
#    $Q$ equal to the true means, these probabilities times the gaps give the regret per step
#    of the long run; the cell compares that with the slope of the measured curve.
# 2. **The Lai-Robbins constant.** Return $c = \sum_{a: \Delta_a > 0} \Delta_a /
#    \mathrm{KL}(\mu_a, \mu^*)$ for Bernoulli arms, with
#    $\mathrm{KL}(p, q) = p \ln\frac{p}{q} + (1-p)\ln\frac{1-p}{1-q}$. (Why does a best arm
#    tied with another add nothing?)
# 3. **Boltzmann exploration, in the framework of your choice.** Return
#    $\text{softmax}(Q/\tau)$ row by row, in PyTorch *or* TensorFlow (both are below; the
#    check reads your tensor back, at float32 tolerance). The check uses $\tau = 0.01$, where
#    $Q/\tau$ reaches 100 and $e^{100}$ overflows float32: why do the frameworks' own softmax
#    functions survive it? The cell then draws arms the way `Softmax.select` does,
#    $\arg\max_a (Q_a/\tau + g_a)$ with Gumbel noise $g_a$, and counts how often each wins.

# %%
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402

from duetrl.core.exercise_sets.bandits import CHECKS  # noqa: E402

check_exercise_1, check_exercise_2, check_exercise_3 = CHECKS


def eps_greedy_probabilities(values, epsilon):
    """pi(a) of epsilon-greedy for estimates values (R, K) -> (R, K)."""
    return (
        epsilon / values.shape[1] + (1 - epsilon) * np.eye(values.shape[1])[values.argmax(axis=1)]
    )  # your code here


def lai_robbins(means):
    """sum over the worse arms of Delta_a / KL(mu_a, mu*), Bernoulli arms."""
    best, worse = means.max(), means[means < means.max()]
    return np.sum(
        (best - worse)
        / (worse * np.log(worse / best) + (1 - worse) * np.log((1 - worse) / (1 - best)))
    )  # your code here


assert check_exercise_1(eps_greedy_probabilities)
long_run = eps_greedy_probabilities(bandit.means[None], 0.1)[0] @ bandit.gaps
late = np.diff(results["eps-greedy 0.1"].mean)[-HORIZON // 4:].mean()
print(f"  long-run regret per step {long_run:.4f}; measured over the last quarter {late:.4f}")
assert check_exercise_2(lai_robbins)

# %% tags=["torch"]
def softmax_policy_torch(values, tau):
    """softmax(values / tau) over the last axis, in torch: (R, K) NumPy -> (R, K) tensor."""
    return torch.softmax(
        torch.as_tensor(values, dtype=torch.float32) / tau, dim=-1
    )  # your code here


assert check_exercise_3(softmax_policy_torch)
q_now, tau = np.array([[0.9, 0.8, 0.6]]), 0.1
draws = np.argmax(q_now / tau + np.random.default_rng(0).gumbel(size=(100_000, 3)), axis=1)
print("  Gumbel-max frequencies", np.bincount(draws, minlength=3) / draws.size,
      "vs softmax", softmax_policy_torch(q_now, tau).numpy().round(3))

# %% tags=["tf"]
def softmax_policy_tf(values, tau):
    """softmax(values / tau) over the last axis, in tf: (R, K) NumPy -> (R, K) tensor."""
    return tf.nn.softmax(tf.constant(values, tf.float32) / tau, axis=-1)  # your code here


assert check_exercise_3(softmax_policy_tf)

# %% [markdown]
# A wrong answer gets a ✗ and what was expected. Here $e^{Q/\tau}$ without subtracting the
# largest $Q/\tau$ first: at $\tau = 0.01$ float32 overflows to inf and the row becomes NaN.

# %%
assert not check_exercise_3(
    lambda q, t: tf.exp(tf.constant(q, tf.float32) / t)
    / tf.reduce_sum(tf.exp(tf.constant(q, tf.float32) / t), axis=-1, keepdims=True))
