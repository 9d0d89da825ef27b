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
# # RL for language models: the text MDP, the objective, and a check against the exact optimum
#
# Outline 3.1 (RL-based training of large language models), 9.2.1 (how to design a reward)
# and 9.3.3 (trading generation quality against reward). A language model *is* a policy:
# given the text so far it puts a probability on every next token. RL fine-tuning samples
# completions, scores them, and moves the policy toward the better ones, while a KL term
# keeps it near a frozen reference model. We do all of it on a GPT small enough to train on
# a laptop CPU in seconds, in PyTorch and TensorFlow side by side, and check the result
# against the one case where the answer is known in closed form.
#
# **3.1.1 The algorithm's flow**, one update:
#
# 1. draw prompts; sample $k$ completions for each with the policy $\pi_\theta$ (the *group*);
# 2. score each completion with the reward $r$, and the log-probabilities of its tokens
#    under the frozen reference $\pi_{\text{ref}}$;
# 3. turn scores into advantages (a baseline from the other completions of the same prompt);
# 4. take a gradient step on $-\sum_t A \log\pi_\theta(y_t \mid x, y_{<t})$ (plus clipping
#    or a KL term, depending on the algorithm).
#
# Steps 1-3 are host arrays, written once in `core/`; step 4 is tensors, written twice in
# `backends/torch/objectives.py` and `backends/tf/objectives.py`.

# %%
import numpy as np

from duetrl.core.backend import load_backends
from duetrl.core.plots import plot_curves
from duetrl.core.reference import rlhf_advantages as oracle
from duetrl.core.rlhf.mdp import SequenceMDP, rollout
from duetrl.core.rlhf.optimum import optimum_limits, sort_digits_optimum
from duetrl.core.rlhf.pi_ref import PretrainSettings, load_reference, pretrain_reference
from duetrl.core.rlhf.tasks import SORT_DIGITS
from duetrl.core.rlhf.train import RLHFRun, RLHFSettings, plot_reward_kl, summarize
from duetrl.core.tolerances import assert_close
from duetrl.core.tutorial import claim, figure_dir, quick_mode

backends = load_backends(["torch", "tf"])
for backend in backends.values():
    backend.set_num_threads(1)  # a tiny GPT: one thread per framework is fastest
QUICK = quick_mode()

# %% [markdown]
# ## 1. 3.1.2-3.1.3 The environment: a text MDP
#
# | MDP part | for a language model |
# |---|---|
# | state $s_t$ | the prompt and the completion tokens so far |
# | action $a_t$ | the next token, one of $V$ ids |
# | policy | $\pi_\theta(a_t \mid s_t) = \text{softmax}(\text{GPT}(s_t))_{a_t}$ |
# | transition | deterministic: append $a_t$ |
# | end | *terminated* at the stop token, *truncated* at the length limit |
# | reward | $r(\text{prompt}, \text{completion})$ once, at the end |
#
# The task `sort-digits`: the prompt is 8 random digits and ':', the answer 8 digits and a
# newline (the stop token), the reward the fraction of the 7 adjacent pairs with
# $x_{i+1} \ge x_i$. A random answer scores $P(b \ge a) = 55/100$.
#
# The reward ignores the prompt: `00000000` scores 1.0 after any prompt, and so does any
# other non-decreasing answer. That is on purpose. A reward that depends on the answer alone
# makes the optimum of the KL-regularised objective the same for every prompt: a Markov chain
# over the digits whose 10 x 10 transfer matrix section 3.1.5 computes exactly, so every learner
# below can be placed against it. It also means a policy that collapses onto one sorted answer, whatever
# it was asked, has found the optimum of this reward, not a bug.

# %%
task = SORT_DIGITS
mdp = SequenceMDP.for_task(task)
print(task.description)
print("alphabet", repr(task.alphabet), "| stop", repr(task.stop),
      "| length limit", mdp.max_new_tokens, "tokens")
