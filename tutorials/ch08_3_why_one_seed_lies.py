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
# # Why one seed lies (outline 8.3.3: stable, interpretable algorithms)
#
# A training run of deep RL is a random variable. The seed picks the initial weights, the
# environments' start states and every sampled action; change it and the whole trajectory
# changes, because a policy that happens to balance the pole a little longer early on
# collects different data, which changes the next update, and so on. "Stable" and
# "interpretable" (8.3.3) are claims about that random variable, so they need more than one
# draw of it.
#
# Here PPO learns CartPole-v1 with several seeds in both frameworks, and with two learning
# rates. We look at the spread, at how a one-seed comparison of torch against tf, or of one
# learning rate against another, depends on which seed you happened to pick, and at what the
# statistics of Agarwal et al. (NeurIPS 2021, the `rliable` library) say instead. The runs go
# into a folder shaped like a `duetrl sweep` folder, so `duetrl report` reads it as it
# would read a sweep.

# %%
import time
from pathlib import Path

import numpy as np
import pandas as pd

from duetrl.core.checkpoint import atomic_write
from duetrl.core.interfaces.rl_settings import make_settings
from duetrl.core.plots import figures_not_shown, pyplot, save_figure
from duetrl.core.rl.session import train
from duetrl.core.scale import report as rp
from duetrl.core.tutorial import claim, figure_dir, quick_mode

QUICK = quick_mode()
ENV = "CartPole-v1"
SEEDS = list(range(3 if QUICK else 10))
STEPS = 4_096 if QUICK else 50_000  # full: the seeds have spread apart, none has solved yet
BACKENDS = ("torch", "tf")
DEFAULT_LR = make_settings("ppo").learning_rate  # 4e-3
OTHER_LR = DEFAULT_LR / 2  # the second "setting", trained in torch only
REPS = 200 if QUICK else 2000  # bootstrap resamples
SWEEP = Path("runs") / "ch08_3_why_one_seed_lies"

# %% [markdown]
# ## 1. Train: one row per run, in a sweep-shaped folder
#
# Each run is exactly what `duetrl train ppo --seed S --total-steps N --learning-rate LR`
# does (`core/rl/session.py`): it stops at the budget or when the mean return of the last
# 100 episodes reaches 475. Its summary goes into `results.csv` with the columns of the sweep
# contract (`run_id`, `algorithm`, `backend`, `seed`, `status`, the summary's
# `final_mean_return`, and one `setting.<name>` column per varied setting); its `log.csv`
# (one row per update) stays in `runs/<run_id>/`.


# %%
def run_one(backend: str, seed: int, learning_rate: float) -> dict:
    """Train PPO once and return its results.csv row."""
    run_id = f"ppo-{backend}-s{seed}-lr{learning_rate:g}"
    start = time.perf_counter()
    summary = train("ppo", ENV, backend, make_settings("ppo", learning_rate=learning_rate),
                    seed=seed, total_steps=STEPS, out=str(SWEEP / "runs" / run_id), quiet=True)
    return {"run_id": run_id, "command": "train ppo", "algorithm": "ppo", "backend": backend,
            "seed": seed, "env": ENV, "status": "done", "attempts": 1,
            "wall_s": round(time.perf_counter() - start, 2), "error": "",
            **{k: summary[k] for k in ("final_mean_return", "solved", "env_steps", "episodes",
                                       "updates")},
            "setting.learning_rate": learning_rate, "run_dir": f"runs/{run_id}"}


plan = [(b, s, DEFAULT_LR) for b in BACKENDS for s in SEEDS] + [("torch", s, OTHER_LR)
                                                                 for s in SEEDS]
rows = []
for backend, seed, learning_rate in plan:
    with figures_not_shown():  # each run's own curve.png stays in its folder, off the page
        rows.append(run_one(backend, seed, learning_rate))
    row = rows[-1]
    print(f"{row['run_id']:<24} final mean return {row['final_mean_return']:6.1f} "
          f"after {row['env_steps']:>6} steps{'  solved' if row['solved'] else ''}")
SWEEP.mkdir(parents=True, exist_ok=True)
(SWEEP / "sweep.toml").write_text(f"# written by tutorials/ch08_3_why_one_seed_lies.py\n"
                                  f"seeds = {SEEDS}\ntotal_steps = {STEPS}\n")
results = pd.DataFrame(rows)
atomic_write(SWEEP / "results.csv", lambda tmp: results.to_csv(tmp, index=False))


