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
# # Exploration in deep RL and in language models, varied and measured
#
# Outline 2.2.3 (exploration and exploitation) and 9.2.3 (how to balance them). The bandits
# tutorial compared exploration rules with one state and hundreds of seeds. Here the same
# question is asked of three deep learners, each through the knob it actually has:
#
# * **DQN**: the $\epsilon$ of $\epsilon$-greedy acting, and how it is scheduled;
# * **PPO**: the entropy coefficient $c_H$ of $L = L^{\text{clip}} + c_v L^V - c_H\,
#   \mathbb{E}_t H[\pi(\cdot \mid s_t)]$;
# * **a language model trained with RLOO**: the temperature $T$ at which it samples its
#   completions, $\pi_T(y_t) = \mathrm{softmax}(z_t / T)$.
#
# One run says little (the "why one seed lies" tutorial): every setting runs on several seeds,
# and every figure shows the mean with a 95% stratified-bootstrap interval over seeds
# (`core/scale/statistics.py`, rliable's). The runners are in `core/rl/exploration.py`.

# %%
import numpy as np

from duetrl.core.backend import load_backends
from duetrl.core.plots import pyplot, save_figure
from duetrl.core.rl import exploration as ex
from duetrl.core.tutorial import claim, figure_dir, quick_mode

QUICK = quick_mode()
backends = load_backends(["torch", "tf"])
for backend in backends.values():
    backend.set_num_threads(1)  # small networks: one thread per framework is fastest
SEEDS = (0,) if QUICK else (0, 1, 2, 3, 4)
DQN_STEPS = 300 if QUICK else 4000
PPO_STEPS = 512 if QUICK else 8192
LM_UPDATES = 2 if QUICK else 60
REPS = 200 if QUICK else 2000  # bootstrap resamples
plt = pyplot()


