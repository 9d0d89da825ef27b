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
# # An LM-based recommender trained with RL from logged data
#
# Outline 6.2 (Chen et al., WSDM 2019, "Top-K Off-Policy Correction for a REINFORCE
# Recommender System"). A recommender reads what a user has watched, a sequence of item ids,
# and proposes what to show next: a **language model over items**, whose next-"word"
# distribution $\pi(a \mid s)$ is a softmax over the catalogue. Trained by next-item
# prediction it imitates what users did; trained by **REINFORCE** it learns what pays
# (clicks, watch time). Two difficulties of the real setting shape the algorithm:
#
# 1. **Logged data.** The recommender learns from what an *older* system (the behaviour
#    policy $\beta$) chose to show. Plain REINFORCE on those logs follows $\beta$'s choices:
#    its gradient is $\mathbb{E}_{a \sim \beta}[R \nabla \log \pi]$, not
#    $\mathbb{E}_{a \sim \pi}[\ldots]$. The fix is an importance weight $\pi/\beta$, capped
#    at $c$, with $\beta$ itself learned by a second head (the logging policy is unknown).
# 2. **Slates.** The system shows $K$ items at once. With $K$ draws from $\pi$ an item
#    appears with probability $\alpha_K(a) = 1 - (1 - \pi(a))^K$, and the gradient of
#    $\sum_a \alpha_K(a) R(a)$ multiplies REINFORCE's by
#    $\lambda_K(a) = K (1 - \pi(a))^{K-1}$: the **top-K correction**.
#
# $$\nabla J_K \approx \frac{1}{M}\sum_n
#   \underbrace{K (1 - \pi(a_n \mid s_n))^{K-1}}_{\lambda_K}
#   \underbrace{\min\!\Big(\frac{\pi(a_n \mid s_n)}{\beta(a_n \mid s_n)}, c\Big)}_{w_n}
#   R_n \nabla \log \pi(a_n \mid s_n)$$
#
# We follow the outline: 6.2.1 the problem and its model, 6.2.2 the algorithm and its
# implementation in PyTorch and TensorFlow, 6.2.3 results and analysis.

# %%
import numpy as np

from duetrl.core.backend import load_backends
from duetrl.core.cases.recommender.catalogue import make_catalogue
from duetrl.core.cases.recommender.evaluate import plot_recommender
from duetrl.core.cases.recommender.exercises import CHECKS
from duetrl.core.cases.recommender.logged import behaviour_probs, log_sessions
from duetrl.core.cases.recommender.simulator import Simulator
from duetrl.core.cases.recommender.train import RecommenderRun, RecommenderSettings
from duetrl.core.plots import pyplot, save_figure
from duetrl.core.reference import recommender as oracle
from duetrl.core.tolerances import assert_close
from duetrl.core.tutorial import claim, figure_dir, quick_mode

backends = load_backends(["torch", "tf"])
for backend in backends.values():
    backend.set_num_threads(1)  # a small GPT: one thread per framework is fastest
QUICK = quick_mode()

# %% [markdown]
# ## 6.2.1 The problem and its model
#
# ### A catalogue, users with hidden tastes, and a logging policy
#
# Everything is simulated, so the true reward of any recommendation is known
# (`core/cases/recommender/`). 48 items in 6 topics, each with a three-word title, a hidden
# position $v_i$ in taste space, a hidden **quality** $q_i$ and a popularity. A user $u$ has a
# favourite topic and a second one; she clicks item $i$ when shown with probability
# $p(u, i) = \sigma(3\, u \cdot v_i + q_i - 2.5)$. What she picks **herself** (her session)
# follows her topics and popularity, not quality: imitating sessions teaches topics, only
# clicks teach quality. The **logging policy** $\beta$ that showed items to last year's users
# pushes popular ones: $\beta(a \mid s) \propto \exp(1.5 \log\text{popularity}_a + 1.0\,
# [\text{topic}(a) = \text{topic of her last item}])$.

# %%
catalogue = make_catalogue(seed=0)
simulator = Simulator(catalogue)
print(", ".join(catalogue.title(i) for i in (0, 9, 20, 47)))
logs = log_sessions(simulator, 4000, history=8, first=2, seed=0)
p = simulator.click_probs(logs.users)
beta_last = behaviour_probs(simulator, logs.sessions[:, 7])
print(
    f"{len(logs)} logged sessions, {logs.actions.size} logged events; mean click "
    f"{logs.rewards.mean():.3f}"
)
print(f"each user has {(p > 0.5).sum(1).mean():.1f} items she would click with p > 0.5")
print(
    f"share of logged events on the 10 most popular items: "
    f"{np.isin(logs.actions, np.argsort(-catalogue.popularity)[:10]).mean():.0%}"
)
print(f"smallest behaviour probability in the logs: {logs.propensities.min():.1e}")
claim("share of logged events on the 10 most popular items",  # the text's figures (6.2.3)
      np.isin(logs.actions, np.argsort(-catalogue.popularity)[:10]).mean(), 0.90, 0.005)
