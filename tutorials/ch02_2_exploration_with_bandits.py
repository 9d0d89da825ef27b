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
# and NumPy runs hundreds of seeds at once (every array is (runs, arms)).

# %%
import inspect

import numpy as np

from duetrl.core.bandits import (
    UCB1,
    BernoulliBandit,
    EpsilonGreedy,
    ThompsonSampling,
    default_policies,
    lai_robbins_bound,
    lai_robbins_constant,
    plot_regret,
    run_experiment,
)
from duetrl.core.tutorial import figure_dir, quick_mode

QUICK = quick_mode()
HORIZON, RUNS = (1000, 100) if QUICK else (10_000, 1000)

# %% [markdown]
# The rules are a few lines each. UCB1 adds a bonus that shrinks as an arm is pulled;
# Thompson sampling draws a plausible mean for every arm from its Beta posterior and pulls
# the best draw.

# %%
print(inspect.getsource(UCB1.select))
print(inspect.getsource(ThompsonSampling.select))

# %%
bandit = BernoulliBandit([0.9, 0.8, 0.6, 0.4, 0.2])
results = run_experiment(bandit, default_policies(), horizon=HORIZON, num_runs=RUNS, seed=0)
print(f"{'policy':<22}{'R(T)':>8}  95% band")
for name, curve in results.items():
    print(f"{name:<22}{curve.mean[-1]:>8.1f}  [{curve.low[-1]:.1f}, {curve.high[-1]:.1f}]")
print(f"Lai-Robbins {lai_robbins_constant(bandit):.2f} ln T = "
      f"{float(lai_robbins_bound(bandit, HORIZON)):.1f}")
path = plot_regret(results, bandit, figure_dir() / "ch02_2_regret.png")
print("figure:", path)

# %% [markdown]
# Fixed epsilon-greedy keeps paying $\varepsilon \bar\Delta$ per step forever: its curve is a
# straight line on a linear axis. UCB1 and Thompson bend like $\ln T$; Thompson sits close
# to the bound.
#
# ## Exercises
#
# 1. With $\varepsilon = 0.1$, fixed epsilon-greedy's regret per step tends to
#    $\varepsilon$ times the mean gap. Compute it for this bandit and compare with
#    $R(T)/T$ late in the run.
# 2. Write the Lai-Robbins constant for two arms $[0.9, 0.8]$ by hand
#    ($\mathrm{KL}(p,q) = p\ln\frac{p}{q} + (1-p)\ln\frac{1-p}{1-q}$) and check it.
# 3. Gaussian arms: run `default_policies("gaussian", 1.0)` on `GaussianBandit` and see which
#    rule wins now.

# %%
late = np.diff(results["eps-greedy 0.1"].mean)[-HORIZON // 4:].mean()
expected = 0.1 * bandit.gaps.mean()
print(f"exercise 1: late regret per step {late:.4f} vs eps * mean gap {expected:.4f}")
assert abs(late - expected) < 0.5 * expected + 0.01

kl = 0.8 * np.log(0.8 / 0.9) + 0.2 * np.log(0.2 / 0.1)
assert np.isclose(lai_robbins_constant(BernoulliBandit([0.9, 0.8])), 0.1 / kl)
print(f"exercise 2: c = {0.1 / kl:.4f}")
check = run_experiment(bandit, {"eps": EpsilonGreedy(0.1)}, horizon=100, num_runs=10)
assert check["eps"].mean.shape == (100,)