def table(rows, metrics, title):
    """Print mean [95% CI] over seeds of each metric, one line per setting."""
    stats = {m: ex.summarise(rows, m, REPS) for m in metrics}
    print(f"{title}: mean [95% bootstrap CI] over {len(SEEDS)} seed(s)")
    for setting in stats[metrics[0]]:
        cells = []
        for m in metrics:
            s = stats[m][setting]
            ci = s["mean_ci"]
            cells.append(f"{m} {s['mean']:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""))
        print(f"  {str(setting):>12}: " + "; ".join(cells))
    return stats


def claim_stats(stats, quoted, what, tolerance=0.005):
    """The text's figures of the full run: ``{(metric, setting): (mean, low, high)}``, each
    as quoted (two decimals: ``tolerance`` 0.005). Quick mode (one seed, no interval): none."""
    if QUICK:
        return
    for (metric, setting), figures in quoted.items():
        s = stats[metric][setting]
        for name, value, figure in zip(("mean", "CI low", "CI high"),
                                       (s["mean"], *s["mean_ci"]), figures):
            claim(f"{what}, {setting}: {metric} {name}", value, figure, tolerance)


def bars(ax, stats, metric, label):
    """Means with their CIs as error bars, one bar per setting."""
    s = stats[metric]
    means = np.array([v["mean"] for v in s.values()])
    errors = np.array([[v["mean"] - v["mean_ci"][0], v["mean_ci"][1] - v["mean"]]
                       if v["mean_ci"] else [0.0, 0.0] for v in s.values()]).T
    ax.bar([str(k) for k in s], means, yerr=errors, capsize=4, alpha=0.7, label=label)


# %% [markdown]
# ## 1. A corridor that punishes a learner who stops exploring
#
# `SparseChain` is a corridor of 16 cells. The agent starts in cell 1; stepping left reaches
# cell 0 at once and ends the episode with reward 0.1; stepping right 14 times reaches cell
# 15 and ends it with reward 1; every other step pays 0, and an episode is cut after 40
# steps. The far end is the better one even discounted ($0.95^{13} \approx 0.51 > 0.1$), but
# a random walk from cell 1 reaches it first only with probability $1/15$ (gambler's ruin),
# and later still if it has to within 40 steps. A learner that settles on what it has seen
# will settle for 0.1.

# %%
rng = np.random.default_rng(0)
far = 0
for _ in range(4000):  # random walks, as a uniformly random policy takes them
    cell = 1
    for _ in range(ex.CHAIN_STEPS):
        cell += 1 if rng.random() < 0.5 else -1
        if cell in (0, ex.CHAIN_LENGTH - 1):
            break
    far += cell == ex.CHAIN_LENGTH - 1
print(f"random policy: far end first in {far / 4000:.3f} of episodes "
      f"(1/(n-1) = {1 / (ex.CHAIN_LENGTH - 1):.3f} without the 40-step limit)")

# %% [markdown]
# ## 2. DQN: the epsilon schedule
#
# DQN acts $\epsilon$-greedily, $a = \arg\max_a Q(s,a)$ with probability $1-\epsilon$ and a
# uniform action otherwise, and learns off-policy from its replay buffer. Four schedules, the
# rest of the settings equal (`ex.DQN_CHAIN`): $\epsilon = 1$ throughout (a random walk), a
# linear decay from 1 to 0.05 over half the budget, a fixed 0.05, and 0 (greedy from the
# start, only the random initial $Q$ to choose by). Two numbers per run: the return of the
# *greedy* policy at the end (1: it walks to the far end; 0.1: to the near one) and the mean
# return of the episodes collected *while exploring*.

# %%
dqn_rows = ex.run_dqn_epsilon("torch", list(ex.EPSILON_SCHEDULES), SEEDS, DQN_STEPS)
dqn_stats = table(dqn_rows, ["greedy_return", "train_return"], f"DQN, {DQN_STEPS} env steps")
claim_stats(dqn_stats, {("greedy_return", "fixed 1.0"): (0.80, 0.40, 1.00),
                        ("greedy_return", "1.0 -> 0.05"): (0.62, 0.22, 1.00),
                        ("train_return", "1.0 -> 0.05"): (0.31, 0.12, 0.50),
                        ("greedy_return", "fixed 0.05"): (0.24, 0.02, 0.62),
                        ("greedy_return", "0 (greedy)"): (0.10,)}, "DQN")
claim_stats(dqn_stats, {("train_return", "fixed 1.0"): (0.105, 0.100, 0.110)}, "DQN", 0.0005)
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
bars(axes[0], dqn_stats, "greedy_return", "greedy policy at the end")
bars(axes[1], dqn_stats, "train_return", "episodes while exploring")
for ax, title in zip(axes, ("return of the greedy policy", "return while training")):
    ax.set(title=title, ylim=(0, 1.1), xlabel="epsilon schedule")
    ax.axhline(0.1, color="black", linestyle=":", linewidth=1)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(loc="upper right", fontsize=8)
print("saved", save_figure(fig, figure_dir() / "ch09_2_dqn_epsilon.png"))

# %% [markdown]
# ```{figcaption}
# DQN on the two-ended chain for each $\epsilon$ schedule: the return of the greedy policy and
# the return while training, means over seeds with 95% bootstrap intervals.
# ```
#
# **What to see.** Bars are means over seeds, whiskers the 95% bootstrap intervals; the
# dotted line is the near end's 0.1. The figures quoted are the full run's (5 seeds, 4000 env
# steps; quick mode runs one seed for 300 steps, too few to learn).
#
# * **Only exploration finds the far end.** With $\epsilon = 1$ throughout, the greedy policy
#   walks to the far end on 4 seeds of 5 (mean greedy return 0.80, CI [0.40, 1.00]) while its
#   own episodes earn almost nothing (0.105 [0.100, 0.110]): DQN is off-policy, and learns the
#   greedy policy's values from a random walk. The decay 1 -> 0.05 finds it on 3 seeds (0.62
#   [0.22, 1.00]) and earns the most while training (0.31 [0.12, 0.50]), once it exploits what
#   it found. A fixed 0.05 finds it on 1 seed (0.24 [0.02, 0.62]); $\epsilon = 0$ on none (0.10
#   on every seed: straight to the near end, whose 0.1 then looks like the best there is).
# * **The intervals are wide** with 5 seeds and an outcome of 0, 0.1 or 1 per run. Those of
#   $\epsilon = 1$ and $\epsilon = 0$ do not overlap, nor do the decay's and $\epsilon = 0$'s;
#   the fixed 0.05's overlaps both ends. One seed per setting could have ranked the middle
#   three in any order.
#
# ## 3. PPO: the entropy coefficient
#
# PPO samples its actions from $\pi$, so it explores as long as $\pi$ is not deterministic.
# The entropy bonus $c_H H[\pi]$ is the knob that keeps it so. Four values, 0, 0.01 (a common
# default), 0.1 and 0.5, on the same corridor (`ex.PPO_CHAIN`); the greedy return is that of
# the most likely action in every cell.

# %%
ppo_rows = ex.run_ppo_entropy("torch", [0.0, 0.01, 0.1, 0.5], SEEDS, PPO_STEPS)
ppo_stats = table(ppo_rows, ["greedy_return", "train_return"], f"PPO, {PPO_STEPS} env steps")
claim_stats(ppo_stats, {("greedy_return", c): (0.46, 0.10, 0.82) for c in (0.0, 0.01, 0.1, 0.5)},
            "PPO")
claim_stats(ppo_stats, {("train_return", 0.5): (0.304,), ("train_return", 0.0): (0.345,)}, "PPO",
            0.0005)
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
bars(axes[0], ppo_stats, "greedy_return", "greedy policy at the end")
bars(axes[1], ppo_stats, "train_return", "episodes while training")
for ax, title in zip(axes, ("return of the greedy policy", "return while training")):
    ax.set(title=title, ylim=(0, 1.1), xlabel="entropy coefficient c_H")
    ax.axhline(0.1, color="black", linestyle=":", linewidth=1)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(loc="upper right", fontsize=8)
print("saved", save_figure(fig, figure_dir() / "ch09_2_ppo_entropy.png"))
for seed in SEEDS:
    print(f"seed {seed}: greedy return by c_H",
          [r["greedy_return"] for r in ppo_rows if r["seed"] == seed])

# %% [markdown]
# ```{figcaption}
# PPO on the same chain for each entropy coefficient $c_H$, in the same layout.
# ```
#
# **What to see.** The same layout as DQN's (5 seeds, 8192 env steps). Here the knob does
# nothing measurable: every coefficient, from 0 to 0.5, ends with the same greedy return on
# every seed (far end on seeds 1 and 2, near end on seeds 0, 3 and 4: mean 0.46, CI [0.10,
# 0.82] for all four), and the training return moves only at 0.5 (0.304 against 0.345). Which
# end a run settles on is decided by its seed, not by $c_H$. One suspect: PPO normalises its
# advantages to mean 0 and std 1 in every batch (`normalize_advantages`), while the bonus adds
# at most $c_H \log 2$ per step (0.35 at $c_H = 0.5$) to an objective whose other term is then
# of size 1 whatever the rewards. The next cell switches the normalisation off, where the
# advantages are on the rewards' own scale (0.1 and discounted 1).
#
# The same four coefficients with `normalize_advantages=False`, the rest unchanged:

# %%
raw_rows = ex.run_ppo_entropy("torch", [0.0, 0.01, 0.1, 0.5], SEEDS, PPO_STEPS,
                              normalize_advantages=False)
raw_stats = table(raw_rows, ["greedy_return", "train_return"],
                  f"PPO, advantages not normalised, {PPO_STEPS} env steps")
fig, ax = plt.subplots(figsize=(8, 4))
for i, (stats, label) in enumerate(((ppo_stats, "advantages normalised (PPO's default)"),
                                    (raw_stats, "advantages on the rewards' scale"))):
    s = stats["greedy_return"]
    means = np.array([v["mean"] for v in s.values()])
    errors = np.array([[v["mean"] - v["mean_ci"][0], v["mean_ci"][1] - v["mean"]]
                       if v["mean_ci"] else [0.0, 0.0] for v in s.values()]).T
    ax.bar(np.arange(len(s)) + (i - 0.5) * 0.35, means, 0.35, yerr=errors, capsize=4,
           alpha=0.7, label=label)
ax.set_xticks(np.arange(4), ["0", "0.01", "0.1", "0.5"])
ax.set(xlabel="entropy coefficient c_H", ylabel="return of the greedy policy", ylim=(0, 1.1))
ax.axhline(0.1, color="black", linestyle=":", linewidth=1)
ax.legend(fontsize=8)
ax.grid(alpha=0.3, axis="y")
print("saved", save_figure(fig, figure_dir() / "ch09_2_ppo_entropy_advantage_scale.png"))
for seed in SEEDS:
    print(f"seed {seed}: greedy return by c_H, advantages not normalised",
          [r["greedy_return"] for r in raw_rows if r["seed"] == seed])
claim_stats(raw_stats, {("greedy_return", 0.1): (0.64, 0.28, 1.00),
                        ("greedy_return", 0.0): (0.46, 0.10, 0.82),
                        ("train_return", 0.1): (0.22,), ("train_return", 0.0): (0.35,),
                        ("greedy_return", 0.5): (0.10,), ("train_return", 0.5): (0.11,)},
            "PPO, advantages not normalised")

# %% [markdown]
# ```{figcaption}
# The greedy return of PPO for each entropy coefficient, with the advantages on the rewards'
# own scale and normalised.
# ```
#
# **What to see.** Greedy returns of both experiments, 5 seeds each (quick mode: 1 seed, 512
# steps). On the rewards' own scale the knob moves the outcome, both ways. $c_H = 0.1$ ends at
# the far end on 3 seeds of 5 (0, 2 and 3: mean 0.64, CI [0.28, 1.00]) against 2 without a
# bonus (1 and 2: 0.46 [0.10, 0.82]); it rescued seeds 0 and 3 but lost seed 1, and earns less
# while training (0.22 against 0.35): it keeps paying for its exploration. $c_H = 0.01$ is
# indistinguishable from 0. $c_H = 0.5$ is too much: the far end on no seed (0.10 on all five)
# and a training return of 0.11, about a random walk's, as the policy stays close to uniform.
# With 5 seeds the intervals of 0 and 0.1 overlap widely: the gain is a hint, not a finding;
# the harm of 0.5 is clear. The coefficient only means something against the scale of the
# advantages: with PPO's normalisation even 0.5 changed nothing, without it 0.5 swamps the
# reward.
#
# ## 4. A language model: the sampling temperature during RLOO
#
# A language model explores by sampling: each token from $\mathrm{softmax}(z_t/T)$. Below
# $T = 1$ the samples concentrate on what the policy already likes; above it they spread.
# `RLHFRun` (`core/rlhf/train.py`) samples at $T = 1$ and has no setting for another; here
# `ex.SampleAtTemperature` hands it a backend whose `generate` samples at $T$, while the
# log-probabilities, the loss and the KL stay the policy's own (at $T = 1$). RLOO on
# `sort-digits` (reward: the fraction of the 7 adjacent pairs of an 8-digit answer in order)
# from the uniform reference, $\beta = 0$, 60 updates of 64 completions. Measured on each
# trained policy: the mean reward of the batches it was *trained on* (sampled at $T$), and of
# a fresh batch sampled from the policy *itself* ($T = 1$), with the share of distinct
# completions in it.

# %%
temperatures = [0.5, 1.0] if QUICK else [0.5, 1.0, 1.5]
lm_rows = ex.run_lm_temperature(backends["torch"], temperatures, SEEDS, LM_UPDATES)
lm_stats = table(lm_rows, ["train_reward", "reward", "distinct"],
                 f"RLOO on sort-digits, {LM_UPDATES} updates")
claim_stats(lm_stats, {("train_reward", 0.5): (0.91, 0.88, 0.94),
                       ("reward", 0.5): (0.81, 0.79, 0.83),
                       ("distinct", 0.5): (0.96,), ("distinct", 1.0): (1.00,),
                       ("train_reward", 1.5): (0.71, 0.70, 0.72),
                       ("reward", 1.5): (0.80, 0.79, 0.81),
                       ("train_reward", 1.0): (0.78,), ("reward", 1.0): (0.83, 0.82, 0.84)},
            "RLOO, sampling temperature")
fig, ax = plt.subplots(figsize=(8, 4))
width = 0.35
for i, (metric, label) in enumerate((("train_reward", "training batches (sampled at T)"),
                                     ("reward", "the policy itself (T = 1)"))):
    s = lm_stats[metric]
    x = np.arange(len(s)) + (i - 0.5) * width
    means = np.array([v["mean"] for v in s.values()])
    errors = np.array([[v["mean"] - v["mean_ci"][0], v["mean_ci"][1] - v["mean"]]
                       if v["mean_ci"] else [0.0, 0.0] for v in s.values()]).T
    ax.bar(x, means, width, yerr=errors, capsize=4, alpha=0.7, label=label)
ax.set_xticks(np.arange(len(temperatures)), [f"T = {t}" for t in temperatures])
ax.set(ylabel="mean reward", ylim=(0.5, 1.0), title="RLOO, sampling temperature in training")
ax.axhline(0.55, color="black", linestyle=":", linewidth=1)  # the uniform reference's reward
ax.legend(fontsize=8)
ax.grid(alpha=0.3, axis="y")
print("saved", save_figure(fig, figure_dir() / "ch09_2_lm_temperature.png"))

# %% [markdown]
# ```{figcaption}
# RLOO trained at each sampling temperature $T$: the reward of the last training batches and
# of a fresh batch from the trained policy, with the reference's reward dotted.
# ```
#
# **What to see.** The dotted line is the uniform reference's reward, 0.55. Left bar of each
# pair: the last 10 training batches, sampled at $T$; right bar: a fresh batch from the
# trained policy itself. Full run: 5 seeds, 60 updates (quick mode: 1 seed, 2 updates, nothing
# learnt yet). A low temperature flatters: at $T = 0.5$ the training batches score 0.91 [0.88,
# 0.94] while the policy itself scores 0.81 [0.79, 0.83], and repeats itself more (96% of its
# completions distinct, against 100% at $T \ge 1$). A high one does the opposite: at $T = 1.5$
# the batches score 0.71 [0.70, 0.72] and the policy 0.80 [0.79, 0.81]. (Even at $T = 1$ the
# batches trail the final policy, 0.78 against 0.83: they are the last 10 updates', taken
# while it was still improving; the gaps at 0.5 and 1.5 are to be read against that one.) The
# policy trained at $T = 1$, on its own samples, is the best of the three, 0.83 [0.82, 0.84],
# though only by a few hundredths, and its interval overlaps that of $T = 0.5$. Two lessons: a
# training log sampled at $T \ne 1$ does not report the policy's reward, and sampling off the
# policy makes the gradient $\sum_t A \nabla\log\pi(y_t)$ one of another distribution's
# samples, which here cost a little at either side of 1.
#
# ## 5. The same experiment in TensorFlow
#
# The runners take either backend. Prompts, sampling noise and initial weights come from
# NumPy in core, so a TensorFlow run of a setting and seed repeats the PyTorch one: the same
# completions, rewards and updates, up to float32 rounding.

# %%
tf_rows = ex.run_lm_temperature(backends["tf"], [1.0], SEEDS[:1], LM_UPDATES)
torch_row = next(r for r in lm_rows if r["setting"] == 1.0 and r["seed"] == SEEDS[0])
for key in ("train_reward", "reward", "distinct"):
    print(f"T = 1, seed {SEEDS[0]}, {key:>12}: torch {torch_row[key]:.6f}  "
          f"tf {tf_rows[0][key]:.6f}  |diff| {abs(torch_row[key] - tf_rows[0][key]):.1e}")
    if not QUICK:  # the text's figures (below; the full run, 60 updates)
        quoted = {"train_reward": 0.776563, "reward": 0.828125, "distinct": 1.0}[key]
        claim(f"T = 1, seed 0, {key} (torch)", torch_row[key], quoted, 5e-7)
        claim(f"T = 1, seed 0, {key}: |torch - tf|", abs(torch_row[key] - tf_rows[0][key]),
              0.0, 5e-7)

# %% [markdown]
# The two frameworks sampled the same tokens at all 60 updates: training reward 0.776563,
# policy reward 0.828125 and 100% distinct completions in both, to the six decimals printed
# (|diff| 0). Their float32 updates differ in the last bits, but never enough to flip a
# sampled token, so the runs never part.
#
# ## Exercises
#
# Each exercise is a function with one line marked `# your code here`, preset to an answer
# so that this notebook runs; replace it with yours and run the check, which compares it on
# fresh inputs with the float64 reference and prints ✓ or ✗ with what it expected.
#
# 1. **The entropy PPO adds to its objective, in the framework of your choice.** From logits
#    $(B, A)$ return $H = -\sum_a \pi(a) \log\pi(a)$ per row, in PyTorch *or* TensorFlow (both
#    are below). Use a log-softmax, not $\log$ of a softmax: the check includes a logit of 800.
# 2. **Temperature.** Return $\log \mathrm{softmax}(z/T)$ per row. (What does it become as
#    $T \to 0$, and as $T \to \infty$? Try $T = 0.05$ and $T = 20$.)
# 3. **The epsilon schedule.** $\epsilon_t = \epsilon_0 + (\epsilon_1 - \epsilon_0)\min(1, t/D)$,
#    and $\epsilon_1$ when $D \le 0$.

# %%
import tensorflow as tf  # noqa: E402  (both frameworks are already loaded)
import torch  # noqa: E402

from duetrl.core.exercises import FRAMEWORK_TOLERANCE, compare  # noqa: E402
from duetrl.core.reference.functional import log_softmax  # noqa: E402
from duetrl.core.reference.policy import categorical_entropy  # noqa: E402
from duetrl.core.rl.dqn import linear_epsilon  # noqa: E402


def tempered_log_softmax(logits, temperature):
    """log softmax(z / T) per row."""
    z = logits / temperature
    return (
        z
        - z.max(-1, keepdims=True)
        - np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True))
    )  # your code here