def scores_of(backend: str, learning_rate: float) -> np.ndarray:
    """final_mean_return of each seed, in seed order."""
    picked = results[(results.backend == backend)
                     & (results["setting.learning_rate"] == learning_rate)]
    return picked.sort_values("seed")["final_mean_return"].to_numpy(np.float64)


torch_scores, tf_scores = scores_of("torch", DEFAULT_LR), scores_of("tf", DEFAULT_LR)
other_scores = scores_of("torch", OTHER_LR)

# %% [markdown]
# ## 2. The spread
#
# Same algorithm, same settings, same budget: only the seed differs. The figure shows every
# seed's learning curve (the mean return of the last 100 episodes); the best and the worst
# seed of each framework are drawn thick.

# %%
plt = pyplot()
fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
for ax, backend, scores in zip(axes, BACKENDS, (torch_scores, tf_scores)):
    best, worst = SEEDS[int(np.argmax(scores))], SEEDS[int(np.argmin(scores))]
    for seed in SEEDS:
        x, y, _, _ = rp.read_curve(SWEEP / "runs" / f"ppo-{backend}-s{seed}-lr{DEFAULT_LR:g}")
        thick = seed in (best, worst)  # one colour per seed, the same in both panels
        ax.plot(x, y, color=f"C{seed % 10}", linewidth=2.5 if thick else 0.8,
                alpha=1.0 if thick else 0.5,
                label=f"best seed {seed}" if seed == best and thick
                else f"worst seed {seed}" if seed == worst and thick else None)
    ax.set_title(f"PPO {backend}: {len(SEEDS)} seeds, lr {DEFAULT_LR:g}")
    ax.set_xlabel("environment steps")
    ax.grid(alpha=0.3)
    ax.legend()
    print(f"{backend}: best seed {best} reaches {scores.max():.1f}, worst seed {worst} "
          f"{scores.min():.1f}; the spread is {scores.max() - scores.min():.1f}, the mean "
          f"{scores.mean():.1f}")
    # the same runs judged earlier: where did the final best and worst seeds stand at 80%?
    earlier = [np.interp(0.8 * STEPS, *rp.read_curve(
        SWEEP / "runs" / f"ppo-{backend}-s{seed}-lr{DEFAULT_LR:g}")[:2]) for seed in SEEDS]
    rank = {seed: 1 + int(np.sum(np.array(earlier) > earlier[i])) for i, seed in enumerate(SEEDS)}
    print(f"  at {0.8 * STEPS:.0f} steps (80% of the budget) seed {best} ranked {rank[best]} and "
          f"seed {worst} ranked {rank[worst]} of {len(SEEDS)}")
axes[0].set_ylabel("mean return of the last 100 episodes")
path = save_figure(fig, figure_dir() / "ch08_3_seed_spread.png")
print("figure:", path)

# %% [markdown]
# ```{figcaption}
# PPO on CartPole-v1 with one setting and several seeds, in each framework: every seed's
# learning curve, the best and the worst marked.
# ```
#
# The spread is as large as the effects papers report between methods, and the ranking of
# seeds is not even stable in time: stop the same runs earlier and best and worst can trade
# places (the second printed line), because PPO on CartPole can also *lose* what it learned.
#
# Principle 5 of duetrl makes the two frameworks draw their initial weights and sampling
# noise from the same NumPy seed, so seed $s$ in torch and seed $s$ in tf start from the same
# weights and sample the same first actions. Their curves stay together until float32
# rounding, amplified by the feedback loop between policy and data, pulls them apart. So the
# spread *between seeds* is not a framework effect: it is the random variable itself.
#
# ## 3. A one-seed comparison can say anything
#
# Suppose a study runs torch with one seed and tf with another (or the two learning rates with
# one seed each) and reports the winner. Every cell below is one such study: row $i$ is the
# seed of the first method, column $j$ the seed of the second; `>` means the study concludes
# the first is better.


