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
# # The RLHF pipeline: supervised fine-tuning, a reward model, RL, each stage measured
#
# Outline 3.1.1 (the RLHF pipeline). InstructGPT (Ouyang et al. 2022) trains a language
# model to follow instructions in three stages, each starting from the one before:
#
# 1. **supervised fine-tuning (SFT)**: people write the ideal answers to prompts
#    (*demonstrations*) and the pretrained model $\pi_{\text{ref}}$ is trained to imitate
#    them, giving $\pi_{\text{SFT}}$;
# 2. **a reward model** $r_\phi$: people compare two answers, and $r_\phi$ is fitted to their
#    choices (Bradley-Terry, previous tutorial);
# 3. **RL** against $r_\phi$, with a KL penalty that keeps the policy near $\pi_{\text{SFT}}$:
#    maximise $\mathbb{E}_{y\sim\pi}[r_\phi(x, y)] - \beta\,\mathrm{KL}(\pi \,\|\, \pi_{\text{SFT}})$.
#
# The earlier tutorials of this chapter built stages 2 and 3 on a pretrained reference. Here
# we add stage 1 and run all three on `sort-digits`, measuring each stage's effect on the
# task's **true** reward and success rate, which we can compute because our "people" are
# a rule. The task's reward ignores the prompt (any sorted answer scores 1), but the
# demonstrations do not: they are the prompt's own digits, sorted.

# %%
import inspect

import numpy as np

from duetrl.core.backend import load_backends
from duetrl.core.reference import rlhf_sft as oracle
from duetrl.core.reference.gpt import cross_entropy
from duetrl.core.rlhf.pi_ref import PretrainSettings, load_reference, pretrain_reference
from duetrl.core.rlhf.pipeline import PipelineSettings, plot_pipeline, run_pipeline
from duetrl.core.rlhf.sft import DemonstrationData, SFTRun, make_demonstrations
from duetrl.core.rlhf.tasks import SORT_DIGITS
from duetrl.core.tutorial import claim, figure_dir, quick_mode

backends = load_backends(["torch", "tf"])
for backend in backends.values():
    backend.set_num_threads(1)  # tiny models: one thread per framework is fastest
QUICK = quick_mode()
task = SORT_DIGITS

# %% [markdown]
# ## 1. Demonstrations
#
# A demonstration is a prompt and the answer we want, stop token included. The "labeller"
# of each shipped task is a rule in `core/rlhf/sft.py`: sort-digits writes the prompt's digits
# in order, arithmetic the true sum, sentiment a positive phrase, format exactly the number
# of letters asked for. Every demonstration earns the full true reward.

# %%
prompts, answers = make_demonstrations(task, 4, np.random.default_rng(0))
for p, a, r in zip(prompts, answers, task.rewards(prompts, answers)):
    print(f"{p!r} -> {a!r}   true reward {r:.2f}")

# %% [markdown]
# ## 2. The SFT loss: next-token cross-entropy on the completion tokens only
#
# A demonstration is one token row $s = (x_1..x_P, y_1..y_L, \text{pad}...)$. SFT is the
# pretraining loss with a mask $m$ that keeps only the completion:
#
# $$L_{\text{SFT}}(\theta) = -\frac{\sum_{n,t} m_{n,t}\,\log p_\theta(s_{n,t+1} \mid s_{n,\le t})}{\sum_{n,t} m_{n,t}},
#   \qquad m_{n,t} = 1 \text{ iff } s_{n,t+1} \text{ is a completion token}.$$
#
# The prompt is given, not learned. Without the mask the same loop is more pretraining, and
# on sort-digits most of the loss would be spent predicting eight random prompt digits, which
# no model can. Both frameworks already have the weighted loss: the line
# `(weights * losses).sum() / weights.sum()` is the fraction above, with $w = m$.

# %% tags=["torch"]
print(f"# backends/torch/training.py\n{inspect.getsource(backends['torch'].cross_entropy_loss)}")

# %% tags=["tf"]
print(f"# backends/tf/training.py\n{inspect.getsource(backends['tf'].cross_entropy_loss)}")