claim("smallest behaviour probability in the logs", logs.propensities.min(), 7e-5, 5e-6)

# %% [markdown]
# ### The model: a GPT over item tokens (and, as an option, their titles)
#
# The policy is the chapter-2 GPT. A session is read as tokens `<bos> h_1 h_2 ... h_L`, one
# token per item; with `titles=True` each item's three title words come before its token, so
# what the model knows of an item also comes through words it shares with other items (the
# "LM" in LM-based). The user state $s_t$ is the last hidden state at item $h_t$; $\pi(\cdot
# \mid s_t)$ is the tied output head restricted to the item rows of the embedding table
# ($z = h_t W_{te}[\text{items}]^\top$). The **behaviour head** is a separate linear softmax on
# $\mathrm{sg}(h_t)$: it learns $\beta$ from the logged actions, and the stop-gradient keeps that
# loss from moving the trunk (`backends/{torch,tf}/recommender.py`).

# %%
row = catalogue.encode(logs.history[:1], titles=True)[0]
vocabulary = ["<bos>"] + [f"#{i}" for i in range(catalogue.size)] + list(catalogue.words)
print(" ".join(vocabulary[t] for t in row[:13]), "...")
print("user states at positions", catalogue.state_positions(2, 8, titles=True))

# %% [markdown]
# ## 6.2.2 The algorithm and its implementation
#
# ### Four pieces, in both frameworks, against the float64 oracle
#
# * capped importance weight $w = \min(\pi/\beta, c)$;
# * top-K multiplier $\lambda_K = K(1-\pi)^{K-1}$;
# * corrected loss $L_\pi = -\frac{1}{M}\sum_n m_n\, \mathrm{sg}[f_n]\, R_n \log \pi(a_n \mid
#   s_n)$ with $f_n = 1$ (REINFORCE), $w_n$ (off-policy) or $\lambda_n w_n$ (top-K);
# * behaviour loss $L_\beta = -\frac{1}{M}\sum_n m_n \log \beta(a_n \mid \mathrm{sg}(s_n))$.
#
# `sg` is `.detach()` in torch and `tf.stop_gradient` in TensorFlow (`duetrl diff
# recommender` shows the two files side by side). Float64 first, so that a difference is a
# bug, not rounding:

# %%
rng = np.random.default_rng(0)
logits, actions = rng.normal(size=(3, 4, 6)), rng.integers(0, 6, (3, 4))
rewards, beta, mask = rng.random((3, 4)), rng.uniform(0.02, 0.5, (3, 4)), np.ones((3, 4))
expected = oracle.corrected_loss(logits, actions, rewards, beta, mask, "top_k", 10.0, 4)
for name, b in backends.items():
    got = b.corrected_loss(
        *(b.as_tensor(x) for x in (logits, actions, rewards, beta, mask)), "top_k", 10.0, 4
    )
    assert_close(got, expected, "float64", name=name)
    print(f"{name:>5}: top-K corrected loss {float(got):.12f} (oracle {expected:.12f})")

# %% [markdown]
# ### Why $\lambda_K$, and where it leads: the K = 2 fixed point by hand
#
# One state, three items with expected rewards $R = (1, 0.8, 0.5)$. The objective
# $J_2 = \sum_a (1 - (1 - \pi_a)^2) R_a$ has, through the softmax, the gradient
# $\partial J_2 / \partial z_j = \pi_j(\lambda_j R_j - \sum_a \pi_a \lambda_a R_a)$. It vanishes
# when $2(1 - \pi_j) R_j$ is the same for every item: $\pi_j = 1 - 2 / (R_j \sum_i 1/R_i)$,
# i.e. $\pi = (9/17, 7/17, 1/17)$, while plain REINFORCE ($K = 1$) puts everything on item 1.
# Gradient ascent with each correction, from a uniform start:

