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
# # Reward design: a reward model learned from preferences, and how RL over-optimises it
#
# Outline 3.1.4 (reward design and the objective), 2.3.2 (rewards from human feedback) and
# 9.2.1 (how to design a reward). In the previous tutorial the reward was a rule we could
# compute. RLHF usually has no such rule: it has people's *choices* between two answers. A
# **reward model** $r_\phi$ is fitted to those choices, and RL then maximises
#
# $$J(\pi) = \mathbb{E}_{y\sim\pi}[r_\phi(x, y)] - \beta\,\mathrm{KL}(\pi \,\|\, \pi_{\text{ref}}).$$
#
# The catch (Gao, Schulman and Hilton 2022): $r_\phi$ is only right where it was trained. The
# harder RL pushes (the smaller $\beta$), the further the policy moves from those samples, and
# the more it finds what $r_\phi$ gets wrong: the *learned* reward keeps rising while the
# *true* reward falls. We build all of it on `sort-digits`, where the true reward is known, so
# we can watch both.

# %%
import inspect
import tempfile

import numpy as np

from duetrl.core.backend import load_backends
from duetrl.core.reference import rlhf as oracle
from duetrl.core.rlhf.overoptimisation import overoptimisation_table, plot_overoptimisation
from duetrl.core.rlhf.pi_ref import PretrainSettings, load_reference, pretrain_reference
from duetrl.core.rlhf.preferences import label_pairs, make_preference_pairs
from duetrl.core.rlhf.reward_training import RewardModelSettings, train_reward_model
from duetrl.core.rlhf.tasks import SORT_DIGITS
from duetrl.core.rlhf.train import RLHFRun, RLHFSettings
from duetrl.core.tutorial import figure_dir, quick_mode

backends = load_backends(["torch", "tf"])
for backend in backends.values():
    backend.set_num_threads(1)  # tiny models: one thread per framework is fastest
QUICK = quick_mode()
task = SORT_DIGITS
folder = tempfile.mkdtemp()

# %% [markdown]
# ## 1. Preference pairs, labelled by a rule the policy never sees
#
# Our "annotator" compares two answers to one prompt with the task's reward (the fraction of
# sorted adjacent pairs) and prefers the higher one; a tie says nothing and is dropped; with
# probability `label_noise` it errs. The answers come from the *reference distribution* only:
# 8 uniform digits and the stop token, what the pretrained $\pi_{\text{ref}}$ writes. Nothing
# in the data shows an answer of another length, or one with a ':' in it.

# %%
pairs = make_preference_pairs(task, 4, np.random.default_rng(0))
for p, w, lose, m in zip(pairs.prompts, pairs.chosen, pairs.rejected, pairs.true_margin):
    print(f"{p!r}: prefer {w!r} to {lose!r}   (true margin {m:+.3f})")

# %% [markdown]
# ## 2. The Bradley-Terry loss, in both frameworks
#
# Bradley and Terry (1952) model a choice as a logistic function of a score difference,
#
# $$P(y_w \succ y_l \mid x) = \sigma\big(r_\phi(x, y_w) - r_\phi(x, y_l)\big), \qquad
#   L(\phi) = -\frac{1}{N}\sum_n \log\sigma\big(r_\phi(x_n, y_{w,n}) - r_\phi(x_n, y_{l,n})\big).$$
#
# Only differences of $r_\phi$ matter: adding a constant changes nothing. $r_\phi$ is a GPT
# with a scalar head $v = h w + b$ read at the last completion token (the same `ValueHead` as
# PPO's value). Each framework writes the loss in three lines:

# %% tags=["torch"]
print(f"# backends/torch/rlhf.py\n{inspect.getsource(backends['torch'].bradley_terry_loss)}")

# %% tags=["tf"]
print(f"# backends/tf/rlhf.py\n{inspect.getsource(backends['tf'].bradley_terry_loss)}")

# %%
margins = np.array([2.0, 0.5, -1.0])  # r_w - r_l of three pairs
expected, accuracy = oracle.bradley_terry_loss(margins, np.zeros(3))  # float64 oracle
for name, b in backends.items():
    loss, acc = b.bradley_terry_loss(b.as_tensor(margins, "float32"),
                                     b.as_tensor(np.zeros(3), "float32"))
    print(f"{name:>5}: loss {float(b.to_numpy(loss)):.6f} (reference {expected:.6f}), "
          f"accuracy {float(b.to_numpy(acc)):.3f}")

