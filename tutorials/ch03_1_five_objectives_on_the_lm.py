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
# # Five objectives on one language model, placed on the exact reward-KL frontier
#
# Outline 3.1.4 (the objective), 3.1.5 (training and convergence) and 9.3.3 (reward against
# KL). REINFORCE, RLOO, GRPO, PPO with a value head, and DPO all claim to fine-tune a language
# model toward a reward while a KL term keeps it near the reference. Do they optimise the
# same thing? Here each one trains the same GPT on the same task, from the same start, in
# PyTorch and in TensorFlow, and lands somewhere on the plane of reward against KL. That plane
# has an exact answer: for every $\beta$, the best reward any policy can have at its KL is
#
# $$\pi^*_\beta(y) = \pi_{\text{ref}}(y)\, e^{r(y)/\beta} / Z_\beta, \qquad
#   \text{the maximiser of } J_\beta(\pi) = \mathbb{E}_\pi[r] - \beta\,\mathrm{KL}(\pi\,\|\,\pi_{\text{ref}}).$$
#
# On `sort-digits` with the uniform reference (the previous tutorial, section 4), $\pi^*_\beta$
# is a Markov chain over the digits and its reward and KL come from a $10\times 10$ matrix
# (`core/rlhf/optimum.py`). So each objective's landing point can be checked against the
# frontier, and where it is off, we can measure why.
#
# The reward is the fraction of the 7 adjacent pairs of the 8-digit answer with
# $x_{i+1} \ge x_i$; it ignores the prompt (any sorted answer scores 1), which is what makes
# the optimum the same chain for every prompt. The uniform reference writes 8 digits, no stop
# token: every completion has exactly 8 tokens.

# %%
import inspect
import time

import numpy as np

from duetrl.core.backend import load_backends
from duetrl.core.plots import pyplot, save_figure
from duetrl.core.reference import rlhf as losses
from duetrl.core.reference import rlhf_advantages as oracle
from duetrl.core.rlhf.optimum import optimum_limits, sort_digits_optimum
from duetrl.core.rlhf.train import RLHFRun, RLHFSettings, summarize
from duetrl.core.tutorial import claim, figure_dir, quick_mode

backends = load_backends(["torch", "tf"])
for backend in backends.values():
    backend.set_num_threads(1)  # a tiny GPT: one thread per framework is fastest
QUICK = quick_mode()
BETA = 0.1
UPDATES = 2 if QUICK else 300
# the step size and batch the figures below were measured with (`rlhf train` has since
# changed its defaults for a first run from the pretrained reference: 16 prompts, 2e-3)
MEASURED_WITH = {"learning_rate": 5e-3, "prompts": 8, "missing_stop_penalty": 0.0}
# quick mode (the test suite's) runs the TensorFlow twin of RLOO only: every tf objective
# costs a few seconds of tracing before its first step; the full run runs all in both
TF_OBJECTIVES = ("rloo",) if QUICK else None  # None: every objective


def show(function, first_line=None):
    """Print ``function``'s source from the line that contains ``first_line`` on."""
    source = inspect.getsource(function)
    if first_line is not None:
        source = source[source.index(first_line):]
    print(f"# {function.__module__}.{function.__name__}\n{source}")


# %% [markdown]
# ## 1. The frontier
#
# For each $\beta$: $\mathbb{E}_{\pi^*}[r] = d\log Z/d(1/\beta)$ and
# $\mathrm{KL}(\pi^*\|\pi_{\text{ref}}) = \mathbb{E}_{\pi^*}[r]/\beta - \log Z$. As
# $\beta \to \infty$, $\pi^* = \pi_{\text{ref}}$ (reward 0.55, KL 0); as $\beta \to 0$, $\pi^*$ is
# uniform over the $\binom{17}{8}$ sorted answers (reward 1, KL $\log(10^8/\binom{17}{8})$ =
# 8.32 nats). No policy reaches 1 with less KL, and none needs more.

# %%
betas = np.geomspace(0.012, 3.0, 60)
frontier = [sort_digits_optimum(b) for b in betas]
frontier_kl = np.array([o.kl for o in frontier])  # decreasing in beta
frontier_reward = np.array([o.mean_reward for o in frontier])
exact = sort_digits_optimum(BETA)
print(f"beta = {BETA}: E[r] = {exact.mean_reward:.4f}, KL = {exact.kl:.4f} nats")
print("limits:", optimum_limits())


def frontier_at(kl):
    """The frontier's reward at ``kl`` nats (interpolated; 1.0 past the beta -> 0 end)."""
    return float(np.interp(kl, frontier_kl[::-1], frontier_reward[::-1], right=1.0))