# %%
R = np.array([1.0, 0.8, 0.5])
fixed_point = 1 - 2 / (R * (1 / R).sum())
paths = {}
for k in (1, 2, 4):
    z, path = np.zeros(3), []
    for _ in range(3000):
        z += 0.5 * oracle.top_k_objective_grad(z, R, k)
        path.append(oracle.softmax(z))
    paths[k] = np.array(path)
    print(f"K = {k}: pi -> {np.round(paths[k][-1], 3)}")
print("K = 2 fixed point by hand:", np.round(fixed_point, 3))
assert np.allclose(paths[2][-1], fixed_point, atol=1e-3)

plt = pyplot()
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
pi_grid = np.linspace(0, 1, 101)
for k in (1, 2, 4, 8):
    left.plot(pi_grid, oracle.top_k_multiplier(pi_grid, k), label=f"K = {k}")
left.set(xlabel="pi(a | s)", ylabel="lambda_K", title="the top-K multiplier")
left.legend()
for k, style in ((1, "-"), (2, "--"), (4, ":")):
    right.plot(paths[k][:, 0], style, label=f"pi(item 1), K = {k}")
right.axhline(fixed_point[0], color="0.6", lw=0.8, label="K = 2 fixed point, by hand")
right.set(
    xlabel="gradient step",
    ylabel="probability",
    xscale="log",
    title="three items, R = (1, 0.8, 0.5)",
)
right.legend(fontsize=8)
save_figure(fig, figure_dir() / "ch06_2_top_k_multiplier.png")

# %% [markdown]
# ```{figcaption}
# Left, the top-K multiplier $\lambda_K$ against the probability of an item; right, the
# probability of item 1 along gradient steps for each $K$, with the fixed point for $K = 2$
# worked out by hand.
# ```
#
# $\lambda_K$ is $K$ for items the policy neglects and 0 for an item it already always shows:
# once an item fills a slot, pushing it further buys nothing, so the gradient goes to the
# next good item. With $K = 4$ all three items get mass.
#
# ### Training: one warm-up, four methods
#
# `RecommenderRun` (`core/cases/recommender/train.py`, a trainer of `duetrl.core.run`)
# first trains the GPT by supervised next-item prediction on the sessions (the users' own
# picks), then continues with the method. `branch(method)` starts each method from the same
# warm-up, so the four differ only in their loss: `supervised` (more next-item
# prediction), `reinforce` (no correction), `off_policy` ($f = w$) and `top_k`
# ($f = \lambda_K w$), all with $\beta$ from the behaviour head, $c = 10$, $K = 4$.

# %%
settings = (
    RecommenderSettings(
        sessions=600,
        eval_users=200,
        n_layer=1,
        n_embd=16,
        pretrain_steps=40,
        updates=40,
        eval_every=20,
    )
    if QUICK
    else RecommenderSettings(eval_every=25)
)
warm_up = RecommenderRun(backends["torch"], settings)
while warm_up.updates < settings.pretrain_steps:
    warm_up.step()
runs = {}
for method in ("supervised", "reinforce", "off_policy", "top_k"):
    runs[method] = warm_up.branch(method)
    while not runs[method].finished():
        runs[method].step()
plot_recommender(
    {m: r.history for m, r in runs.items()},
    figure_dir() / "ch06_2_recommender_curves.png",
    settings.pretrain_steps,
)

# %% [markdown]
# ```{figcaption}
# The recommender trained with REINFORCE and with the top-K correction: its measures against
# the update.
# ```
#
# ### The same update in TensorFlow
#
# From the torch run's warm-up weights, the TF learner takes the same batches; after a few
# top-K updates the two models agree to float32 precision (the lockstep tests in
# `tests/test_recommender.py` check it in float64 to 1e-10, for every method). All but the
# attention's key biases: $q \cdot b_k$ adds the same number to every score of a query,
# which the softmax ignores, so their gradient is exactly 0; Adam divides each framework's
# float32 rounding noise on that 0 by its own tiny size and steps anyway, differently in each
# (in the full run by up to $6 \times 10^{-4}$ in 3 updates).

# %%
tf_backend, logged = backends["tf"], warm_up.logs
tf_policy = tf_backend.RecommenderPolicy(warm_up.config, warm_up.catalogue.size, seed=None)
tf_backend.import_params(tf_policy, backends["torch"].export_params(warm_up.policy))
tf_learner = tf_backend.RecommenderLearner(
    tf_policy, "top_k", settings.learning_rate, settings.cap, settings.k
)
torch_twin = warm_up.branch("top_k")  # the same weights, a fresh Adam: as tf_learner's
for step in range(3):
    rows = np.random.default_rng((settings.seed, 10_000 + step)).integers(0, len(logged), 64)
    batch = (
        warm_up.tokens[rows],
        warm_up.positions,
        logged.actions[rows],
        logged.rewards[rows],
        logged.propensities[rows],
        logged.next_items[rows],
        np.ones(logged.actions[rows].shape),
    )
    tf_stats, torch_stats = tf_learner.update(*batch), torch_twin.learner.update(*batch)
    print(f"update {step + 1}: loss torch {torch_stats['loss']:.6f}, tf {tf_stats['loss']:.6f}")
