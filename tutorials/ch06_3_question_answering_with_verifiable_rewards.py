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
# # Question answering with verifiable rewards (6.3.1)
#
# Some answers can be *checked by a program*: the sum of two numbers, the value a table gives
# for a key. Reinforcement learning with verifiable rewards (RLVR; DeepSeek-R1, 2025) trains
# a language model on such questions with a reward that is a rule, not a learned model:
# exact match of the final answer plus a small reward for the "reasoning, then answer"
# format. There is no reward model to over-optimise, and the reward says only *whether* the
# answer is right, never how to get there. We reproduce the recipe in miniature, in PyTorch
# and TensorFlow side by side: a supervised warm-up on demonstrations, then GRPO, and the
# figure that matters, held-out accuracy against the supervised model alone.
#
# The outline's three steps: the problem and its model (section 1), the algorithm and its
# implementation (section 2), results and their analysis (section 3). The same run from the
# command line: `duetrl qa train --json` (then `duetrl qa eval --checkpoint ...`).

# %%
import shutil
import tempfile

import numpy as np

from duetrl.core.backend import load_backends
from duetrl.core.cases.qa import problems
from duetrl.core.cases.qa.evaluate import held_out_questions, slips
from duetrl.core.cases.qa.exercises import CHECKS
from duetrl.core.cases.qa.rewards import FORMAT_WEIGHT, exact_match, format_reward, qa_rewards
from duetrl.core.cases.qa.settings import QASettings
from duetrl.core.cases.qa.tasks import QA_TASKS, careless_solution
from duetrl.core.cases.qa.train import QARun, plot_qa, stored_warm_up, warm_up
from duetrl.core.checkpoint import atomic_write
from duetrl.core.reference import qa_rewards as oracle
from duetrl.core.reference import rlhf_advantages
from duetrl.core.tutorial import (
    claim,
    figure_dir,
    quick_mode,
    read_stored_results,
    results_dir,
    retrain,
    write_stored_results,
)

backends = load_backends(["torch", "tf"])
for backend in backends.values():
    backend.set_num_threads(1)  # a GPT of 30k parameters: one thread per framework is fastest
QUICK = quick_mode()

# %% [markdown]
# ## 1. The problem and its model
#
# **Questions checked by code** (`core/cases/qa/problems.py`). Two families, made in code:
# arithmetic word problems (two numbers 0..99, four wordings) and lookups in a small fact
# table. Every question is read back by `solve`, which returns the only right answer: that
# is the verifier. A *problem* (the two numbers; the table and the key) is held out when a
# stable hash of it says so (one in ten): RL and the warm-up never see it in any wording, so
# held-out accuracy measures a skill, not recall.
#
# **Completions** have DeepSeek-R1's shape, `<t>reasoning</t><a>answer</a>` and a newline
# (the stop token). For a sum the reasoning is column addition with the carry written out.

# %%
rng = np.random.default_rng(0)
for family in ("arithmetic", "lookup"):
    question, problem = problems.draw(family, rng)
    print(f"{question!r}\n   gold:     {problem.completion()!r}")
    reasoning, answer = careless_solution(question)
    print(f"   careless: {'<t>' + reasoning + '</t><a>' + answer + '</a>'!r}")
held = np.mean([problems.held_out(f"{a}+{b}") for a in range(100) for b in range(100)])
print(f"held-out share of the 10,000 sums: {held:.3f}")