def frontier_beta(kl):
    """The beta whose pi* has ``kl`` nats of KL (interpolated in log beta)."""
    return float(np.exp(np.interp(kl, frontier_kl[::-1], np.log(betas[::-1]))))


# %% [markdown]
# ## 2. One loop, five objectives
#
# `RLHFRun` (`core/rlhf/train.py`) samples 8 prompts x 8 completions per update, scores them,
# computes the advantages on host arrays with the float64 reference
# (`core/reference/rlhf_advantages.py`) and calls the backend's learner. Prompts and sampling
# noise are functions of (seed, update), so the two frameworks sample the same first batch from
# the same weights. `train` below runs one objective in one framework and keeps, besides the
# logged reward and KL, the spread of the rewards inside each group (GRPO divides by it).

# %%
RESULTS: dict[str, dict[str, dict]] = {}  # objective -> framework -> summary and history


def train(name, settings, frameworks=None, step=None):
    """Run ``settings`` in each framework; record reward, KL and the group std per update."""
    for framework, backend in backends.items():
        if frameworks is not None and framework not in frameworks:
            continue
        run, began = RLHFRun(backend, settings), time.perf_counter()
        history: dict[str, list[float]] = {}
        for u in range(settings.updates):
            metrics, data = run.update(u) if step is None else step(run, u)
            metrics["group_std"] = float(
                data.rewards.reshape(-1, settings.group_size).std(axis=1, ddof=1).mean())
            for key, value in metrics.items():
                history.setdefault(key, []).append(value)
        summary = summarize(history)
        summary["group_std"] = float(np.mean(history["group_std"][-max(1, UPDATES // 10):]))
        RESULTS.setdefault(name, {})[framework] = {"summary": summary, "history": history}
        print(f"{name:>10} {framework:>5}: reward {summary['mean_reward']:.3f}, "
              f"KL {summary['kl']:.3f} nats (frontier at that KL: "
              f"{frontier_at(summary['kl']):.3f}), {time.perf_counter() - began:.1f} s")


def claim_landing(name, framework, reward, kl, kl_tolerance=0.0005):
    """The text's figures for one run (section 7, the full run's 300 updates): reward and KL
    as quoted (three decimals, or ``kl_tolerance``). Quick mode runs tf for RLOO only."""
    if framework in RESULTS.get(name, {}):
        summary = RESULTS[name][framework]["summary"]
        claim(f"{name}'s reward ({framework})", summary["mean_reward"], reward, 0.0005)
        claim(f"{name}'s KL ({framework})", summary["kl"], kl, kl_tolerance)


def settings_for(algo, **overrides):
    return RLHFSettings(**{"algo": algo, "reference": "uniform", "beta": BETA,
                           "updates": UPDATES, **MEASURED_WITH, **overrides})


def tf_runs(name):
    return TF_OBJECTIVES is None or name in TF_OBJECTIVES


# %% [markdown]
# ## 3. REINFORCE and RLOO: the KL folded into the reward
#
# Both score a completion by $R_i = r_i - \beta \sum_t k_1$ with
# $k_1 = \log\pi(y_t) - \log\pi_{\text{ref}}(y_t)$, an unbiased estimate of the completion's
# KL, and take a step on
#
# $$L = -\frac{1}{B}\sum_b A_b \sum_t m_{bt} \log\pi_\theta(y_{bt}).$$
#
# Only the baseline differs: REINFORCE subtracts the batch mean of $R$, RLOO the mean of the
# other $k-1$ completions of the same prompt. A baseline changes the variance, not the
# expected gradient, and that gradient is exactly $\nabla_\theta J_\beta$: both should land
# on $\pi^*_\beta$.

# %%
show(losses.reinforce_loss, "advantages =")
show(oracle.rloo_advantages, "grouped =")
rewards = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0])  # the design card's group
print("RLOO", oracle.rloo_advantages(rewards, 8).round(6), "| batch mean",
      (rewards - rewards.mean()).round(6))

# %%
train("reinforce", settings_for("reinforce"), None if tf_runs("reinforce") else ["torch"])
train("rloo", settings_for("rloo"), None if tf_runs("rloo") else ["torch"])
for name, framework, reward, kl in (("reinforce", "torch", 0.696, 0.719),
                                    ("reinforce", "tf", 0.696, 0.718),
                                    ("rloo", "torch", 0.696, 0.723), ("rloo", "tf", 0.696, 0.723)):
    claim_landing(name, framework, reward, kl)

# %% [markdown]
# ## 4. GRPO: the std in the advantage and $k_3$ in the loss
#
# GRPO changes two things. Its advantage divides by the group's (unbiased) std,
#
# $$A_i = \frac{r_i - \text{mean}_g\, r}{\text{std}_g\, r + 10^{-4}},$$
#
# and its KL is not in the reward but a loss term per token, $\beta k_3$ with
# $k_3 = e^{l} - 1 - l$, $l = \log\pi_{\text{ref}} - \log\pi$, beside PPO's clipped ratio:
#
# $$L = \text{agg}_t\big[-\min(\rho_t A, \text{clip}(\rho_t, 1-\epsilon, 1+\epsilon) A)
#   + \beta k_{3,t}\big].$$

# %%
show(oracle.group_advantages, "grouped =")
show(losses.grpo_loss, "surrogate, ratio")
print("GRPO", oracle.group_advantages(rewards, 8).round(5),
      "| Dr. GRPO (no std)", oracle.group_advantages(rewards, 8, "none").round(5))

# %% [markdown]
# Dividing by $\text{std}_g$ multiplies the reward, group by group, by $1/\text{std}_g$, while
# the KL term keeps its $\beta$. A group whose answers score alike gets a *larger* scale. So
# GRPO behaves like the KL-regularised objective with an effective coefficient of about
# $\beta \cdot \text{std}_g$, and that coefficient shrinks as the policy learns and its answers
# agree. Dr. GRPO (`advantage_scale="none"`) drops the division: the reward keeps its scale,
# and only the $k_3$ term is left to differ from $J_\beta$ (its gradient is that of
# $\mathrm{KL}(\pi_{\text{ref}}\,\|\,\pi)$, the other direction). We run both.

# %%
train("grpo", settings_for("grpo"), None if tf_runs("grpo") else ["torch"])
train("dr_grpo", settings_for("grpo", advantage_scale="none"),
      None if tf_runs("dr_grpo") else ["torch"])
grpo = RESULTS["grpo"]["torch"]
std = np.array(grpo["history"]["group_std"])
grpo_kl = grpo["summary"]["kl"]
print(f"GRPO (torch): mean group std {std[0]:.3f} at the first update, "
      f"{grpo['summary']['group_std']:.3f} at the end: effective beta about "
      f"{BETA * std[0]:.4f} -> {BETA * grpo['summary']['group_std']:.4f}")
print(f"GRPO's KL {grpo_kl:.2f} nats: " + (
    f"pi*'s at beta = {frontier_beta(grpo_kl):.4f}" if grpo_kl < frontier_kl[0] else
    f"past the frontier's end ({optimum_limits()['beta_to_zero']['kl']:.2f} nats, beta -> 0)"))
claim("GRPO's mean group std at the first update", std[0], 0.106, 0.0005)
claim("GRPO's mean group std at the end", grpo["summary"]["group_std"], 0.077, 0.0005)
for name, framework, reward, kl, kl_tolerance in (
        ("grpo", "torch", 0.946, 11.2, 0.05), ("grpo", "tf", 0.952, 10.9, 0.05),
        ("dr_grpo", "torch", 0.661, 0.495, 0.0005), ("dr_grpo", "tf", 0.663, 0.519, 0.0005)):
    claim_landing(name, framework, reward, kl, kl_tolerance)

# %% [markdown]
# **The loss normalisations.** `agg` is one of four reductions of the per-token loss
# (`normalisation=`): `grpo` averages each sequence over its tokens and then the sequences,
# `bnpo` averages over all tokens of the batch, `dr_grpo` divides the sum by batch size x the
# longest allowed completion, a constant; `dapo` is `bnpo` over a whole accumulated batch.
# They differ only when completions have different lengths. On ragged lengths, a short and a
# long completion with the same per-token loss:

# %%
show(losses.aggregate_token_loss, "mask = np.asarray")
ragged = np.array([[1, 1, 0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1, 1]], float)  # 2 and 8 tokens
same = np.ones((2, 8))  # both 8 tokens


def token_weight(mask, row, normalisation):
    """d agg / d l_{row, 0}: the weight of one token of ``row`` in the aggregated loss."""
    one_token = np.zeros_like(mask)
    one_token[row, 0] = 1.0
    return losses.aggregate_token_loss(one_token, mask, normalisation)


for normalisation in ("grpo", "bnpo", "dr_grpo"):
    print(f"{normalisation:>8}: a token of the 2-token completion weighs "
          f"{token_weight(ragged, 0, normalisation):.4f}, of the 8-token one "
          f"{token_weight(ragged, 1, normalisation):.4f}; both 8 tokens long: "
          f"{token_weight(same, 0, normalisation):.4f} and {token_weight(same, 1, normalisation):.4f}")

# %% [markdown]
# `grpo` gives the 2-token completion's tokens 4 times the weight of the 8-token one's; `bnpo`
# weighs every token alike; `dr_grpo` is the sum over a constant. With the uniform reference
# every completion has 8 tokens, so `grpo` and `bnpo` are the same loss and `dr_grpo` the
# same loss times a constant, which Adam all but ignores: on this task the choice cannot move
# the landing point, and the runs here use `grpo`. The difference matters with a stop token
# (the pretrained reference of the previous tutorial): there `grpo`'s per-sequence mean pulls
# toward short answers when the advantage is positive and toward long ones when it is negative.
#
# ## 5. PPO with a value head: the KL as a reward on every token
#
# PPO for language models (Ziegler et al. 2019) puts the KL into the reward, token by token,
# and the score at the last token:
#
# $$r_t = -\beta\, k_{1,t}\, m_t + r(y)\,[t = \text{last}],$$
#
# estimates advantages with GAE over the tokens ($\gamma = 1$) from a value head $V(s_t)$ on
# the GPT's last hidden state, whitens them over the batch's tokens, and takes 4 clipped steps
# per batch on the policy loss plus a clipped value loss:
#
# $$\delta_t = r_t + V(s_{t+1}) - V(s_t), \quad A_t = \delta_t + \lambda A_{t+1}, \quad
#   R_t = A_t + V(s_t), \quad \hat A_t = \frac{A_t - \text{mean}(A)}{\text{std}(A) + \epsilon},$$
#
# $$L_V = \text{mean}_t\, \tfrac12 \max\big((V - R_t)^2,\ (V_{\text{old}} + \text{clip}(V - V_{\text{old}}, -c, c) - R_t)^2\big).$$
#
# The sum of the $r_t$ over a completion is $r - \beta\,\widehat{\mathrm{KL}}$, the same
# return as REINFORCE's: PPO climbs the same $J_\beta$, with a critic to cut the variance and
# the clip to keep each batch's steps small.

# %%
show(oracle.kl_shaped_rewards, "mask = np.asarray")
show(oracle.token_gae, "mask = np.asarray")
show(losses.value_loss_clipped, "clipped_values")
# the formulas on one completion of 4 tokens, by calling the reference
logp, ref_logp = np.log([[0.5, 0.4, 0.3, 0.6]]), np.log([[0.1, 0.1, 0.1, 0.1]])
mask, values = np.ones((1, 4)), np.array([[0.2, 0.3, 0.4, 0.5]])
token_rewards = oracle.kl_shaped_rewards(np.array([0.8]), logp, ref_logp, mask, BETA)
advantages, returns = oracle.token_gae(token_rewards, values, mask, 1.0, 0.95)
print("r_t", token_rewards.round(4), "sum", token_rewards.sum().round(4),
      "= r - beta KL", (0.8 - BETA * (logp - ref_logp).sum()).round(4))
print("A_t", advantages.round(4), "R_t", returns.round(4))

# %%
PPO = {"epochs": 4, "gae_lambda": 1.0}  # lambda = 1: the return is the whole completion's
train("ppo", settings_for("ppo", **PPO), None if tf_runs("ppo") else ["torch"])
claim_landing("ppo", "torch", 0.674, 0.631)
claim_landing("ppo", "tf", 0.675, 0.639)

# %% [markdown]
# ## 6. DPO: the same objective, from preferences
#
# DPO (Rafailov et al. 2023) never sees $r$, only which of two answers was preferred, and
# minimises
#
# $$L = -\text{mean}\log\sigma\big(\beta_{\text{DPO}}\big[(\log\pi(y_w) - \log\pi_{\text{ref}}(y_w)) -
#   (\log\pi(y_l) - \log\pi_{\text{ref}}(y_l))\big]\big).$$
#
# If the preferences follow a Bradley-Terry model, $P(y_1 \succ y_2) = \sigma(r'(y_1) - r'(y_2))$,
# the minimiser is $\pi_{\text{ref}}\, e^{r'/\beta_{\text{DPO}}}/Z$: the $\pi^*$ of $J$ with the
# reward $r'$. With $r' = r/\tau$ it is $\pi^*_\beta$ for $\beta = \tau\beta_{\text{DPO}}$.
# Two ways to label the pairs:
#
# * the run loop's (`algo="dpo"`): the best and the worst completion of each group, always
#   in that order. A label that never errs is a Bradley-Terry model with $\tau \to 0$: the
#   loss has no minimum, the margins grow for ever, and nothing holds the policy at any
#   $\beta$;
# * Bradley-Terry labels drawn at $\tau = 0.1$ with $\beta_{\text{DPO}} = 1$ (below: every
#   pair of completions of a group, 28 per prompt, the first preferred with probability
#   $\sigma((r_1 - r_2)/\tau)$): the target is $\pi^*_{0.1}$, the frontier point of the other
#   runs. A label is one noisy bit where RLOO gets the reward itself, so DPO needs many pairs:
#   with one pair per two completions (32 an update) it had barely left the reference after
#   300 updates (measured: reward 0.61, KL 0.24 nats in torch, 0.56 and 0.02 in tf).

# %%
show(losses.dpo_loss, "chosen_rewards =")
TAU, BETA_DPO = 0.1, 1.0


def bradley_terry_step(run, u):
    """One DPO update on Bradley-Terry labels of the policy's own samples (online)."""
    s = run.settings
    run.learner.learning_rate = s.learning_rate * min(1.0, (u + 1) / max(1, s.warmup))
    data = run.sample(u)
    i, j = np.triu_indices(s.group_size, 1)  # every pair of a group: k(k-1)/2 = 28
    offsets = np.arange(len(data.rewards) // s.group_size)[:, None] * s.group_size
    first, second = (offsets + i).reshape(-1), (offsets + j).reshape(-1)
    margin = (data.rewards[first] - data.rewards[second]) / TAU  # r'(y_1) - r'(y_2)
    prefer_first = np.random.default_rng((s.seed, 11, u)).random(len(first)) < 1 / (
        1 + np.exp(-margin))  # P(y_1 > y_2) = sigmoid(r'_1 - r'_2)
    chosen = np.where(prefer_first, first, second)
    rejected = np.where(prefer_first, second, first)
    ref_sequence = (data.ref_logp * data.mask).sum(axis=1)  # log pi_ref(y)
    stats = run.learner.update({
        "chosen_tokens": data.tokens[chosen], "rejected_tokens": data.tokens[rejected],
        "chosen_mask": data.mask[chosen], "rejected_mask": data.mask[rejected],
        "ref_chosen_logp": ref_sequence[chosen], "ref_rejected_logp": ref_sequence[rejected],
    }, "dpo", beta=s.beta)
    metrics = {"update": float(u + 1), "reward": float(data.rewards.mean()),
               "kl": float(data.sequence_kl.mean()), "entropy": float(data.entropy),
               "success": float(data.success.mean()), "loss": stats["loss"]}
    return metrics, data


train("dpo", settings_for("dpo"), None if tf_runs("dpo") else ["torch"])
train("dpo_bt", RLHFSettings(algo="dpo", reference="uniform", beta=BETA_DPO, updates=UPDATES,
                             **MEASURED_WITH),
      None if tf_runs("dpo_bt") else ["torch"], step=bradley_terry_step)
for name, framework, reward, kl, kl_tolerance in (
        ("dpo", "torch", 1.000, 16.4, 0.05), ("dpo", "tf", 1.000, 17.8, 0.05),
        ("dpo_bt", "torch", 0.667, 0.531, 0.0005), ("dpo_bt", "tf", 0.668, 0.544, 0.0005)):
    claim_landing(name, framework, reward, kl, kl_tolerance)

# %% [markdown]
# ## 7. Where each lands
#
# Every run's last 10% of updates, as a point on the plane of reward against KL, with the
# exact frontier; circles are PyTorch, crosses TensorFlow.

# %%
LABELS = {"reinforce": "REINFORCE", "rloo": "RLOO", "grpo": "GRPO (std)",
          "dr_grpo": "Dr. GRPO (no std)", "ppo": "PPO + value head",
          "dpo": "DPO, best vs worst", "dpo_bt": "DPO, Bradley-Terry labels"}
plt = pyplot()
fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
for ax, zoom in zip(axes, (False, True)):
    ax.plot(frontier_kl, frontier_reward, color="grey",
            label=None if zoom else "exact frontier pi*_beta")
    ax.plot([exact.kl], [exact.mean_reward], "*", color="black", markersize=14,
            label=None if zoom else f"pi* at beta = {BETA}")
    for (name, runs), color in zip(RESULTS.items(), colors):
        for framework, marker in (("torch", "o"), ("tf", "x")):
            if framework in runs:
                s = runs[framework]["summary"]
                ax.plot([s["kl"]], [s["mean_reward"]], marker, color=color, markersize=9,
                        label=None if zoom else f"{LABELS[name]} ({framework})")
    ax.set_xlabel("KL(pi || pi_ref) (nats)")
    ax.set_ylabel("E[r]")
    ax.grid(alpha=0.3)
axes[0].set_title(f"{UPDATES} updates from the uniform reference, beta = {BETA}")
axes[1].set(xlim=(-0.05, 1.2), ylim=(0.54, 0.75), title="zoom: near pi* at beta = 0.1")
axes[0].legend(fontsize=7, loc="lower right")  # the corner no run reaches
print("saved", save_figure(fig, figure_dir() / "ch03_1_five_objectives_frontier.png"))
print(f"{'objective':>26} {'framework':>9} {'reward':>7} {'KL':>7} {'frontier r':>10} "
      f"{'gap':>7}")
for name, runs in RESULTS.items():
    for framework, run in runs.items():
        s = run["summary"]
        print(f"{LABELS[name]:>26} {framework:>9} {s['mean_reward']:7.3f} {s['kl']:7.3f} "
              f"{frontier_at(s['kl']):10.3f} {s['mean_reward'] - frontier_at(s['kl']):+7.3f}")

# %% [markdown]
# ```{figcaption}
# Where each objective ends on the reward-KL plane, in both frameworks, against the exact
# frontier and the optimum $\pi^*$ at $\beta = 0.1$ (the star); right, the corner around the
# star.
# ```
#
# **What to see.** Left, the whole plane; right, the corner around the star. The figures
# quoted are the full run's (300 updates; quick mode's 2 updates leave every point at the
# reference's reward 0.55 and KL 0). The frontier is the grey curve, the star $\pi^*_{0.1}$
# (0.697 at 0.721 nats), the column *gap* of the table the reward minus the frontier's at the
# run's own KL: 0 on the frontier, negative below it.
#
# * **REINFORCE and RLOO** sit on the star: 0.696 at 0.719 and at 0.723 nats, in both
#   frameworks to the three decimals printed but one (REINFORCE's KL is 0.718 in tf: same
#   weights, same noise, float32 rounding summed in a different order). The KL folded into the reward makes their expected step the gradient of
#   $J_{0.1}$, and a baseline does not change it.
# * **PPO with a value head** ends 0.01 below the frontier and short of the star: 0.674 at
#   0.631 nats (torch), 0.675 at 0.639 (tf). It climbs the same $J_{0.1}$, more slowly (the
#   clip, and a critic that starts from zero, keep each batch's steps small): 600 updates
#   (torch, measured apart from this page) reach 0.684 at 0.664 nats, 0.007 below.
# * **Dr. GRPO** is also 0.01 below the frontier, and further left: 0.661 at 0.495 nats
#   (torch), 0.663 at 0.519 (tf). Its target is not $\pi^*_{0.1}$: its baseline, the group
#   mean with the sample itself in it, scales the reward by $(k-1)/k = 7/8$, a $\beta$ 8/7
#   larger ($\pi^*_{0.114}$: 0.679 at 0.558 nats), and its $k_3$ term pulls with the gradient
#   of $\mathrm{KL}(\pi_{\text{ref}}\,\|\,\pi)$, not of the KL on the x-axis. In 300 updates
#   PPO and Dr. GRPO cannot tell "below the frontier" from "not there yet"; the clear
#   departure is the next one.
# * **GRPO** is far right: 0.946 at 11.2 nats (torch), 0.952 at 10.9 (tf), past the frontier's
#   end, where reward 1 costs 8.32 nats. Section 4 measured why: the groups' std was 0.106 at
#   the first update and 0.077 at the end, so the reward was multiplied by 9 to 13 while the
#   $k_3$ term kept $\beta = 0.1$, an effective $\beta$ of 0.011 to 0.008: the $\beta \to 0$
#   end of the frontier. Once most groups are all sorted, a group with one unsorted answer
#   has a small std and that answer a large negative advantage, and the policy keeps
#   narrowing onto a few sorted answers: more KL than $\pi^*$ needs for reward 1, and less
#   reward.
# * **DPO, best vs worst**, is further right still: reward 1.000 at 16.4 nats (torch) and
#   17.8 (tf), near $\log 10^8 = 18.4$, the KL of a policy that writes one answer. Its labels
#   never err, the loss has no minimum, and it collapses.
# * **DPO with Bradley-Terry labels** is 0.01 below the frontier, on its way to the star:
#   0.667 at 0.531 nats (torch), 0.668 at 0.544 (tf). It never sees $r$, only which of two
#   answers won, and heads for the same $\pi^*_{0.1}$ as RLOO, more slowly: a label is one
#   bit.
#
# The torch and tf points of one objective agree where the objective has a stable optimum
# (REINFORCE, RLOO); where a run runs away (GRPO, DPO best vs worst) float32 rounding, summed
# in a different order in each framework, sends the two to different places on the way.

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
window = min(10, UPDATES)  # a trailing mean of 10 updates: 'valid' only, no padded ends
for (name, runs), color in zip(RESULTS.items(), colors):
    history = runs["torch"]["history"]
    for ax, key in zip(axes, ("reward", "kl")):
        smooth = np.convolve(history[key], np.ones(window) / window, mode="valid")
        ax.plot(np.arange(window, len(history[key]) + 1), smooth, color=color,
                label=LABELS[name] if key == "reward" else None)
for ax, key, label in ((axes[0], "mean_reward", "E[r]"), (axes[1], "kl", "KL (nats)")):
    ax.axhline(getattr(exact, key), color="black", linestyle="--", linewidth=1,
               label=f"pi* at beta = {BETA}" if key == "mean_reward" else None)
    ax.set(xlabel="update", ylabel=label)
    ax.grid(alpha=0.3)
axes[1].set_yscale("symlog", linthresh=1.0)  # 0 to 1 linear, then 1 to 18 nats logarithmic
axes[0].legend(fontsize=7, loc="lower right")
fig.suptitle(f"torch, beta = {BETA}: mean of the last {window} updates")
print("saved", save_figure(fig, figure_dir() / "ch03_1_five_objectives_curves.png"))

# %% [markdown]
# ```{figcaption}
# Reward (left) and KL (right) of each objective's torch run against the update, each a moving
# mean, with the values of $\pi^*$ at $\beta = 0.1$ dashed.
# ```
#
# **What to see.** The same runs (torch) against the update, each curve the mean of the last
# 10 updates, reward left and KL right (linear up to 1 nat, logarithmic above), with
# $\pi^*_{0.1}$'s values dashed. REINFORCE and RLOO rise to the dashed lines and stay there.
# GRPO and best-vs-worst DPO cross both lines within the first 100 updates and keep going, to
# KLs of 11 and 16 nats: nothing in their objectives says stop at $\beta = 0.1$. PPO, Dr. GRPO
# and Bradley-Terry DPO climb more slowly and end under both lines.
#
# ## Exercises
#
# Each exercise is a function with one line marked `# your code here`, preset to an answer
# so that this notebook runs; replace it with yours and run the check, which compares it on
# fresh inputs with the float64 reference and prints ✓ or ✗ with what it expected.
#
# 1. **DPO's loss, in the framework of your choice.** From the sequence log-probabilities of
#    the chosen and rejected completions under the policy and the reference, and
#    $\beta$, return the scalar loss of section 6, in PyTorch *or* TensorFlow (both are
#    below). Write $-\log\sigma(x)$ so that it survives a margin of $-100$ in float32.
# 2. **PPO's per-token rewards.** From the scores, the log-probs of the policy and the
#    reference, the mask and $\beta$, return $r_t = -\beta k_{1,t} m_t + r\,[t = \text{last}]$,
#    where the last completion token of a row is its last column with $m = 1$.
# 3. **GRPO's advantages.** $(r_i - \text{mean}_g)/(\text{std}_g + 10^{-4})$ with the
#    *unbiased* std of the group. (Why does the result not change when every reward is
#    multiplied by 10, and what does that say about $\beta$?)
# 4. **The frontier's $\beta$ for a KL.** Return the $\beta$ whose $\pi^*_\beta$ has the given
#    KL (the KL falls as $\beta$ grows: bisect on $\log\beta$ with `sort_digits_optimum`).
#    The check feeds your $\beta$ back into the closed form. Use it on GRPO's KL in section 4:
#    how small is the $\beta$ that GRPO effectively ran at?

# %%
import tensorflow as tf  # noqa: E402  (both frameworks are already loaded)
import torch  # noqa: E402

from duetrl.core.exercises import FRAMEWORK_TOLERANCE, compare  # noqa: E402


def kl_shaped_rewards(score, logp, ref_logp, mask, beta):
    """r_t = -beta (logp - ref_logp) m + score at each row's last completion token."""
    rewards = -beta * (logp - ref_logp) * mask
    last = mask.shape[1] - 1 - np.argmax(mask[:, ::-1] > 0, axis=1)  # your code here
    rewards[np.arange(len(score)), last] += score
    return rewards


def grpo_advantages(rewards, k):
    """(r - mean_g) / (unbiased std_g + 1e-4); rewards (N,) prompt-major -> (N,)."""
    groups = rewards.reshape(-1, k)
    return (
        (groups - groups.mean(1, keepdims=True)) / (groups.std(1, ddof=1, keepdims=True) + 1e-4)
    ).reshape(-1)  # your code here


def beta_for_kl(kl):
    """The beta > 0 whose pi*_beta on sort-digits has ``kl`` nats of KL."""
    low, high = np.log(1e-3), np.log(1e3)  # KL(beta) falls from 8.32 to 0 on this range
    for _ in range(60):
        middle = 0.5 * (low + high)
        low, high = (
            (middle, high) if sort_digits_optimum(np.exp(middle)).kl > kl else (low, middle)
        )  # your code here
    return float(np.exp(0.5 * (low + high)))


rng = np.random.default_rng(20)
dpo_cases = [(*(rng.normal(-8.0, 2.0, size=(4, b))), beta) for b, beta in ((3, 0.1), (16, 1.0))]
dpo_cases.append((np.array([-1.0]), np.array([-1.0]), np.array([99.0]), np.array([-1.0]), 1.0))
shaped_cases = []
for b, t in ((3, 6), (5, 9)):
    lengths = rng.integers(1, t + 1, size=b)
    token_mask = (np.arange(t)[None, :] < lengths[:, None]).astype(float)
    shaped_cases.append((rng.random(b), np.log(rng.uniform(0.05, 1, (b, t))),
                         np.log(rng.uniform(0.05, 1, (b, t))), token_mask, 0.05))
group_cases = [(np.array([1.0, 0, 0, 1, 1, 0, 0, 0]), 8), (np.array([0.3, 0.3, 0.3]), 3),
               (rng.random(12), 4), (rng.random(12), 6)]

assert compare(2, kl_shaped_rewards, oracle.kl_shaped_rewards, shaped_cases,
               "the KL-shaped per-token rewards")
assert compare(3, grpo_advantages, oracle.group_advantages, group_cases, "GRPO's advantages")
assert compare(4, lambda kl: sort_digits_optimum(beta_for_kl(kl)).kl, lambda kl: kl,
               [(0.05,), (0.7205893693677474,), (3.0,), (8.0,)], "KL of pi* at your beta",
               atol=1e-6, rtol=1e-6)
dr_grpo_kl = RESULTS["dr_grpo"]["torch"]["summary"]["kl"]
print(f"  Dr. GRPO's KL {dr_grpo_kl:.3f} nats is pi*'s at beta = {beta_for_kl(dr_grpo_kl):.4f}; "
      f"GRPO's ({min(grpo_kl, 8.3):.2f}, the frontier ends at 8.32) at beta = "
      f"{beta_for_kl(min(grpo_kl, 8.3)):.4f} (both were trained with beta = {BETA})")

# %% tags=["torch"]
def dpo_loss_torch(lp_w, lp_l, ref_w, ref_l, beta):
    """DPO's loss in torch: four (B,) NumPy arrays and beta -> a scalar tensor."""
    lp_w, lp_l, ref_w, ref_l = (torch.as_tensor(x, dtype=torch.float32)
                                for x in (lp_w, lp_l, ref_w, ref_l))
    return -torch.nn.functional.logsigmoid(
        beta * ((lp_w - ref_w) - (lp_l - ref_l))
    ).mean()  # your code here


assert compare(1, dpo_loss_torch, lambda *c: losses.dpo_loss(*c)[0], dpo_cases, "the DPO loss",
               FRAMEWORK_TOLERANCE, FRAMEWORK_TOLERANCE)

# %% tags=["tf"]
def dpo_loss_tf(lp_w, lp_l, ref_w, ref_l, beta):
    """DPO's loss in tf: four (B,) NumPy arrays and beta -> a scalar tensor."""
    lp_w, lp_l, ref_w, ref_l = (tf.constant(x, tf.float32) for x in (lp_w, lp_l, ref_w, ref_l))
    return tf.reduce_mean(
        tf.math.softplus(-beta * ((lp_w - ref_w) - (lp_l - ref_l)))
    )  # your code here


assert compare(1, dpo_loss_tf, lambda *c: losses.dpo_loss(*c)[0], dpo_cases, "the DPO loss",
               FRAMEWORK_TOLERANCE, FRAMEWORK_TOLERANCE)

# %% [markdown]
# A wrong answer gets a ✗ and what was expected. Here GRPO's advantages with NumPy's default
# std (without Bessel's correction), which scales every advantage by $\sqrt{(k-1)/k}$:

# %%
assert not compare(3, lambda r, k: (r.reshape(-1, k) - r.reshape(-1, k).mean(1, keepdims=True))
                   .__truediv__(r.reshape(-1, k).std(1, keepdims=True) + 1e-4).reshape(-1),
                   oracle.group_advantages, group_cases, "GRPO's advantages")