tf_params = tf_backend.export_params(tf_policy)
for key, value in backends["torch"].export_params(torch_twin.policy).items():
    if key.endswith("attn.k_linear.bias"):  # its gradient is exactly 0 (see below)
        continue
    assert_close(tf_params[key], value, "float32_model", name=key)
print("parameters agree after 3 updates (float32, atol 1e-4), the key biases aside")

# %% [markdown]
# ## 6.2.3 Results and analysis
#
# ### On the simulator, and off-line
#
# For 1000 held-out users (`eval_users`), at the state after their 8 items: the **top-K
# reward** is the mean click probability of the K items $\pi$ ranks highest (the slate
# shown); the **expected clicks** are $\sum_a \alpha_K(a) p(u, a)$, for a slate of K draws
# from $\pi$ (the objective the top-K correction climbs). Off-line, from events $\beta$ logged
# for the same users, IPS and SNIPS estimate the click rate of one item drawn from $\pi$
# (weights $\pi/\beta$), and IPS the expected clicks (weights $\alpha_K/\beta$); the simulator
# gives the true values beside them.

# %%
first = runs["top_k"].figures()
print(
    f"oracle top-{settings.k} reward {first['oracle_top_k_reward']:.3f}; the logging "
    f"policy's {first['behaviour_top_k_reward']:.3f}; after the warm-up "
    f"{warm_up.figures()['top_k_reward']:.3f}"
)
print(
    f"{'method':>11} {'top-K':>6} {'clicks':>6} | {'IPS':>5} {'SNIPS':>5} {'true':>5} | "
    f"{'IPS clicks':>10} {'true':>5} | beta head error"
)
for method, r in runs.items():
    f = r.figures()
    print(
        f"{method:>11} {f['top_k_reward']:6.3f} {f['expected_clicks']:6.3f} | "
        f"{f['ips']:5.3f} {f['snips']:5.3f} {f['true_click_rate']:5.3f} | "
        f"{f['ips_expected_clicks']:10.3f} {f['true_expected_clicks']:5.3f} | "
        f"{f['behaviour_head_error']:.4f}"
    )