# %% [markdown]
# ## 3. Training the reward model, side by side
#
# `train_reward_model` draws the pairs, weights and batch order with NumPy from one seed, so
# both frameworks start from the same model and see the same batches; each step is
# `RLHFLearner.update(batch, "reward_model")`. The model is deliberately weak: 1 block of
# width 16, 256 pairs. Afterwards it is *calibrated*, an affine map that keeps every
# preference: on fresh reference samples its mean and std are set to the true reward's,
# $r_{\text{learned}} = \mu_{\text{true}} + \sigma_{\text{true}}(r_\phi - \mu_\phi)/\sigma_\phi$,
# so both rewards start at about 0.55 and share one axis.
#
# (The two frameworks agree to float32 precision for the first ~25 steps; then rounding
# differences grow, as in any chaotic training run, and the two models end near each other
# in accuracy but not in weights.)

# %%
settings = RewardModelSettings(steps=150 if QUICK else 300)  # 256 pairs, seed 1
models = {}
for name, backend in backends.items():
    path = f"{folder}/reward_model_{name}.safetensors"
    models[name], figures = train_reward_model(backend, settings, path)
    print(f"{name:>5}: pairwise accuracy {figures['train_accuracy']:.3f} on its pairs, "
          f"{figures['held_out_accuracy']:.3f} on {settings.held_out} held-out pairs "
          f"({figures['parameters']} parameters, {figures['seconds']:.1f} s)")
probe = ["01234567\n", "00112233\n", "31415926\n", "98765432\n", "3\n", ":::::::::"]
learned = models["torch"](["31415926:"] * len(probe), probe)
true = task.rewards(["31415926:"] * len(probe), probe)
for y, r_l, r_t in zip(probe, learned, true):
    print(f"{y!r:>14}: learned {r_l:.3f}  true {r_t:.3f}")

# %% [markdown]
# About two pairs in three ranked right: better than chance, far from perfect. Look at the
# last two rows: answers unlike anything in the training pairs get whatever score the model
# happens to give them.
#
# ## 4. RL against the learned reward: over-optimisation
#
# `duetrl rlhf train --reward learned --reward-model PATH` swaps the task's reward for the
# model's (core/rlhf/train.py) and logs the task's reward beside it as `true_reward`. We run
# RLOO from the pretrained reference at several $\beta$ and plot both rewards.

# %%
reference_path = f"{folder}/reference.safetensors"
pretrain_reference(backends["torch"], task, reference_path, PretrainSettings(), progress=False)
reference = load_reference(reference_path, task)
betas = (0.001, 0.1) if QUICK else (0.001, 0.003, 0.01, 0.03, 0.1)
updates = 30 if QUICK else 80
reward_model = f"{folder}/reward_model_torch.safetensors"
histories, last = {}, {}
for beta in betas:  # what `duetrl rlhf overoptimisation` runs (core/rlhf/overoptimisation.py)
    run = RLHFRun(backends["torch"], RLHFSettings(algo="rloo", beta=beta, updates=updates,
                                                  reward="learned", reward_model=reward_model,
                                                  learning_rate=5e-3, prompts=8, missing_stop_penalty=0.0),
                  reference)
    history: dict[str, list[float]] = {}
    for u in range(updates):
        metrics, data = run.update(u)  # metrics["reward"]: learned; ["true_reward"]: the task's
        for key, value in metrics.items():
            history.setdefault(key, []).append(value)
    histories[beta], last[beta] = history, data
rows = overoptimisation_table(histories)
print(f"{'beta':>7} {'KL':>6} {'learned r':>10} {'true r':>7}")
for r in rows:
    print(f"{r['beta']:7g} {r['kl']:6.2f} {r['learned_reward']:10.3f} {r['true_reward']:7.3f}")
path = plot_overoptimisation(histories, figure_dir() / "ch03_1_overoptimisation.png",
                             "RLOO against a learned reward (torch)")
print("saved", path)