for completion in ["01234567\n", "10000000\n", "98765432\n", "0123\n"]:
    print(f"r({completion!r}) = {task.rewards(['31415926:'], [completion])[0]:.4f}")

state = mdp.reset("31415926:")
for action in mdp.tokenizer.encode("1123\n"):
    state, terminated, truncated = mdp.step(state, action, prompt_length=9)
print("final state", repr(mdp.tokenizer.decode(state)), "terminated", terminated)

# %% [markdown]
# The reference model is a GPT pretrained on the task's corpus: prompts followed by *random*
# 8-digit answers. It learns the format (8 digits, then stop), not the goal, so its samples
# score about 0.55. Pretraining uses the language-model loop of chapter 2
# (`core/lm/train.py`); the checkpoint is canonical weights, loaded by both frameworks.

# %%
import tempfile  # noqa: E402

path = f"{tempfile.mkdtemp()}/reference.safetensors"  # canonical weights, safetensors
info = pretrain_reference(backends["torch"], task, path, PretrainSettings(steps=300),
                          progress=False)
config, reference_params = load_reference(path, task)
print(f"reference: {info['parameters']} parameters, {info['seconds']:.1f} s, "
      f"val loss {info['val_loss']:.3f}")

policies = {}
for name, backend in backends.items():
    policies[name] = backend.GPT(config)
    backend.import_params(policies[name], reference_params)
prompts = task.prompts(4, np.random.default_rng(1))
samples = {name: rollout(b, policies[name], None, mdp, prompts, group_size=2, seed=7)
           for name, b in backends.items()}
for p, c_torch, c_tf, r in zip(samples["torch"].prompts, samples["torch"].completions,
                               samples["tf"].completions, samples["torch"].rewards):
    print(f"{p!r} -> torch {c_torch!r}  tf {c_tf!r}  r = {r:.3f}")
assert samples["torch"].completions == samples["tf"].completions  # same weights, same noise

# %% [markdown]
# The noise that picks each token is drawn in NumPy (Gumbel-max, `core/sampling.py`), so
# the two frameworks sample the same completions from the same weights. The batch is
# right-padded: `mask[b, t] = 1` when `tokens[b, t+1]` is a completion token, the stop token
# included and everything after it excluded.

# %%
batch = samples["torch"]
print("tokens", batch.tokens.shape, "mask", batch.mask.shape)
print("mask of row 0:", batch.mask[0].astype(int))

# %% [markdown]
# ## 2. 3.1.4 The objective, and the KL term in both frameworks
#
# RL for language models maximises
#
# $$J(\pi) = \mathbb{E}_{y\sim\pi}[r(y)] - \beta\, \mathrm{KL}(\pi \,\|\, \pi_{\text{ref}}).$$
#
# The KL of whole completions is estimated from the sampled tokens' log-probabilities, with
# $l = \log\pi_{\text{ref}}(y_t) - \log\pi(y_t)$: $k_1 = -l$ (unbiased, sometimes negative),
# $k_2 = l^2/2$, $k_3 = e^l - 1 - l$ (unbiased and $\ge 0$). Folding $-\beta k_1$ into the
# reward (RLOO, PPO) gives exactly the gradient of $J$; putting $\beta k_3$ into the loss
# (GRPO) gives the gradient of $\mathrm{KL}(\pi_{\text{ref}} \| \pi)$ instead. Here is the
# log-probability of the tokens, and $k_3$, in each framework:

# %%
# both frameworks are already loaded (load_backends imported torch first)
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402

tokens = batch.tokens
logits_torch = policies["torch"](torch.as_tensor(tokens[:, :-1]))  # (B, T-1, V)
logp_torch = torch.gather(torch.log_softmax(logits_torch, -1), -1,
                          torch.as_tensor(tokens[:, 1:, None]))[..., 0]  # (B, T-1)