# %%
print("# core/rlhf/sft.py, SFTRun.step: the mask goes in as the weights")
print(next(line for line in inspect.getsource(SFTRun.step).splitlines() if "weights)" in line))

# %% [markdown]
# The mask in columns (column $t$ predicts token $t+1$, as in the RL batch): for a prompt of
# 9 tokens and an answer of 9 (8 digits and the stop), columns 8 to 16 count. We pretrain a
# reference, hand the same batch to both frameworks' `LMTrainer` and compare with the
# float64 oracle (`core/reference/rlhf_sft.py`), masked and, for contrast, unmasked:

# %%
reference_path = "ch03_1_pipeline_reference.safetensors"
pretrain_reference(backends["torch"], task, reference_path,
                   PretrainSettings(steps=40 if QUICK else 150, documents=1000), progress=False)
config, params = load_reference(reference_path, task)
data = DemonstrationData(task, *make_demonstrations(task, 64, np.random.default_rng(1)))
x, y, w = data.batch("train", 16, np.random.default_rng(2))
print("mask of one row:", w[0].astype(int))
tokens = np.concatenate([x, y[:, -1:]], axis=1)
expected = oracle.sft_loss(params, tokens, w, config)
print(f"float64 oracle: masked {expected:.6f}, unmasked {oracle.unmasked_loss(params, tokens, config):.6f}")
for name, backend in backends.items():
    model = backend.GPT(config)
    backend.import_params(model, params)
    loss = backend.LMTrainer(model).eval_loss(x, y, w)
    print(f"{name:>5}: masked {loss:.6f} (|error| {abs(loss - expected):.1e})")

# %% [markdown]
# The two frameworks agree with the oracle to float32 precision. Masked and unmasked losses
# are close here, both near $\log 10 \approx 2.3$ nats a digit: to the pretrained reference
# the answer's digits are as random as the prompt's. What differs is where the gradient goes.
# Unmasked, half the positions are prompt digits, which no model can predict; masked, all of
# it goes to the answer, which the prompt makes predictable (its digits, sorted).
#
# ## 3. The whole pipeline, in both frameworks
#
# `run_pipeline` (`core/rlhf/pipeline.py`) runs the stages one after the other:
# pretraining, SFT on demonstrations, a reward model on preference pairs (pairs of reference
# samples as before, plus pairs of the SFT model's own two samples of a prompt, so $r_\phi$
# also sees where RL will start), then RLOO against $r_\phi$ from $\pi_{\text{SFT}}$ with
# $\pi_{\text{SFT}}$ as the KL reference, and, for contrast, the same RL against the true
# reward. Every stage is scored on the same fixed prompts with the same sampling noise: the
# true reward, the success rate (a fully sorted answer) and $r_\phi$'s score. In quick mode
# the sizes are tiny and only torch runs it; the full run gives both frameworks' tables.

# %%
if QUICK:
    settings = PipelineSettings(pretrain_steps=40, sft_steps=30, demonstrations=64,
                                reward_pairs=64, policy_pairs=16, reward_steps=20,
                                rl_updates=4, eval_prompts=16)
else:
    settings = PipelineSettings()  # 150 + 150 steps, 300 reward steps, 40 RL updates
names = ["torch"] if QUICK else ["torch", "tf"]
results = {name: run_pipeline(backends[name], settings, f"ch03_1_pipeline_{name}",
                              log=print) for name in names}
print(f"\n{'stage':<12}" + "".join(f" {n + ' true r':>13} {n + ' success':>14}" for n in names)
      + f" {'learned r (torch)':>18} {'KL':>6}")
for i, row in enumerate(results["torch"]["rows"]):
    cells = "".join(f" {results[n]['rows'][i]['true_reward']:13.3f}"
                    f" {results[n]['rows'][i]['success']:14.3f}" for n in names)
    print(f"{row['stage']:<12}{cells} {row['learned_reward']:18.3f} {row['kl']:6.2f}")