# %%
def verdicts(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Matrix of one-seed verdicts: '>' where x_i beats y_j, '<' where it loses, '=' ties."""
    return np.where(x[:, None] > y[None, :], ">", np.where(x[:, None] < y[None, :], "<", "="))


for name, (x, y) in {"torch vs tf (lr same)": (torch_scores, tf_scores),
                     f"lr {DEFAULT_LR:g} vs lr {OTHER_LR:g} (torch)": (torch_scores,
                                                                        other_scores)}.items():
    grid = verdicts(x, y)
    print(f"{name}: seeds of the first in rows, of the second in columns")
    print("      " + " ".join(f"{s:>2}" for s in SEEDS))
    for seed, line in zip(SEEDS, grid):
        print(f"  s{seed:<3} " + " ".join(f"{v:>2}" for v in line))
    wins, ties = np.mean(grid == ">"), np.mean(grid == "=")
    print(f"  the first wins {wins:.0%} of the one-seed studies, ties {ties:.0%}, loses "
          f"{1 - wins - ties:.0%}\n")

# %% [markdown]
# Unless one method is better on *every* seed, some cells say `>` and others `<`: which
# conclusion gets published depends on the seed, not on the method. Even when one learning
# rate really is better, some one-seed studies say the opposite (in the full run, 1 of the
# 100 of the second grid; the closer two methods are, the more). The
# fraction of `>` cells (ties counted as half) is itself the honest statistic of section 4:
# the probability of improvement.
#
# (The diagonal compares torch and tf runs that share a seed, so they started from the same
# weights; a `=` there is lockstep, not a tie between two independent runs. A study that
# wants independent samples gives each method its own seeds.)
#
# ## 4. What to report instead
#
# **Interquartile mean.** Sort the $n$ final scores and average the middle half,
#
# $$\mathrm{IQM}(x) = \frac{1}{n - 2k} \sum_{i=k+1}^{n-k} x_{(i)}, \qquad k = \lfloor n/4 \rfloor,$$
#
# (`scipy.stats.trim_mean(x, 0.25)`). Unlike the mean, one lucky or broken seed cannot drag
# it; unlike the median, it uses half of the runs, not one, so it varies less.
#
# **Stratified bootstrap confidence intervals.** We cannot rerun the world, but we can
# resample our runs: draw $n$ runs with replacement from each method's $n$ runs (each method
# and task is a stratum, resampled on its own), compute the statistic, repeat $B$ times, and
# report the 2.5% and 97.5% quantiles of the $B$ values as the 95% interval. Wide intervals
# are the honest answer to few seeds; with one run there is nothing to resample and the
# interval is undefined.
#
# **Probability of improvement.** For methods X (runs $x_1..x_m$) and Y ($y_1..y_n$),
#
# $$P(X > Y) = \frac{1}{mn} \sum_{i=1}^{m} \sum_{j=1}^{n} S(x_i, y_j), \qquad
#   S(x, y) = \begin{cases} 1 & x > y \\ \tfrac12 & x = y \\ 0 & x < y \end{cases}$$
#
# the chance that a random run of X beats a random run of Y: exactly the share of `>` cells
# above. 0.5 means no difference; its bootstrap CI says whether the data can tell.
#
# `duetrl report` computes all of these with `rliable` on the folder we just wrote (scores
# divided by 500, CartPole's maximum return), plus performance profiles and learning curves
# with bands. Here is its report:

# %%
report_dir = figure_dir() / "ch08_3_report"
report = rp.make_report(SWEEP, reps=REPS, out=report_dir)
print((report_dir / "report.md").read_text())
print("figures:", ", ".join(sorted(p.name for p in report_dir.glob("*.png"))))
# the text's figures (below: the full run, 10 seeds, 50k steps)
claim("P(torch > tf)", rp.probability_of_improvement(torch_scores, tf_scores), 0.60, 0.005)
claim("P(lr 0.004 > lr 0.002)", rp.probability_of_improvement(torch_scores, other_scores), 0.99,
      0.005)
claim("torch's lowest final return", torch_scores.min(), 165, 0.5)
claim("torch's highest final return", torch_scores.max(), 370, 0.5)

# %% [markdown]
# ```{figcaption}
# Aggregate scores of each method, with 95% bootstrap confidence intervals over seeds.
# ```
#
# ```{figcaption}
# Performance profiles: the fraction of each method's runs that score above each threshold
# $\tau$.
# ```
#
# ```{figcaption}
# The probability that one method improves on another, with its 95% bootstrap interval.
# ```
#
# ```{figcaption}
# Learning curves: the IQM over seeds of each method against environment steps, with 95%
# bootstrap bands.
# ```
#
# Read the tables against section 3: P(torch > tf) is the share of `>` cells of the first
# grid, P(lr 0.004 > lr 0.002) that of the second. An interval that contains 0.5 says the
# data cannot tell the two methods apart; for torch against tf that is what the lockstep
# tests of the two backends (`duetrl compare ppo`) predict, since they are one algorithm.
# An interval that excludes 0.5 says one method wins more often than not, *and* (through
# the point estimate) how often a single pair of runs would still say the opposite.
#
# How many seeds? The interval width shrinks roughly like $1/\sqrt{n}$: in quick mode (3
# seeds, 4k steps) every interval is wide; the full run (10 seeds, 50k steps, about 30
# training runs) measured, on 2 CPU cores, P(torch > tf) = 0.60 [0.34, 0.85] and
# P(lr 0.004 > lr 0.002) = 0.99 [0.94, 1.00], with final returns from 165 to 370 across
# torch's seeds. `duetrl sweep` runs such grids of seeds, backends and settings in parallel
# (Ray); `duetrl report SWEEP_DIR` writes the tables and figures above for any of them.
#
# ## Exercises
#
# Each exercise is a function with one line marked `# your code here`, preset to an answer so
# that this notebook runs; replace it with your own and run the check below it, which prints
# ✓ or ✗ with what it expected.
#
# 1. **The interquartile mean by hand.** Sort, cut $\lfloor n/4 \rfloor$ runs from each end,
#    average the rest. The check compares with `rliable` on samples of 4 to 11 runs (at
#    $n = 6$ and $n = 7$ rounding instead of flooring cuts one run too many).
# 2. **The probability of improvement, in the framework of your choice.** The double sum
#    above, ties counting one half, in PyTorch *or* TensorFlow (both are below; a comparison
#    of two broadcast tensors does the double sum). The check compares with `rliable` (the Mann-Whitney U statistic over $mn$) on
#    scores with many ties.

# %%
from duetrl.core.backend import load_backends  # noqa: E402
from duetrl.core.exercises import compare  # noqa: E402

load_backends(["torch", "tf"])  # torch before tensorflow, as everywhere in duetrl
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402


def check_exercise_1(answer) -> bool:
    """``answer(scores)`` = IQM of a 1-D array, against rliable on 4 to 11 runs."""
    rng = np.random.default_rng(0)
    cases = [(rng.normal(size=n) ** 3,) for n in range(4, 12)]
    return compare(1, answer, rp.interquartile_mean, cases, "IQM", atol=1e-12, rtol=1e-12)


def check_exercise_2(answer) -> bool:
    """``answer(x, y)`` = P(X > Y) with ties as 1/2, against rliable."""
    rng = np.random.default_rng(1)
    cases = [(rng.integers(0, 3, m).astype(float), rng.integers(0, 3, n).astype(float))
             for m, n in ((3, 3), (5, 2), (10, 7))]
    return compare(2, answer, rp.probability_of_improvement, cases, "P(X > Y), ties as 1/2",
                   atol=1e-12, rtol=1e-12)


def interquartile_mean(scores: np.ndarray) -> float:
    """Mean of the middle half of the sorted scores."""
    k = len(scores) // 4
    return float(np.sort(scores)[k:len(scores) - k].mean())  # your code here


assert check_exercise_1(interquartile_mean)

# %% tags=["torch"]
def probability_of_improvement_torch(x: np.ndarray, y: np.ndarray) -> float:
    """(1/mn) sum_i sum_j S(x_i, y_j), S = 1, 1/2, 0 for >, =, <, in torch (float64)."""
    x, y = torch.as_tensor(x)[:, None], torch.as_tensor(y)[None, :]
    return float(((x > y).double() + 0.5 * (x == y).double()).mean())  # your code here


assert check_exercise_2(probability_of_improvement_torch)

# %% tags=["tf"]
def probability_of_improvement_tf(x: np.ndarray, y: np.ndarray) -> float:
    """(1/mn) sum_i sum_j S(x_i, y_j), S = 1, 1/2, 0 for >, =, <, in tf (float64)."""
    x, y = tf.constant(x, tf.float64)[:, None], tf.constant(y, tf.float64)[None, :]
    return float(
        tf.reduce_mean(tf.cast(x > y, tf.float64) + 0.5 * tf.cast(x == y, tf.float64))
    )  # your code here


assert check_exercise_2(probability_of_improvement_tf)

# %% [markdown]
# A wrong answer gets a ✗ and the expected values. Here, counting ties as losses:

# %%
assert not check_exercise_2(lambda x, y: float(np.mean(x[:, None] > y[None, :])))