logits_tf = policies["tf"](tokens[:, :-1])
logp_tf = tf.gather(tf.nn.log_softmax(logits_tf, -1), tokens[:, 1:], batch_dims=2)
assert_close(logp_torch.detach().numpy() * batch.mask, batch.old_logp, "float32_model",
             "torch log-probs vs the sampler's")
assert_close(logp_tf.numpy(), logp_torch.detach().numpy(), "float32_model", "tf vs torch")

# the design card's test vector: pi = 0.5, pi_ref = 0.25 for one sampled token
lp, lp_ref = np.log([[0.5]]), np.log([[0.25]])
for name, b in backends.items():
    k = [float(b.to_numpy(f(b.as_tensor(lp), b.as_tensor(lp_ref)))[0, 0])
         for f in (b.kl_k1, b.kl_k2, b.kl_k3)]
    print(f"{name:>5}: k1 {k[0]:.6f}  k2 {k[1]:.6f}  k3 {k[2]:.6f}")

# %% [markdown]
# **9.2.1 Reward design.** Whatever the reward does not look at, RL is free to change. Our
# reward reads the first 8 characters of the answer and never asks for the stop token, so at
# a small $\beta$ the policy may stop emitting it (a 9th digit costs nothing). The KL term is
# all that holds it; `missing_stop_penalty` (TRL's `missing_eos_penalty`) would add a cost,
# at the risk of teaching the policy to stop at once. Advantages compare completions of one
# prompt: GRPO scales by the group's (unbiased) std, RLOO subtracts the mean of the *others*:

# %%
group = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0])  # 3 of 8 correct
print("GRPO", oracle.group_advantages(group, 8).round(5))  # +1.20738 / -0.72443
print("RLOO", oracle.rloo_advantages(group, 8).round(6))  # +0.714286 / -0.428571

# %% [markdown]
# ## 3. 3.1.5 Training: RLOO from the pretrained reference, both frameworks
#
# `RLHFRun` (core/rlhf/train.py) holds a backend's policy, frozen reference and learner; one
# `update(u)` samples, scores, computes advantages and calls the backend's
# `RLHFLearner.update`. Prompts and noise depend only on (seed, u), so the two runs see the
# same batches while their float32 arithmetic agrees.

# %% tags=["torch"]
import inspect  # noqa: E402

# the loss RLOO minimises, as each framework writes it
print(f"# backends/torch/rlhf.py\n{inspect.getsource(backends['torch'].reinforce_loss)}")

# %% tags=["tf"]
print(f"# backends/tf/rlhf.py\n{inspect.getsource(backends['tf'].reinforce_loss)}")

# %%
updates = 30 if QUICK else 100
settings = RLHFSettings(task="sort-digits", algo="rloo", beta=0.01, updates=updates,
                        learning_rate=5e-3, prompts=8, missing_stop_penalty=0.0)  # the settings the text measured
histories = {}
for name, backend in backends.items():
    run = RLHFRun(backend, settings, (config, reference_params))
    history: dict[str, list[float]] = {}
    for u in range(settings.updates):
        metrics, data = run.update(u)
        for key, value in metrics.items():
            history.setdefault(key, []).append(value)
    histories[name] = history
    print(f"{name:>5}: reward {history['reward'][0]:.3f} -> "
          f"{summarize(history)['mean_reward']:.3f}, KL {summarize(history)['kl']:.2f} nats, "
          f"{sum(history['wall_s']):.1f} s; sample {data.completions[0]!r}")
    # the text's figures (below; the full run, 100 updates)
    claim(f"{name}: the reference's reward at the first update", history["reward"][0], 0.56,
          0.005)
    claim(f"{name}: the KL after 100 updates", summarize(history)["kl"], 25, 0.5)
print("saved", plot_reward_kl(histories, figure_dir() / "ch03_1_rlhf_rloo.png",
                              title="RLOO on sort-digits, beta = 0.01"))