# the text's figures (below; the full run): (framework, stage) -> true reward, success
QUOTED = {("torch", "pretrained"): (0.54, 0.00), ("torch", "sft"): (0.88, 0.54),
          ("torch", "rl_learned"): (0.93, 0.570), ("tf", "rl_learned"): (0.93, 0.555),
          ("torch", "rl_true"): (0.959, 0.73)}
for (name, stage), (reward, success) in QUOTED.items():
    for row in results.get(name, {"rows": []})["rows"]:
        if row["stage"] == stage:
            claim(f"{name}, {stage}: true reward", row["true_reward"], reward,
                  0.0005 if stage == "rl_true" else 0.005)
            claim(f"{name}, {stage}: success", row["success"], success,
                  0.0005 if stage == "rl_learned" else 0.005)

# %%
path = plot_pipeline(results, figure_dir() / "ch03_1_the_rlhf_pipeline.png",
                     f"the RLHF pipeline on {task.name}")
print("saved", path)

# %% [markdown]
# ```{figcaption}
# The RLHF pipeline stage by stage: the true reward and the success rate of the reference,
# after SFT, and after RL against the reward model.
# ```
#
# **What to see.** Left, one group of bars per stage: the true reward (solid) and the success
# rate (hatched). Measured with the default settings: the pretrained reference writes 8
# random digits, true reward 0.54 and no answer fully sorted; 150 SFT steps on 256
# demonstrations lift it to 0.88 with 54% of the answers sorted: **SFT does most of the
# work**. RL against the learned reward adds a little (0.93 in both frameworks; success
# 0.570 in torch, 0.555 in tf); RL against the true reward, with the same budget and KL coefficient,
# gets further (0.959, success 0.73). The gap is the reward model's error: it ranks only about two
# held-out pairs in three right. Right, during RL: the learned reward the policy is trained
# on (solid) moves little and noisily, the true reward of the same samples (dashed) climbs,
# and the run against the true reward climbs faster. Torch and tf give the same numbers at
# every stage but one: the same seeds, the same noise. The exception is RL against the
# learned reward, because the two reward models, 300 float32 steps long, drift apart (as in
# the previous tutorial). In the quick run the sizes are too small for any of this: run it
# with `DUETRL_QUICK=0`.
#
# ## 4. The same pipeline from the command line
#
# Each stage is a command whose checkpoint the next one reads:
#
# ```
# duetrl rlhf pretrain --task sort-digits
# duetrl rlhf sft --task sort-digits
# duetrl rlhf reward-model --task sort-digits --sft-checkpoint runs/rlhf/sort-digits/sft.safetensors
# duetrl rlhf train --task sort-digits --sft-checkpoint runs/rlhf/sort-digits/sft.safetensors --reward learned --reward-model runs/rlhf/sort-digits/reward_model.safetensors
# ```
#
# and `duetrl rlhf pipeline --task sort-digits` runs all of them and prints the table above.
# A missing, damaged or mismatched checkpoint (a pretrained reference where the SFT model
# belongs, or another task's) is refused with a message naming `--sft-checkpoint`.

# %% [markdown]
# ## Exercises
#
# Each exercise is a function with one line marked `# your code here`, preset to an answer
# so that this notebook runs; replace it with yours and run the check, which compares it with
# the float64 reference and prints ✓ or ✗ with what it expected.
#
# 1. **The SFT mask.** Given the prompt length $P$, each row's completion length $L_n$ (stop
#    included) and the row width $T$, return $m$ of shape $(N, T-1)$: 1 in the columns
#    $P-1 \le t < P-1+L_n$, 0 elsewhere (NumPy).
# 2. **The masked SFT loss, in the framework of your choice.** From logits $(N, T-1, V)$,
#    targets $(N, T-1)$ and the mask, return $L_{\text{SFT}}$ in PyTorch *or* TensorFlow (both
#    below). One of the check's batches has logits of 80: compute the log-probabilities
#    stably.
# 3. **A demonstrator.** Write the demonstration of the `format` task: the prompt
#    `"len=n:"` asks for exactly $n$ letters of `abcdefgh`, then the stop. The check scores
#    yours with the task's true reward on 200 prompts; every one must earn 1.

# %%
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402

