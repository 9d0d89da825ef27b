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
# # How to design a good reward function: five rewards for one task, and what RL does with each
#
# Outline 9.2.1 (how to design a reward), with 2.3.2 (reward design) and 3.1.4 (reward and
# objective). RL maximises the reward you wrote, not the one you meant: whatever the reward
# does not look at, the policy is free to change, and whatever it pays for by mistake, the
# policy will find. We take one task, write five rewards for it, train the same policy
# against each, and score every run on what we *meant*.
#
# The task is `sort-prompt`: after the prompt `"31415926:"` the answer must be `"11234569"`
# and the stop token. The **true objective** is that exact answer (the `success` rate); the
# **true reward** is its partial credit, the share of the 8 positions equal to the sorted
# prompt, halved when the stop is missing. The pretrained reference $\pi_{\text{ref}}$
# answers with the prompt's own digits in no order: it knows the format, not the goal.

# %%
import tempfile

import numpy as np

from duetrl.core.backend import load_backends
from duetrl.core.rlhf.pi_ref import PretrainSettings, load_reference, pretrain_reference
from duetrl.core.rlhf.reward_design import (
    DESIGNS,
    design_table,
    format_table,
    plot_designs,
    run_design,
    sample_profile,
)
from duetrl.core.rlhf.reward_training import RewardModelSettings, train_reward_model
from duetrl.core.rlhf.tasks import SORT_PROMPT
from duetrl.core.tutorial import claim, figure_dir, quick_mode

backends = load_backends(["torch", "tf"])
for backend in backends.values():
    backend.set_num_threads(1)  # tiny models: one thread per framework is fastest
QUICK = quick_mode()
folder = tempfile.mkdtemp()

# %% [markdown]
# ## 1. Five rewards, one task
#
# Each design is a function `r(prompts, completions)`, the same signature as every task's
# reward (core/rlhf/tasks.py). Here is what each pays for a few answers to `"31415926:"`:
# the right one, the right one without the stop, a constant sorted string, the prompt's
# digits in the wrong order, and a wrong answer that runs on past the limit.

# %%
probe = ["11234569\n", "11234569", "44444444\n", "96543211\n", "112345699"]
print(f"{'design':<12}" + "".join(f"{c!r:>14}" for c in probe) + "   rule")
for name, design in DESIGNS.items():
    if design.reward_fn is None:
        print(f"{name:<12}{'(fitted below)':>14}" + " " * 14 * (len(probe) - 1)
              + f"   {design.rule}")
        continue
    rewards = design.reward_fn(["31415926:"] * len(probe), probe)
    print(f"{name:<12}" + "".join(f"{r:14.3f}" for r in rewards) + f"   {design.rule}")
print(f"{'true':<12}" + "".join(f"{r:14.3f}" for r in SORT_PROMPT.rewards(
    ["31415926:"] * len(probe), probe)) + "   sort-prompt's own reward")

# %% [markdown]
# Read the columns. `pairs` (the rule of `sort-digits`, which never reads the prompt) pays
# the constant `"44444444"` as much as the right answer. `sparse` pays only the right answer
# with the stop. `no-stop` pays the right answer the same with or without the stop. Only
# `prompt+stop` ranks all five as we would.
#
# The fifth design is **learned**: a Bradley-Terry reward model (the tutorial of 3.1.4)
# fitted to pairs of $\pi_{\text{ref}}$'s answers, each pair labelled by the true reward. It
# is what RLHF has when there is no rule, only preferences.

# %%
reference_path = f"{folder}/reference.safetensors"
pretrain_reference(backends["torch"], SORT_PROMPT, reference_path,
                   PretrainSettings(steps=60 if QUICK else 300), progress=False)
reference = load_reference(reference_path, SORT_PROMPT)
reward_model, figures = train_reward_model(
    backends["torch"], RewardModelSettings(task="sort-prompt", steps=20 if QUICK else 300))
print(f"reward model: pairwise accuracy {figures['train_accuracy']:.3f} on its "
      f"{figures['pairs']} pairs, {figures['held_out_accuracy']:.3f} held out")

# %% [markdown]
# ## 2. The same RL run against each reward
#
# GRPO from the pretrained reference, $\beta = 0.01$, learning rate $5\cdot10^{-3}$, 8
# prompts of 8 completions per update, seed 0: the same settings, the same prompts and the
# same sampling noise for every design. Only the reward changes. Every run logs the design's
# own reward (what the policy sees) and the true reward of the same samples (what we meant).

# %%
SETTINGS = {"algo": "grpo", "beta": 0.01, "learning_rate": 5e-3, "prompts": 8, "seed": 0}
updates = 4 if QUICK else 150
runs = [run_design(backends["torch"], name, reference, updates,
                   reward_fn=reward_model if name == "learned" else None, **SETTINGS)
        for name in DESIGNS]
rows = design_table(runs)
print(format_table(rows))
# the text's figures (below: the full run, 150 updates), two decimals: design -> its reward
# at the start and the end, the true reward at the start and the end
QUOTED = {"pairs": (0.59, 1.00, 0.18, 0.05), "no-stop": (0.18, 0.39, 0.18, 0.19),
          "learned": (0.23, 0.41, 0.18, 0.10), "prompt+stop": (0.18, 0.41, 0.18, 0.41)}