# %% [markdown]
# The warm-up's demonstrations are realistic: half of them come from a *careless*
# demonstrator who forgets the carry (`27 + 45 -> 62`) or reads the first row of the table
# whatever was asked, and works the slip through consistently. A model trained to imitate
# them can at best copy the mixture: on a problem with a carry it writes the slip about half
# the time. A verifier can tell the two apart; imitation cannot. That is the gap RL is for.
#
# **The rewards** (`core/cases/qa/rewards.py`, float64 oracle `core/reference/qa_rewards.py`).
# With $x$ the completion before the stop $s$ and $y^*$ the right answer:
#
# $$r_{\text{exact}}(c) = \mathbb{1}\big[\text{spans}_{\langle a\rangle}(x) = [y^*]\big],\qquad
#   r_{\text{format}}(c) = \mathbb{1}\big[c = \langle t\rangle R \langle/t\rangle
#   \langle a\rangle Y \langle/a\rangle s\big],\qquad
#   r(c) = r_{\text{exact}}(c) + w\, r_{\text{format}}(c),\ w = 0.5$$
#
# where the answer spans are the texts between each `<a>` and the next `</a>`, and $R$, $Y$
# hold no tag ($Y$ non-empty). The exact match compares text: `072` is not `72`, two answers
# are none. The format term pays for the shape alone, right or wrong.

# %%
question = problems.pad("what is 27 plus 45?")
for completion in ["<t>7+5=12 2+4+1=7</t><a>72</a>\n", "<t>7+5=12 2+4=6</t><a>62</a>\n",
                   "<t>x</t><a>72</a> so 72\n", "<t>x</t><a>72</a><a>72</a>\n", "72\n"]:
    r = qa_rewards([question], [completion])[0]
    assert r == oracle.qa_rewards([completion], ["72"], FORMAT_WEIGHT)[0]  # the spec agrees
    print(f"{completion!r:<40} exact {exact_match(completion, '72'):g} "
          f"format {format_reward(completion):g}  r = {r:g}")

# %% [markdown]
# **The model** is the book's GPT (2 blocks, width 32, 47 characters as tokens, about 30k
# parameters), the same class in both frameworks with canonical weights. The warm-up is
# next-token training on `question + completion` documents (`core/lm/train.py`); it is also
# $\pi_{\text{ref}}$, the model RL starts from. We make it once, in PyTorch, and load it in
# both frameworks: the same weights and the same sampling noise (drawn in NumPy) give the
# same completions.

# %%
SETTINGS = QASettings()  # the defaults: a 2000-step warm-up, then 100 GRPO updates
if QUICK:  # the same code on a model too small to learn anything: seconds, not minutes
    SETTINGS = QASettings(warmup_steps=40, warmup_documents=500, n_layer=1, n_embd=16,
                          prompts=2, group_size=4, updates=2, held_out=2, eval_every=2)
folder = tempfile.mkdtemp()
# The full build reads the warm-up this cell stored when run with DUETRL_RETRAIN=1 (about 40 s
# of CPU); quick mode and DUETRL_RETRAIN=1 train it here.
STORED_WARMUP = results_dir() / "ch06_3_qa_warmup.safetensors"
if QUICK or retrain():
    summary, reference = warm_up(backends["torch"], SETTINGS, f"{folder}/warmup.safetensors",
                                 progress=False)
    if not QUICK:
        atomic_write(STORED_WARMUP, lambda tmp: shutil.copyfile(f"{folder}/warmup.safetensors",
                                                                tmp))
    val_loss, parameters = summary["val_loss"], summary["parameters"]
else:
    reference, val_loss = stored_warm_up(STORED_WARMUP, SETTINGS)
    parameters = sum(v.size for v in reference[1].values())
print(f"warm-up: {SETTINGS.warmup_steps} steps, validation loss {val_loss:.3f} nats/token, "
      f"{parameters} parameters")
questions = held_out_questions(SETTINGS.family, SETTINGS.held_out, SETTINGS.seed)
runs = {name: QARun(b, SETTINGS.rl_settings(), reference, questions, SETTINGS.eval_every)
        for name, b in backends.items()}
assert runs["torch"].warmup.completions == runs["tf"].warmup.completions
for q, c in zip(questions[:3], runs["torch"].warmup.completions):
    print(f"{q.strip()!r:<40} -> {c!r}")