# %% [markdown]
# ```{figcaption}
# RLOO on sort-the-digits ($\beta = 0.01$): the mean reward of the sampled completions and
# their KL from the reference against the update, one curve per framework.
# ```
#
# **What to see.** One panel per quantity against the update: the mean reward of the sampled
# completions and their KL from the reference, one curve per framework. The two curves lie on
# top of each other (same weights, same noise, float32 in both). The reward climbs from the
# reference's 0.56 (0.94 after the 30 updates of quick mode), and the KL climbs with it, to
# about 25 nats: at $\beta = 0.01$ the KL term costs little, and the policy moves far from
# $\pi_{\text{ref}}$ to the repeated digits of the sample printed above, a sorted answer the
# reference almost never writes. Count its characters: a 9th digit instead of the stop token,
# the loophole of 9.2.1 below.

# %% [markdown]
# ## 4. The closed-form check
#
# The maximiser of $J$ is $\pi^*(y) = \pi_{\text{ref}}(y)\, e^{r(y)/\beta} / Z$. With a
# uniform reference over the ten digits and a reward that is a sum over adjacent pairs,
# $\pi^*$ is a Markov chain with the $10 \times 10$ transfer matrix
# $M_{ab} = e^{[b \ge a] / (7\beta)}$, and
#
# $$\mathbb{E}_{\pi^*}[r] = \frac{d \log Z}{d(1/\beta)}, \qquad
#   \mathrm{KL}(\pi^* \| \pi_{\text{ref}}) = \mathbb{E}_{\pi^*}[r]/\beta - \log Z,
#   \qquad Z = 10^{-8}\, \mathbf{1}^\top M^7 \mathbf{1}.$$
#
# `--reference uniform` gives such a policy: a GPT over the ten digits whose final LayerNorm
# is zero, so every logit is 0. RLOO with $k_1$ folded into the reward should land on
# $\pi^*$'s reward and KL.

# %%
beta = 0.1
exact = sort_digits_optimum(beta)
print(f"beta = {beta}: exact E[r] = {exact.mean_reward:.4f}, KL = {exact.kl:.4f} nats")
uniform = RLHFSettings(algo="rloo", reference="uniform", beta=beta,
                       updates=60 if QUICK else 300, learning_rate=5e-3, prompts=8, missing_stop_penalty=0.0)
run = RLHFRun(backends["torch"], uniform)
history = {}
for u in range(uniform.updates):
    metrics, _ = run.update(u)
    for key, value in metrics.items():
        history.setdefault(key, []).append(value)
learned = summarize(history)
print(f"RLOO (torch, {uniform.updates} updates): E[r] = {learned['mean_reward']:.4f}, "
      f"KL = {learned['kl']:.4f}")
# the text's claims, checked in the full run (300 updates; tests/test_rlhf_train.py too)
claim("RLOO's E[r] after 300 updates, against pi*'s", learned["mean_reward"],
      exact.mean_reward, 0.03)
claim("RLOO's KL after 300 updates, against pi*'s", learned["kl"], exact.kl, 0.1 * exact.kl)
print("saved", plot_reward_kl({"torch RLOO": history}, figure_dir() / "ch03_1_rlhf_exact.png",
                              {"mean_reward": exact.mean_reward, "kl": exact.kl},
                              title=f"uniform reference, beta = {beta}"))

# %% [markdown]
# ```{figcaption}
# The same two panels for RLOO from the uniform reference, with the exact
# $\mathbb{E}_{\pi^*}[r]$ and $\mathrm{KL}(\pi^* \| \pi_{\text{ref}})$ dashed.
# ```
#
# **What to see.** The same two panels, with the exact $\mathbb{E}_{\pi^*}[r]$ and
# $\mathrm{KL}(\pi^* \| \pi_{\text{ref}})$ as dashed lines. Both curves rise toward them
# and level off there: RLOO with $k_1$ in the reward climbs the objective $J$ whose maximiser
# is $\pi^*$. Quick mode stops at 60 updates, short of the lines (0.649 and 0.414 nats against
# 0.697 and 0.721); the full run's 300 updates end within 0.03 of the reward and 10% of the KL,
# the margins asserted above and in `tests/test_rlhf_train.py`.