for row in rows:
    for key, figure in zip(("initial_reward", "reward", "initial_true_reward", "true_reward"),
                           QUOTED.get(row["design"], ())):
        claim(f"{row['design']}: {key}", row[key], figure, 0.005)
    claim(f"{row['design']}: success", row["success"], 0.0, 0.005)
path = plot_designs(runs, figure_dir() / "ch09_2_reward_design.png",
                    f"GRPO on sort-prompt, one run per reward design (torch, {updates} updates)")
print("saved", path)

# %% [markdown]
# ```{figcaption}
# Reward designs for the LM: left, each design's own reward; middle, the true reward of the
# same samples; right, the share of completions that end with the stop token.
# ```
#
# **What to see.** Left, each design's own reward, the number the policy is trained to
# raise; middle, the true reward of the same samples; right, the share of completions that
# end with the stop token (5-update moving averages). A design is good when its left and
# middle curves rise together. In a full run (150 updates, torch, seed 0, on this machine):
#
# - `pairs` climbs from 0.59 to 1 on the left while the true reward *falls*, from 0.18 to
#   0.05: the policy writes one constant sorted string (mostly `"22222222"`, and it runs on
#   past the stop, which the pairs rule does not read either) whatever the prompt. The reward
#   ignored the prompt, so the policy does too.
# - `sparse` stays flat at 0 on the left, and the KL at 0: $\pi_{\text{ref}}$ never writes
#   the exact answer, every reward is 0, every group advantage is 0, and the policy never
#   moves. No loophole, and no learning either (exercise 3 counts how rare a success is).
# - `no-stop` rises from 0.18 to 0.39 on the left, but the right panel falls toward 0 (none
#   of the last samples stops): the policy stops emitting the stop token and runs on to the length limit, so the true reward
#   (0.19) is half its own.
# - `learned` rises from 0.23 to 0.41 on the left while the true reward falls from 0.18 to
#   0.10: the policy finds answers the reward model likes and the rule does not
#   (over-optimisation). Its answers keep the stop.
# - `prompt+stop` moves left and middle together, from 0.18 to 0.41, and the stop stays at
#   1; most of its answers are sorted, but few are the prompt's own digits yet.
#
# Be plain about the result: in 150 updates *no* design reaches the true objective (the
# exact answer), the success rate is 0 everywhere. The design that works is the one whose
# true reward rises, and it rises slowly: sorting the prompt is a real algorithm for a
# two-block GPT, learned here from a partial credit alone.
#
# The table's last column says, in measured shares, what the final samples look like.
# In quick mode the runs are a few updates long and show none of this; set
# `DUETRL_QUICK=0` to see it.
#
# **Why does the stop token go?** Nothing in `no-stop` pays for it. A rare run-on sample with
# a good answer gets a positive advantage, and the score-function gradient of a token of
# probability $p$ has a size of order $1 - p$: the rare continuation is pushed up hard, the
# likely stop only a little. Halving the reward without the stop (or subtracting a penalty,
# `--missing-stop-penalty`, TRL's `missing_eos_penalty`) gives run-ons a negative advantage.
# It must act *before* the stop is lost: once no completion of a group stops, the penalty is
# the same for all of them and the group advantage cancels it.

# %%
for run in runs:
    profile = sample_profile(run.prompts, run.completions)
    print(f"{run.design:<12} {run.prompts[0]} -> {run.completions[0]!r:14} "
          f"{run.prompts[1]} -> {run.completions[1]!r:14} distinct answers "
          f"{profile['distinct']:.2f}")

# %% [markdown]
# ## 3. The same design in both frameworks
#
# The runs above are torch's. The policy, the reference, the prompts and the sampling noise
# come from NumPy, so the tf backend, trained against the same reward, writes the same
# completions as long as the two float32 computations agree:

# %%
both = {name: run_design(backends[name], "no-stop", reference, 2 if QUICK else 20, **SETTINGS)
        for name in ("torch", "tf")}
for u in range(len(both["torch"].history["reward"])):
    t, f = (both[name].history for name in ("torch", "tf"))
    print(f"update {u + 1:2d}: own reward torch {t['reward'][u]:.4f} tf {f['reward'][u]:.4f}"
          f" | true {t['true_reward'][u]:.4f} {f['true_reward'][u]:.4f}"
          f" | KL {t['kl'][u]:.4f} {f['kl'][u]:.4f}")
same = [a == b for a, b in zip(both["torch"].history["reward"], both["tf"].history["reward"])]
print(f"updates with identical rewards in both frameworks: {sum(same)} of {len(same)}")