# %% [markdown]
# ## 2. The algorithm: GRPO on the verifiable reward
#
# Each update draws $P$ training questions and samples $k$ completions of each (the group)
# at temperature 1. The group is its own baseline (Shao et al. 2024):
#
# $$A_i = \frac{r_i - \operatorname{mean}(r_1..r_k)}{\operatorname{std}(r_1..r_k) + 10^{-4}}$$
#
# with the unbiased std; a group whose completions all score the same teaches nothing
# ($A = 0$). Every token of completion $i$ gets $A_i$ in the clipped objective
#
# $$L(\theta) = -\frac{1}{N}\sum_i \frac{1}{|y_i|}\sum_t \min\big(\rho_{it} A_i,\
#   \operatorname{clip}(\rho_{it}, 1-\epsilon, 1+\epsilon) A_i\big)
#   + \beta\, k_3,\qquad \rho_{it} = \frac{\pi_\theta(y_{it} \mid \cdot)}
#   {\pi_{\theta_\text{old}}(y_{it} \mid \cdot)}$$
#
# (one gradient step per batch, so $\rho = 1$ at the step and the clip is inactive; $\beta =
# 0$ by default: the format reward and a small learning rate keep the policy near the
# warm-up). Sampling, rewards and advantages are host arrays written once in `core/`; the
# loss and the step are written twice, `backends/torch/rlhf.py` and `backends/tf/rlhf.py`.
# One update in each framework, from the same weights:

# %%
rows = {name: run.step() for name, run in runs.items()}
assert runs["torch"].last.completions == runs["tf"].last.completions  # same tokens sampled
batch = runs["torch"].last
advantages = rlhf_advantages.group_advantages(batch.rewards, SETTINGS.group_size)
for completion, r, a in list(zip(batch.completions, batch.rewards,
                                advantages))[:SETTINGS.group_size]:
    print(f"{completion!r:<36} r = {r:.1f}  A = {a:+.3f}")
print(f"loss: torch {rows['torch']['loss']:.6f}, tf {rows['tf']['loss']:.6f}")
assert abs(rows["torch"]["loss"] - rows["tf"]["loss"]) < 1e-4

# %% [markdown]
# ## 3. Results and analysis
#
# Both frameworks finish the run from that same warm-up. Every `eval_every` updates the
# policy answers the held-out questions: **pass@1** (four samples per question at
# temperature 1, the mean of their exact match; what DeepSeek-R1 reports and what RL
# trains) and **greedy** accuracy (the most likely token at each step).

# %%
for name, run in runs.items():
    while not run.finished():
        run.step()
    print(f"{name:>5}: held-out pass@1 {run.warmup.accuracy:.3f} -> {run.latest.accuracy:.3f}"
          f", greedy {run.warmup.greedy_accuracy:.3f} -> {run.latest.greedy_accuracy:.3f}, "
          f"{run.samples / run.step_seconds:.0f} samples/s")
# the text's figures for seed 0 (the table of section 3, the full run)
QUOTED = {0: (0.588, 0.575, 0.754, 0.865), 1: (0.656, 0.725, 0.831, 0.985),
          2: (0.710, 0.885, 0.858, 1.000)}  # seed: pass@1, greedy before; pass@1, greedy after


def seed_figures(run):
    """A run's row of the seeds table: held-out pass@1 and greedy, warm-up and after GRPO."""
    return [run.warmup.accuracy, run.warmup.greedy_accuracy, run.latest.accuracy,
            run.latest.greedy_accuracy]


def claim_seed(seed, measured):
    """Check the table's row of ``seed`` against what a run measured."""
    for what, value, figure in zip(("warm-up pass@1", "warm-up greedy", "pass@1 after GRPO",
                                    "greedy after GRPO"), measured, QUOTED[seed]):
        claim(f"seed {seed}: {what}", value, figure, 0.0005)


claim_seed(SETTINGS.seed, seed_figures(runs["torch"]))
path = plot_qa({name: run.history for name, run in runs.items()},
               figure_dir() / "ch06_3_qa_curves.png", runs["torch"].warmup.accuracy,
               f"GRPO on {SETTINGS.task}: held-out accuracy, PyTorch and TensorFlow")
print("saved", path)