# %% [markdown]
# ## 5. 9.3.3 Quality against reward: the exact frontier
#
# Each $\beta$ buys a point on the curve of reward against KL: small $\beta$ gives high reward
# far from the reference (here: always the same few sorted answers), large $\beta$ stays near
# it. The frontier below is exact. GRPO does not land on it: its advantages are divided by
# the group's std (which rescales the reward differently for every prompt and every stage of
# training), and its $k_3$ term pulls toward $\mathrm{KL}(\pi_{\text{ref}}\|\pi)$, not the
# KL of $J$: try it after exercise 4.

# %%
betas = np.geomspace(0.02, 2.0, 30)
frontier = [sort_digits_optimum(b) for b in betas]
limits = optimum_limits()
print("beta -> 0:", limits["beta_to_zero"], "| beta -> infinity:", limits["beta_to_infinity"])
curves = {"exact optimum pi*": ([o.kl for o in frontier], [o.mean_reward for o in frontier]),
          f"RLOO, beta = {beta}": ([learned["kl"]], [learned["mean_reward"]])}
print("saved", plot_curves(curves, figure_dir() / "ch03_1_rlhf_frontier.png",
                           "KL(pi || pi_ref) (nats)", "E[r]", title="reward against KL"))

# %% [markdown]
# ```{figcaption}
# Reward against KL: the exact frontier of the optimal policies $\pi^*$ over $\beta$, and the
# point where the RLOO run landed.
# ```
#
# **What to see.** The curve is the exact frontier: every point is $\pi^*$ of one $\beta$,
# the best reward any policy can have at that KL. Left, large $\beta$: the reference's 0.55
# at KL 0; right, small $\beta$: reward near 1, bought with nats of KL (its $\beta \to 0$
# end is the limit printed above). No run can land above the curve; RLOO's point, with
# $k_1$ folded into the reward, lands on it when it has converged (300 updates, the full
# run; quick mode's 60 updates leave it below and to the left).
#
# ## Exercises
#
# Each exercise is a function with one line marked `# your code here`, preset to an answer
# so that this notebook runs; replace it with yours and run the check, which compares it with
# the float64 reference (or a count it makes itself) and prints ✓ or ✗ with what it expected.
#
# 1. **A random answer's reward.** With both digits of a pair uniform over an alphabet of
#    $V$ symbols, what is $P(b \ge a)$? (Count the pairs with $b \ge a$.) For $V = 10$ it is
#    the 0.55 of section 1 and `optimum_limits()`'s $\beta \to \infty$ reward.
# 2. **$k_3$, in the framework of your choice.** From the sampled tokens' log-probabilities
#    under the policy and the reference, return $k_3 = e^l - 1 - l$ with
#    $l = \log\pi_{\text{ref}} - \log\pi$, per token, in PyTorch *or* TensorFlow (both are
#    below; the check reads your tensor back). The cell then applies yours to the batch of
#    section 1 beside the backend's `kl_k3`. (Why is $k_3 \ge 0$ for every $l$?)
# 3. **RLOO's advantages.** From rewards laid out prompt by prompt and the group size $k$,
#    return $A_i = r_i - \frac{1}{k-1}\sum_{j \ne i} r_j$. (Why is this baseline unbiased,
#    while the group mean including $r_i$ is not?)
# 4. **The optimum's $\log Z$.** Return $\log Z = \log \mathbb{E}_{\text{ref}}[e^{r(y)/\beta}]$
#    for answers of `length` digits, from the transfer matrix of section 4:
#    $Z = 10^{-L} \mathbf{1}^\top M^{L-1} \mathbf{1}$ with $M_{ab} = e^{[b \ge a]/((L-1)\beta)}$.
#    The check enumerates all $10^L$ answers. Completing the square shows
#    $J(\pi) = \beta \log Z - \beta\,\mathrm{KL}(\pi \| \pi^*)$: the cell compares
#    $\beta \log Z$ with $J(\pi^*)$ of section 4. (Then re-run section 4 with `algo="grpo"`,
#    and with `advantage_scale="none"`: where do reward and KL land against the frontier?)