def epsilon_at(step, start, final, decay_steps):
    """Linear from ``start`` to ``final`` over ``decay_steps``, then constant."""
    if decay_steps <= 0:
        return final
    return start + (final - start) * min(1.0, step / decay_steps)  # your code here


rng = np.random.default_rng(92)
entropy_cases = [(rng.normal(size=(4, 2)),), (3 * rng.normal(size=(3, 5)),),
                 (np.array([[800.0, 0.0, -3.0], [0.0, 0.0, 0.0]]),)]
temperature_cases = [(rng.normal(size=(3, 4)), t) for t in (0.05, 0.5, 1.0, 1.5, 20.0)]
epsilon_cases = [(s, 1.0, 0.05, 100) for s in (0, 1, 50, 99, 100, 250)]
epsilon_cases += [(10, 0.3, 0.3, 20), (5, 1.0, 0.0, 0), (0, 0.5, 1.0, 10)]

assert compare(2, tempered_log_softmax, lambda z, t: log_softmax(z / t), temperature_cases,
               "log softmax(z / T)")
assert compare(3, epsilon_at, linear_epsilon, epsilon_cases, "epsilon at step t")

# %% tags=["torch"]
def entropy_torch(logits):
    """H of softmax(logits) per row, in torch: (B, A) NumPy -> (B,)."""
    logits = torch.as_tensor(logits, dtype=torch.float32)
    log_p = torch.log_softmax(logits, dim=-1)
    return -(log_p.exp() * log_p).sum(-1)  # your code here