# %% [markdown]
# ```{figcaption}
# Question answering with a verifiable reward: the accuracy of each framework's run against
# the update, from the accuracy of the warm-up model.
# ```
#
# **Where the gain comes from.** Split the held-out questions by what the careless
# demonstrator gets wrong (sums with a carry) and what it gets right (sums without): the
# warm-up model copied the slip, RL removes it.

# %%
for label, evaluation in (("warm-up", runs["torch"].warmup), ("GRPO", runs["torch"].latest)):
    split = slips(evaluation)
    print(f"{label:>8}: greedy accuracy on sums with a carry {split['slip_prone_accuracy']:.3f}"
          f" (the carry forgotten in {split['slip_rate']:.3f}), without "
          f"{split['other_accuracy']:.3f}")

# %% [markdown]
# **Across seeds.** One seed proves little (chapter 8.3). Each seed below has its own
# warm-up, questions and noise (full mode only: about a minute each). The full build reads
# the two runs' figures from `tutorials/results/ch06_3_qa_seeds.json`, which this cell wrote
# when run with `DUETRL_RETRAIN=1` (it trains them then, and writes the file again).
#
# What the full run of this page measured with the defaults (torch; seed 0 is the run
# above, seeds 1 and 2 the cell below), held-out pass@1 / greedy:
#
# | seed | warm-up | after 100 GRPO updates |
# |---|---|---|
# | 0 | 0.588 / 0.575 | 0.754 / 0.865 |
# | 1 | 0.656 / 0.725 | 0.831 / 0.985 |
# | 2 | 0.710 / 0.885 | 0.858 / 1.000 |
#
# RL raised both figures on every seed, pass@1 by 0.15 to 0.18.

# %%
SEEDS = [] if QUICK else [1, 2]
STORED_SEEDS = results_dir() / "ch06_3_qa_seeds.json"
if retrain() or QUICK:
    seeds = {}
    for seed in SEEDS:
        settings = QASettings(seed=seed)
        _, ref = warm_up(backends["torch"], settings, f"{folder}/warmup_{seed}.safetensors",
                         False)
        run = QARun(backends["torch"], settings.rl_settings(), ref,
                    held_out_questions(settings.family, settings.held_out, seed), 10**6)
        while not run.finished():
            run.step()
        seeds[seed] = seed_figures(run)
    if seeds:  # stored for the full build (the whole of QASettings' defaults but the seed)
        write_stored_results(STORED_SEEDS, "ch06_3-qa-seeds/1", {str(k): v for k, v in
                                                                 seeds.items()})
else:
    seeds = {int(k): v for k, v in read_stored_results(
        STORED_SEEDS, "ch06_3-qa-seeds/1", "DUETRL_RETRAIN=1 python tutorials/"
        "ch06_3_question_answering_with_verifiable_rewards.py").items()}
for seed, (before, greedy_before, after, greedy_after) in seeds.items():
    print(f"seed {seed}: pass@1 {before:.3f} -> {after:.3f}, "
          f"greedy {greedy_before:.3f} -> {greedy_after:.3f}")
    claim_seed(seed, (before, greedy_before, after, greedy_after))

# %% [markdown]
# **What did it, and what did not.** The first version of this case study warmed up for
# 1000 steps on clean demonstrations, and RL did not raise held-out accuracy at any learning
# rate: the warm-up landed either below a cliff (500 steps: greedy 0.005, almost no right
# sample to reinforce) or above it, and the verifier had nothing left to add that the
# demonstrations had not shown. Two changes made RL reliable:
#
# 1. *Demonstrations with realistic slips* (half of them careless): the supervised model now
#    has a ceiling, the demonstrator's own accuracy, which a reward that checks the answer can
#    break and imitation cannot.
# 2. *A long enough warm-up* (2000 steps instead of 1000): with 1000, the three seeds landed
#    in three different places (greedy 0.665, 0.095, 0.585) and GRPO helped one (pass@1 0.23
#    -> 0.43 in 250 updates), could do nothing for the second, and ruined the third (greedy
#    0.585 -> 0.035: when sampled answers are almost never right, the format term is most of
#    the reward and GRPO reinforces well-formed wrong answers). RL sharpens a skill the model
#    has; it does not create one from rare successes in 100 updates.
#
# Not measured here: group size, a curriculum from small numbers, a KL term ($\beta > 0$),
# a reward on pass@k, and the scratchpad against direct answers (`--no-scratchpad`, task
# `qa-arithmetic-direct`) are all flags of `duetrl qa train`: try them.