# %%
from duetrl.core.exercise_sets.rlhf import RL_FOR_LANGUAGE_MODELS  # noqa: E402

check_exercise_1, check_exercise_2, check_exercise_3, check_exercise_4 = RL_FOR_LANGUAGE_MODELS


def random_answer_reward(V):
    """P(b >= a) for a, b uniform over V symbols."""
    return (V + 1) / (2 * V)  # your code here: V(V+1)/2 pairs of V^2 have b >= a


def rloo_advantages(rewards, k):
    """r_i minus the mean of the other k - 1 rewards of its group; rewards (N,) -> (N,)."""
    groups = rewards.reshape(-1, k)
    return ((groups - (groups.sum(axis=1, keepdims=True) - groups) / (k - 1))
            .reshape(-1))  # your code here


def log_partition(beta, length):
    """log Z of sort-digits (10 digits, uniform reference) by the transfer matrix."""
    M = np.exp((np.arange(10)[None, :] >= np.arange(10)[:, None]) / ((length - 1) * beta))
    return np.log(
        np.ones(10) @ np.linalg.matrix_power(M, length - 1) @ np.ones(10)
    ) - length * np.log(10)  # your code here


assert check_exercise_1(random_answer_reward)
print(f"  V = 10: {random_answer_reward(10)}; optimum_limits: "
      f"{optimum_limits()['beta_to_infinity']['mean_reward']}")
assert check_exercise_3(rloo_advantages)
assert check_exercise_4(log_partition)
print(f"  beta log Z = {beta * log_partition(beta, 8):.6f}, J(pi*) = E[r] - beta KL = "
      f"{exact.objective:.6f}; the reference policy's J = 0.55 - beta * 0 = 0.55")

# %% tags=["torch"]
def kl_k3_torch(logp, ref_logp):
    """k3 per token in torch: NumPy arrays of any shape -> a tensor of that shape."""
    log_ratio = torch.as_tensor(ref_logp) - torch.as_tensor(logp)  # l
    return torch.expm1(log_ratio) - log_ratio  # your code here


assert check_exercise_2(kl_k3_torch)
shifted = batch.old_logp - 0.3 * batch.mask  # a reference 0.3 nats less likely per token
tf_backend = backends["tf"]
theirs = tf_backend.to_numpy(tf_backend.kl_k3(tf_backend.as_tensor(batch.old_logp),
                                              tf_backend.as_tensor(shifted)))
print(f"  on the batch: yours {kl_k3_torch(batch.old_logp, shifted).sum():.5f}, "
      f"backends['tf'].kl_k3 {theirs.sum():.5f} (sum over tokens)")

# %% tags=["tf"]
def kl_k3_tf(logp, ref_logp):
    """k3 per token in tf: NumPy arrays of any shape -> a tensor of that shape."""
    log_ratio = tf.constant(ref_logp, tf.float32) - tf.constant(logp, tf.float32)  # l
    return tf.math.expm1(log_ratio) - log_ratio  # your code here


assert check_exercise_2(kl_k3_tf)

# %% [markdown]
# A wrong answer gets a ✗ and what was expected. Here $k_1$ in place of $k_3$ (an unbiased
# estimate too, but of another per-token quantity, negative on some tokens):

# %%
assert not check_exercise_2(lambda logp, ref: torch.as_tensor(logp) - torch.as_tensor(ref))