# %% [markdown]
# ### Over seeds
#
# One seed is one draw. `duetrl recommend compare --backend torch --seeds 0 1 2 3 4` trains
# the four methods on five seeds (each seed: its own catalogue, users and logs; the methods
# of a seed share its warm-up) and reports the IQM with a 95% stratified-bootstrap CI
# (`core/scale/statistics.py`), and the top-K method's paired difference to each other
# method, seed by seed. Measured (torch, default settings, K = 4, 2 cores shared):
#
# | method | top-4 reward, IQM [95% CI] | expected clicks, IQM [95% CI] |
# |---|---|---|
# | supervised next-item | 0.490 [0.415, 0.588] | 1.269 [1.180, 1.450] |
# | REINFORCE, no correction | 0.481 [0.393, 0.552] | 1.332 [1.118, 1.483] |
# | off-policy corrected | 0.531 [0.476, 0.616] | 0.960 [0.714, 1.386] |
# | top-K corrected | **0.583** [0.511, 0.651] | **1.698** [1.513, 1.918] |
#
# Seed by seed (the methods of a seed saw the same users and logs), top-K minus each other
# method on the top-4 reward: REINFORCE **+0.107** [+0.079, +0.135], off-policy **+0.044**
# [+0.023, +0.068], supervised +0.087 [+0.054, +0.119]; ahead in 5 of 5 seeds each time. The
# oracle (knowing each user's $p$) reaches 0.826, the logging policy 0.317.
#
# ### What the numbers say
#
# * **Uncorrected REINFORCE learns the logging policy's bias.** On logs, its gradient is
#   $\mathbb{E}_{a\sim\beta}[R\,\nabla\log\pi]$, maximised by $\pi \propto \beta\,p$: items
#   the old system showed often, clicked or not (90% of the logged events are on the 10 most
#   popular items). Its slate (0.481) is no better than imitating users' own picks (0.490).
# * **The off-policy correction fixes the target, for one item.** With $w = \pi/\beta$ the
#   gradient is that of $\mathbb{E}_{a\sim\pi}[R]$: off-policy has the highest click rate of
#   *one* item drawn from $\pi$ (true 0.575, top-K 0.518, REINFORCE 0.427, supervised 0.328).
#   But it concentrates $\pi$ on one item per user: four draws repeat it, and its expected
#   clicks of a 4-draw slate are the lowest (0.960).
# * **The top-K correction trades a little single-item rate for the slate.** $\lambda_K$
#   takes the gradient off items $\pi$ already shows and gives it to good items it neglects,
#   as in the three-item example: expected clicks 1.698 (+0.695 over off-policy, 5/5 seeds)
#   and the best top-4 slate. With $K = 1$ it *is* the off-policy method.
# * **Off-line estimates track the truth here.** IPS and SNIPS of the click rate are within
#   0.016 and 0.011 (mean over the 20 runs) of the simulator's value and rank the methods as
#   the truth does, although single weights reach 93 ($\beta$ goes down to $7 \cdot 10^{-5}$);
#   IPS of the expected clicks misses by 0.046 on average. Our simulator is the kind of world
#   these estimators assume (a user's clicks on one item do not depend on the others shown).
# * **The behaviour head** learns $\beta$ to a mean absolute error of 0.031 at the logged
#   items, from the stop-gradient state alone; the paper's point is that the logging policy
#   is usually unknown, so $\pi/\beta$ needs such an estimate.
# * **What no correction can do.** The gap to the oracle (0.583 against 0.826) is what the
#   logs never showed: items with $\beta \approx 10^{-4}$ are shown a handful of times in 28,000
#   events, and an importance weight cannot learn the reward of an item nobody logged. The
#   quick mode of this page (a 1-layer model, 80 updates) is too short for these orderings;
#   the seeded learning test (`tests/test_recommender_learning.py`) checks the top-K method
#   against uncorrected REINFORCE in both frameworks.
#
# ## Exercises
#
# Write each in the framework of your choice (NumPy arrays in; a NumPy array, a torch or a tf
# tensor out); the check compares with the float64 oracle on fresh inputs (✓ or ✗).
#
# 1. **The top-K multiplier** $\lambda_K(\pi) = K(1 - \pi)^{K-1}$, elementwise.
# 2. **The corrected weight** $f = \lambda_K(\pi)\, \min(\pi / \beta, c)$ of each logged event
#    (in tf and in torch below: the cap is `tf.minimum` in one, `torch.clamp(max=c)` in the other).
# 3. **SNIPS** $= \sum_n w_n r_n / \sum_n w_n$. (Think: why is it biased, and why is its
#    variance lower than IPS's when one weight is huge?)

# %%
import tensorflow as tf  # noqa: E402  (both frameworks are loaded already, torch first)
import torch  # noqa: E402

check_exercise_1, check_exercise_2, check_exercise_3 = CHECKS


def my_top_k_multiplier(pi, k):
    """lambda_K = K (1 - pi)^(K - 1), in torch: (...) -> (...)."""
    return k * (1 - torch.as_tensor(pi)) ** (k - 1)  # your code here


def my_corrected_weight(pi, beta, cap, k):
    """f = K (1 - pi)^(K - 1) min(pi / beta, c), in tf: (N,), (N,) -> (N,)."""
    pi, beta = tf.constant(pi), tf.constant(beta)
    return k * (1 - pi) ** (k - 1) * tf.minimum(pi / beta, cap)  # your code here


def my_corrected_weight_torch(pi, beta, cap, k):
    """The same in torch: f = K (1 - pi)^(K - 1) min(pi / beta, c)."""
    pi, beta = torch.as_tensor(pi), torch.as_tensor(beta)
    return k * (1 - pi) ** (k - 1) * torch.clamp(pi / beta, max=cap)  # your code here


def my_snips(weights, rewards):
    """sum_n w_n r_n / sum_n w_n, in NumPy."""
    return (weights * rewards).sum() / weights.sum()  # your code here


assert check_exercise_1(my_top_k_multiplier)
assert check_exercise_2(my_corrected_weight) and check_exercise_2(my_corrected_weight_torch)
assert check_exercise_3(my_snips)

# %% [markdown]
# A wrong answer gets a ✗ and what was expected: here the exponent K instead of K - 1 (the
# slate probability's derivative is one power lower than the slate probability):

# %%
assert not check_exercise_1(lambda pi, k: k * (1 - np.asarray(pi)) ** k)