# %% [markdown]
# ```{figcaption}
# Over-optimisation of a learned reward model: left, the learned reward the policy is trained
# on (solid) and the true reward of the same samples (dashed) for each $\beta$; right, where
# each run ends.
# ```
#
# **What to see.** Left, during training (10-update moving averages): one colour per
# $\beta$, the solid line the learned reward the policy is trained on, the dashed one the
# true reward of the same samples. At the smallest $\beta$ the two part: the solid line keeps
# rising while the dashed one falls. At the largest they stay together. Right, the end of
# each run against its KL: the further the policy went from the reference, the wider the gap
# between the learned and the true reward, Gao et al.'s picture in a few points.
#
# **The same run in TensorFlow.** The reward model is a file of canonical weights, so the tf
# backend can be trained against the very model torch used. At the smallest $\beta$, from the
# same reference and the same noise:

# %%
tf_run = RLHFRun(backends["tf"], RLHFSettings(algo="rloo", beta=min(betas), updates=updates,
                                              reward="learned", reward_model=reward_model,
                                              learning_rate=5e-3, prompts=8, missing_stop_penalty=0.0),
                 reference)
tf_history: dict[str, list[float]] = {}
for u in range(updates):
    metrics, _ = tf_run.update(u)
    for key, value in metrics.items():
        tf_history.setdefault(key, []).append(value)
for name, h in (("torch", histories[min(betas)]), ("tf", tf_history)):
    row = overoptimisation_table({min(betas): h})[0]
    print(f"{name:>5}, beta {min(betas)}: KL {row['kl']:.2f}, learned r "
          f"{row['learned_reward']:.3f}, true r {row['true_reward']:.3f}")

# %%
data = last[min(betas)]  # the last batch of the smallest beta's run
print("what the policy writes at beta", min(betas), "->", data.completions[:4])
print("learned reward", data.rewards[:4].round(3), "| true reward",
      data.extras["true_reward"][:4].round(3))

# %% [markdown]
# At the smallest $\beta$ the policy drifts far from $\pi_{\text{ref}}$ (tens of nats) to text
# the reward model never saw (with these seeds a string of ':' or a one-digit answer) that
# it scores above the reference's average: the learned reward rises, the true reward
# collapses to about 0. At larger $\beta$ the KL term keeps the policy near the data and the
# two rewards move together. That is Gao et al.'s picture: the true reward is a rising-then-
# falling function of the distance from the reference, the proxy keeps rising.
#
# **Be honest about the seed.** With these settings the exploit shows; reward models of other
# seeds (0 and 3 with 256 pairs, for instance) happen to prefer repeated digits, which *are*
# sorted, and there the true reward rose with the learned one within 80 updates. What does
# not depend on the seed is the mechanism: the proxy is unconstrained off its data, and a
# small $\beta$ lets the policy go there.
#
# The other framework: above, tf against the torch-trained file ends where torch does;
# `duetrl rlhf overoptimisation --backend tf --reward-model FILE` gives the whole table (the
# same to 3 decimals at $\beta$ = 0.001, 0.01, 0.1). The *tf-trained* model of section 3 has other weights (the chaos above) and is exploited
# elsewhere: in 80 updates at $\beta = 0.1$ its true reward fell to 0.11 (KL 6.2 nats), while
# at $\beta = 0.001$ the policy found sorted repeated digits (true 0.68).
#
# Remedies, each a knob of this framework: a larger $\beta$ (or the adaptive controller,
# `--kl-target`); more and broader preference data; and *iterated* RLHF: label the policy's
# own samples and retrain the reward model (exercise 3).
#
# ## Exercises
#
# Each exercise is a function with one line marked `# your code here`, preset to an answer
# so that this notebook runs; replace it with yours and run the check, which compares it with
# the float64 reference and prints ✓ or ✗ with what it expected.
#
# 1. **A preference as a margin.** Under Bradley-Terry, what score difference $m$ makes
#    $y_w$ preferred with probability $p$? The check feeds your $m$ to the oracle's loss,
#    which must come out as $-\log p$. (What is $m$ for "3 times in 4"?)
# 2. **The Bradley-Terry loss, in the framework of your choice.** From the scores of the
#    chosen and the rejected answers (B,), return $L = -\frac{1}{B}\sum_b
#    \log\sigma(r_{w,b} - r_{l,b})$ in PyTorch *or* TensorFlow (both below). One of the
#    check's batches has a pair ranked wrong by 120: $\sigma(-120)$ is 0 in float32, so
#    $\log\sigma$ must be computed another way (which function of your framework does it?).
# 3. **The calibration.** From raw scores, the raw scores of fresh reference samples and
#    those samples' true rewards, return $r_{\text{learned}} = \mu_{\text{true}} +
#    \sigma_{\text{true}}(r_\phi - \mu_\phi)/\sigma_\phi$. The cell applies yours to the
#    probe of section 3: a positive slope keeps every preference, so the ranking of the
#    answers does not change.
# 4. **Iterated RLHF.** Pair the hacked policy's samples (`data` above) with reference
#    answers, label them with `label_pairs`, retrain with `extra_pairs=`, and return the new
#    model. The check asks it to prefer a sorted answer to the hack the old model liked best.