# %% [markdown]
# Identical rewards mean the same samples were drawn; the KL columns differ only in the last
# digits, the float32 rounding of two frameworks. Over many updates such differences can
# grow (training is chaotic) until one sampled token differs, and from there the two runs
# part ways, each finding the same kind of answer.
#
# ## Exercises
#
# Each exercise is a function with one line marked `# your code here`, preset to an answer
# so that this notebook runs; replace it with yours and run the check, which prints ✓ or ✗
# with what it expected.
#
# 1. **The true reward as tensors, in the framework of your choice.** From the ids of the
#    first 8 completion tokens `answers` (B, 8), the ids of the sorted prompts `targets`
#    (B, 8) and `stopped` (B,) (1 where the stop was emitted), return the reward
#    $r_b = \frac{1}{8}\sum_i [a_{b,i} = s_{b,i}]$, halved where the stop is missing, in
#    PyTorch *or* TensorFlow. The check compares it with the float64 reference
#    `positional_credit`.
# 2. **Close the loophole.** Write a reward that keeps the pairs rule's idea (reward sorted
#    answers) but cannot be fooled by a constant string. The check asks it to pay 1 for each
#    sorted prompt with the stop, less than 1/2 for a constant sorted answer that is not the
#    prompt's, and less for the prompt's digits in the wrong order than sorted.
# 3. **How much signal does the sparse reward give?** $\pi_{\text{ref}}$'s format draws each
#    answer digit from the prompt's digits, uniformly and independently. Return the
#    probability that such an answer is exactly the sorted prompt, for a prompt of any
#    length (hint: a digit that occurs $n_d$ times out of $L$). The check enumerates every
#    answer of a few short prompts.

# %%
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402

from duetrl.core.exercises import FRAMEWORK_TOLERANCE, compare, report  # noqa: E402
from duetrl.core.rlhf.reward_design import check_prompt_aware, positional_credit  # noqa: E402


def prompt_aware_reward(prompts, completions):
    """1 for the sorted prompt and the stop; little for any other answer."""
    return SORT_PROMPT.rewards(prompts, completions)  # your code here


def sparse_signal(prompt):
    """P(answer == sorted(prompt)) when each answer digit is drawn uniformly from prompt."""
    return np.prod(
        [(prompt.count(d) / len(prompt)) ** prompt.count(d) for d in set(prompt)]
    )  # your code here


def check_exercise_2(answer) -> bool:
    return check_prompt_aware(2, answer)


def check_exercise_3(answer) -> bool:
    """Enumerate all L^L draws of answer positions for a few short prompts."""
    import itertools

    for prompt in ("3141", "00000", "12345", "1122", "90"):
        target = "".join(sorted(prompt))
        draws = itertools.product(prompt, repeat=len(prompt))
        exact = sum("".join(d) == target for d in draws) / len(prompt) ** len(prompt)
        try:
            value = float(answer(prompt))
        except Exception as error:  # the student's code, whatever it raises
            return report(3, False, f"raised {type(error).__name__}: {error}")
        if not np.isclose(value, exact, rtol=1e-9, atol=0.0):
            return report(3, False, f"prompt {prompt!r}: expected {exact:.6g} (a count of "
                                    f"every draw), got {value:.6g}")
    full = float(answer("31415926"))
    return report(3, True, f"exact on 5 short prompts; for '31415926' P = {full:.3g}: one "
                           f"success in {1 / (64 * full):,.0f} batches of 64 completions")


rng = np.random.default_rng(7)
cases = []
for size in (4, 16):
    targets = np.sort(rng.integers(0, 10, size=(size, 8)), axis=1)
    answers = np.where(rng.random((size, 8)) < 0.5, targets, rng.integers(0, 10, size=(size, 8)))
    cases.append((answers, targets, (rng.random(size) < 0.5).astype(np.int64)))
assert check_exercise_2(prompt_aware_reward)
assert check_exercise_3(sparse_signal)

# %% tags=["torch"]
def credit_torch(answers, targets, stopped):
    """(B,) rewards in torch from (B, 8) ids, (B, 8) ids and (B,) 0/1."""
    share = (
        (torch.as_tensor(answers) == torch.as_tensor(targets)).float().mean(dim=1)
    )  # your code here
    return torch.where(torch.as_tensor(stopped).bool(), share, 0.5 * share)  # your code here


assert compare(1, credit_torch, positional_credit, cases, "the true reward on ids",
               atol=FRAMEWORK_TOLERANCE, rtol=FRAMEWORK_TOLERANCE)

# %% tags=["tf"]
def credit_tf(answers, targets, stopped):
    """(B,) rewards in tf from (B, 8) ids, (B, 8) ids and (B,) 0/1."""
    share = tf.reduce_mean(
        tf.cast(tf.equal(answers, targets), tf.float32), axis=1
    )  # your code here
    return tf.where(tf.cast(stopped, tf.bool), share, 0.5 * share)  # your code here


assert compare(1, credit_tf, positional_credit, cases, "the true reward on ids",
               atol=FRAMEWORK_TOLERANCE, rtol=FRAMEWORK_TOLERANCE)

# %% [markdown]
# A wrong answer gets a ✗ and what was expected. Here the pairs rule itself, offered as the
# fix of exercise 2:

# %%
assert not check_exercise_2(DESIGNS["pairs"].reward_fn)