assert compare(1, entropy_torch, categorical_entropy, entropy_cases, "the entropy per row",
               FRAMEWORK_TOLERANCE, FRAMEWORK_TOLERANCE)

# %% tags=["tf"]
def entropy_tf(logits):
    """H of softmax(logits) per row, in tf: (B, A) NumPy -> (B,)."""
    logits = tf.constant(logits, tf.float32)
    log_p = tf.nn.log_softmax(logits, axis=-1)
    return -tf.reduce_sum(tf.exp(log_p) * log_p, axis=-1)  # your code here


assert compare(1, entropy_tf, categorical_entropy, entropy_cases, "the entropy per row",
               FRAMEWORK_TOLERANCE, FRAMEWORK_TOLERANCE)

# %% [markdown]
# A wrong answer gets a ✗ and what was expected. Here the entropy computed as $\log$ of a
# softmax, which overflows on the logit of 800 ($e^{800}$ is inf, inf/inf is NaN):

# %%
with np.errstate(all="ignore"):  # the overflow is the point: no warning printed for it
    assert not compare(1, lambda z: -(np.exp(z) / np.exp(z).sum(-1, keepdims=True) * np.log(
        np.exp(z) / np.exp(z).sum(-1, keepdims=True))).sum(-1), categorical_entropy,
        entropy_cases, "the entropy per row", FRAMEWORK_TOLERANCE, FRAMEWORK_TOLERANCE)