# %%
from duetrl.core.exercise_sets.rlhf import REWARD_MODEL  # noqa: E402
from duetrl.core.exercises import report  # noqa: E402
from duetrl.core.rlhf.preferences import encode_completions  # noqa: E402

check_exercise_1, check_exercise_2, check_exercise_3 = REWARD_MODEL
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402


def preference_margin(p):
    """The m with sigmoid(m) = p."""
    return np.log(p / (1 - p))  # your code here


def calibrate_scores(raw, raw_reference, true_reference):
    """mu_true + sigma_true (raw - mu_phi) / sigma_phi, statistics of the reference samples."""
    return (
        true_reference.mean()
        + true_reference.std() * (raw - raw_reference.mean()) / raw_reference.std()
    )  # your code here


def iterated_reward_model():
    """A reward model retrained with the hacked samples paired with reference answers."""
    rng = np.random.default_rng(5)
    fresh = [task.completion_fn(p, rng) for p in data.prompts]
    extra = label_pairs(task, data.prompts, data.completions, fresh)
    return train_reward_model(backends["torch"], settings, extra_pairs=extra)[0]  # your code here


def check_exercise_4(answer) -> bool:
    """The retrained model ranks a sorted answer above the hack the old model liked best."""
    worst = data.completions[int(np.argmax(data.rewards))]
    before = models["torch"](["31415926:"] * 2, ["01234567\n", worst])
    try:
        after = answer()(["31415926:"] * 2, ["01234567\n", worst])
    except Exception as error:  # the student's code, whatever it raises
        return report(4, False, f"raised {type(error).__name__}: {error}")
    scores = (f"old model {before[1]:.3f} vs sorted {before[0]:.3f}, retrained "
              f"{after[1]:.3f} vs sorted {after[0]:.3f}")
    if not after[0] > after[1]:
        return report(4, False, f"expected the retrained model to score the sorted '01234567' "
                                f"above the hack {worst!r}; {scores}")
    return report(4, True, f"the retrained model prefers '01234567' to the hack {worst!r}: "
                           f"{scores}")


assert check_exercise_1(preference_margin)
print(f"  3 times in 4: m = {preference_margin(0.75):.4f} = log 3")
assert check_exercise_3(calibrate_scores)
model = models["torch"]
raw = model.raw_scores(*encode_completions(model.mdp, ["31415926:"] * len(probe), probe))
print("  ranking of the probe, raw scores:", np.argsort(raw), "| calibrated:", np.argsort(learned))
assert check_exercise_4(iterated_reward_model)

# %% tags=["torch"]
def bradley_terry_torch(chosen, rejected):
    """-mean log sigmoid(r_w - r_l) in torch: NumPy (B,), (B,) -> a scalar tensor."""
    return -torch.nn.functional.logsigmoid(
        torch.as_tensor(chosen - rejected, dtype=torch.float32)
    ).mean()  # your code here


assert check_exercise_2(bradley_terry_torch)

# %% tags=["tf"]
def bradley_terry_tf(chosen, rejected):
    """-mean log sigmoid(r_w - r_l) in tf: NumPy (B,), (B,) -> a scalar tensor."""
    return tf.reduce_mean(
        tf.math.softplus(-tf.constant(chosen - rejected, tf.float32))
    )  # your code here


assert check_exercise_2(bradley_terry_tf)

# %% [markdown]
# A wrong answer gets a ✗ and what was expected. Here $\log(\sigma(m))$ computed as written:
# the pair ranked wrong by 120 makes it $\log 0 = -\infty$.

# %%
assert not check_exercise_2(lambda w, rej: -tf.reduce_mean(
    tf.math.log(tf.sigmoid(tf.constant(w - rej, tf.float32)))))