from duetrl.core.exercises import FRAMEWORK_TOLERANCE, compare, report  # noqa: E402
from duetrl.core.rlhf.tasks import get_task  # noqa: E402


def sft_mask(prompt_length, lengths, width):
    """m (N, width - 1): 1 where column t predicts a completion token."""
    t = np.arange(width - 1)[None, :]  # your code here
    return (
        (t >= prompt_length - 1) & (t < prompt_length - 1 + np.asarray(lengths)[:, None])
    ).astype(float)  # your code here


def format_demonstration(prompt, rng):
    """Exactly n letters of 'abcdefgh', then the stop '\\n', for the prompt 'len=n:'."""
    n = int(prompt[4:-1])
    return "".join(rng.choice(list("abcdefgh"), size=n)) + "\n"  # your code here


def loss_cases():
    rng = np.random.default_rng(7)
    cases = []
    for n, t, v, scale in ((2, 5, 4, 1.0), (3, 8, 13, 3.0), (2, 6, 5, 80.0)):
        logits = scale * rng.normal(size=(n, t, v))
        targets = rng.integers(0, v, size=(n, t))
        mask = oracle.completion_weights(3, rng.integers(1, t - 1, size=n), t + 1)
        cases.append((logits, targets, mask))
    return cases


def check_exercise_3(answer) -> bool:
    fmt = get_task("format")
    rng = np.random.default_rng(11)
    prompts = fmt.prompts(200, rng)
    try:
        completions = [answer(p, rng) for p in prompts]
        rewards = fmt.rewards(prompts, completions)
    except Exception as error:  # the student's code, whatever it raises
        return report(3, False, f"raised {type(error).__name__}: {error}")
    bad = int(np.argmin(rewards))
    if rewards[bad] < 1.0:
        return report(3, False, f"expected every demonstration to earn 1; {prompts[bad]!r} -> "
                                f"{completions[bad]!r} earns {rewards[bad]:.3f}")
    return report(3, True, f"all 200 demonstrations earn 1 (e.g. {prompts[0]!r} -> "
                           f"{completions[0]!r})")


mask_cases = [(9, np.array([9, 3]), 18), (6, np.array([1, 4, 2]), 10), (1, np.array([2]), 3)]
assert compare(1, sft_mask, oracle.completion_weights, mask_cases, "the SFT mask")
assert check_exercise_3(format_demonstration)

# %% tags=["torch"]
def sft_loss_torch(logits, targets, mask):
    """L_SFT in torch: NumPy (N, T-1, V), (N, T-1), (N, T-1) -> a scalar tensor."""
    logp = torch.log_softmax(torch.as_tensor(logits, dtype=torch.float32), dim=-1)
    picked = logp.gather(-1, torch.as_tensor(targets)[..., None])[..., 0]
    m = torch.as_tensor(mask, dtype=torch.float32)
    return -(m * picked).sum() / m.sum()  # your code here


assert compare(2, sft_loss_torch, cross_entropy, loss_cases(), "the masked SFT loss",
               FRAMEWORK_TOLERANCE, FRAMEWORK_TOLERANCE)

# %% tags=["tf"]
def sft_loss_tf(logits, targets, mask):
    """L_SFT in tf: NumPy (N, T-1, V), (N, T-1), (N, T-1) -> a scalar tensor."""
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=targets, logits=tf.constant(logits, tf.float32)
    )
    m = tf.constant(mask, tf.float32)
    return tf.reduce_sum(m * ce) / tf.reduce_sum(m)  # your code here


assert compare(2, sft_loss_tf, cross_entropy, loss_cases(), "the masked SFT loss",
               FRAMEWORK_TOLERANCE, FRAMEWORK_TOLERANCE)

# %% [markdown]
# A wrong answer gets a ✗ and what was expected. Here the loss with the prompt left in (the
# plain mean over every position, i.e. more pretraining, not SFT):

# %%
assert not compare(2, lambda logits, targets, mask: sft_loss_torch(logits, targets,
                                                                   np.ones_like(mask)),
                   cross_entropy, loss_cases(), "the masked SFT loss", FRAMEWORK_TOLERANCE,
                   FRAMEWORK_TOLERANCE)