# %% [markdown]
# ## Exercises
#
# Each exercise is a function with one line marked `# your code here`, preset to an answer
# so the notebook runs; replace it with yours and run the check, which compares it with the
# float64 reference on fresh inputs and prints ✓ or ✗ with what it expected.
#
# 1. **The format reward.** Write $r_{\text{format}}(c)$ for a completion string: 1 for
#    `<t>R</t><a>Y</a>` followed by the stop `"\n"` and nothing else, $R$ and $Y$ free of `<`
#    and `>`, $Y$ non-empty; else 0. (Why must trailing text after `</a>` cost the format?)
# 2. **The group-relative advantage, in the framework of your choice.** Write GRPO's $A_i$
#    from a 1-D array of rewards laid out prompt by prompt and the group size $k$, in torch
#    *or* tf (both are below; the check reads your tensor back). Use the unbiased std.
# 3. **pass@k.** From $n$ samples of which $c$ are right, the unbiased estimate of the
#    chance that at least one of $k$ samples is right is $1 - \binom{n-c}{k} / \binom{n}{k}$
#    (Chen et al. 2021). Write it; then think about a reward that pays a group for its best
#    completion: what would it do to the advantage of the others?

# %%
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402

check_exercise_1, check_exercise_2, check_exercise_3 = CHECKS


def my_format_reward(completion):
    """1.0 for '<t>R</t><a>Y</a>\\n' exactly (R, Y without < or >, Y non-empty), else 0.0."""
    body, stop, rest = completion.partition("\n")
    return float(
        bool(stop)
        and not rest
        and __import__("re").fullmatch(r"<t>[^<>]*</t><a>[^<>]+</a>", body) is not None
    )  # your code here


def my_pass_at_k(n, c, k):
    """1 - C(n - c, k) / C(n, k)."""
    return 1.0 - float(np.prod([(n - c - i) / (n - i) for i in range(k)]))  # your code here


assert check_exercise_1(my_format_reward)
assert check_exercise_3(my_pass_at_k)

# %% tags=["torch"]
def my_advantages_torch(rewards, k):
    """GRPO's advantages in torch: rewards (N,) NumPy, k -> (N,) tensor."""
    g = torch.as_tensor(rewards, dtype=torch.float32).reshape(-1, k)
    return (((g - g.mean(1, keepdim=True)) / (g.std(1, keepdim=True) + 1e-4))
            .reshape(-1))  # your code here


assert check_exercise_2(my_advantages_torch)

# %% tags=["tf"]
def my_advantages_tf(rewards, k):
    """GRPO's advantages in tf: rewards (N,) NumPy, k -> (N,) tensor."""
    g = tf.reshape(tf.constant(rewards, tf.float32), (-1, k))
    return tf.reshape(
        (g - tf.reduce_mean(g, 1, keepdims=True))
        / (tf.math.reduce_std(g, 1, keepdims=True) * (k / (k - 1)) ** 0.5 + 1e-4),
        (-1,),
    )  # your code here


assert check_exercise_2(my_advantages_tf)

# %% [markdown]
# A wrong answer gets a ✗ and what was expected. Here tf's `reduce_std` without Bessel's
# correction (it divides by $k$, torch's `std` by $k - 1$: DESIGN.md's pitfall):

# %%
assert not check_exercise_2(lambda r, k: tf.reshape(
    (tf.reshape(r, (-1, k)) - tf.reduce_mean(tf.reshape(r, (-1, k)), 1, keepdims=True))
    / (tf.math.reduce_std(tf.reshape(r, (-1, k)), 1, keepdims=True) + 1e-4), (-1,)))
print("tasks:", ", ".join(QA_TASKS))
