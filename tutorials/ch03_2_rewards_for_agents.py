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
# # Rewards for agents, and the other ways to join an LM and RL
#
# Outline 3.2.4 (reward design), 9.3.1 (how should an LM and RL interact?) and 1.3.1. The
# previous tutorial, `ch03_2_language_models_as_agents`, used the LM as the *policy* and a
# GPT as an offline sequence model (the Decision Transformer). Here the LM is the *reward*
# (a judge that reads a step's text and says whether the goal was achieved) and the *prior*
# (RL regularised toward the LM's distribution over commands): the LM pretrained on world
# sentences of the previous tutorial, and an LM that read the oracle's episodes. First the
# question every agent meets before any of that: what exactly should it be paid for?
#
# | the LM as | what it does | where |
# |---|---|---|
# | policy | scores the admissible commands, PPO moves its weights | `core/agents/train.py` |
# | reward | judges from the text whether the goal was reached | `core/agents/lm_reward.py` |
# | prior | a small policy is pulled toward its distribution by a KL term | `core/agents/lm_prior.py` |
# | sequence model | reads (return, state, action) tokens, acts offline | `core/agents/decision_transformer.py` |

# %%
import numpy as np

from duetrl.core.agents import lm_prior, lm_reward
from duetrl.core.backend import load_backends
from duetrl.core.plots import plot_curves
from duetrl.core.tolerances import assert_close
from duetrl.core.tutorial import claim, figure_dir, quick_mode

backends = load_backends(["torch", "tf"])
for backend in backends.values():
    backend.set_num_threads(1)  # tiny GPTs: one thread per framework is fastest
QUICK = quick_mode()
ENV = "duetrl/KeyDoor-v0"

# %% [markdown]
# ## 1. 3.2.4 The LM as reward: a judge trained on labelled transcripts
#
# The judge is a GPT of one block that reads the last step of an episode,
#
# `goal : open the red door and leave . action : leave through the red door . you leave through the red door . done :`
#
# and is trained (the LM loss of chapter 2, at the answer's position only) to continue it
# with `yes` or `no`. Its reward is $J(x) = p(\text{yes} \mid x) / (p(\text{yes} \mid x) +
# p(\text{no} \mid x))$. The labels come from the true reward: the ends of episodes played
# by the oracle (successes) and by random play (mostly failures). Both frameworks train
# the same judge from the same weights on the same batches; a float64 forward pass checks
# the scores. Then we measure it against the true reward on *fresh* episodes, and on near
# misses (the oracle stopped one command short: door open, key in hand).

# %%
judge_settings = lm_reward.JudgeSettings(steps=60, seed=1)  # seed: the initial weights
judges, measured = {}, {}
for name, backend in backends.items():
    judges[name], measured[name] = lm_reward.train_judge(backend, ENV, episodes=20, seed=0,
                                                         settings=judge_settings)
    m = measured[name]
    print(f"{name:>5}: fresh episodes: accuracy {m['test']['accuracy']:.2f}, false positives "
          f"{m['test']['false_positive_rate']:.2f}, false negatives "
          f"{m['test']['false_negative_rate']:.2f} (n = {m['test']['n']}); near misses: "
          f"mean J {m['near_miss']['mean_score']:.4f}")
texts, labels = lm_reward.final_examples(lm_reward.labelled_transcripts(ENV, 5, seed=9))
scores = {name: judge.scores(texts) for name, judge in judges.items()}
judge = judges["torch"]
reference = lm_reward.reference_judge_scores(judge.params(), judge.config, judge.tokenizer, texts)
assert_close(scores["torch"], reference, "float32_model", "torch judge vs float64")
print("max |J torch - J tf| after training:", np.abs(scores["torch"] - scores["tf"]).max())
print(texts[0], "->", round(float(reference[0]), 4), "(true:", bool(labels[0]), ")")

# %% [markdown]
# ## 2. 3.2.4 Reward design: one learner, one seed, four rewards
#
# Tabular Q-learning (optimistic start, epsilon-greedy, gamma = 0.99) in one fixed KeyDoor
# world, paid in four ways:
#
# * **sparse**: 1 on reaching the goal. Honest, and hard to find by exploring.
# * **shaped**: + 0.1 the first time the right key is taken and the door opened (paid once).
# * **shaped_repeating**: + 0.1 *every* time: drop the key and take it again, forever.
# * **judge**: $J$ of every step, the judge's belief that the goal is achieved now.
#
# Each panel shows the return of the reward being optimised beside the true success.

# %%
design = lm_reward.DesignSettings(episodes=400)  # about a second per reward
runs = {kind: lm_reward.reward_design_run(kind, design, judge=judge)
        for kind in lm_reward.REWARD_KINDS}
for kind, result in runs.items():
    h = result["history"]
    print(f"{kind:>16}: optimised return of the last 50 episodes "
          f"{np.mean(h['optimised_return'][-50:]):.3f}, true success "
          f"{np.mean(h['true_success'][-50:]):.2f}; greedy policy: return "
          f"{result['greedy_return']:.3f}, success {result['greedy_success']:.0f}")
print("saved", lm_reward.plot_reward_design(runs, figure_dir() / "ch03_2_reward_design.png"))

# %% [markdown]
# ```{figcaption}
# Tabular Q-learning in one KeyDoor world with one seed, one panel per reward: the return of
# the reward being optimised and the true success per episode, each a trailing mean over 20
# episodes.
# ```
#
# What each run shows:
#
# * `shaped_repeating` earns *more* than the honest rewards and never succeeds: the learner
#   found the loop take, drop, take (0.1 every two steps is worth $0.1/(1-\gamma^2) \approx 5$
#   against about 1 for leaving).
# * `judge`: the judge is right on every fresh episode at the threshold 0.5, yet RL does not
#   optimise the thresholded decision, it optimises the *score*. A score of about 0.01 on a
#   state that is not a success, paid every step, is worth $0.01/(1 - \gamma) = 1$: as much as
#   leaving. The learner stays and collects (the judge rewards the near miss a little, and a
#   little forever is a lot). A judge trained longer is more confident (try
#   `JudgeSettings(steps=150)`: about 0.001 on the near misses, and the learner leaves);
#   paying the judge once, or only above a threshold, removes the loop (exercise 2). The
#   small scores are a property of the judge's weights, not of its accuracy: ten judges of
#   60 steps from ten initial seeds, every one right on every fresh episode, were farmed by
#   this learner nine times (true success of the last 50 episodes 0 to 0.04); with seed 0
#   it left through the door (0.94).
# * `sparse` is the honest one: its greedy policy succeeds. `shaped` (paid once) leaves the
#   goal the best thing to do, and its epsilon-greedy episodes succeed often, yet in this run
#   its greedy policy takes the bonus and does not finish: a shaped reward changes what the
#   learner visits and how fast each part of the task is learned, and that can leave the
#   last part (open, leave) less learned than the first. One seed shows that a failure can
#   happen, not how often: change `DesignSettings(seed=...)` and compare.
#
# ## 3. 9.3.1 The LM as prior
#
# The prior LM scores commands as the LM policy does (GLAM): $\pi_0(a \mid s)$. Two LMs
# are tried: the world LM of the previous tutorial (pretrained on true sentences about the
# worlds: it knows what opens what, and has never read an episode), and a GPT that has read
# 20 of the oracle's episodes (the LM loss on the commands' words: it knows what one does in
# these worlds, not where this world's key lies). A small policy,
# one logit per (state, command), starts *at* the prior and is trained by REINFORCE with a
# KL penalty toward it:
#
# $$\pi_\theta(a \mid s) = \text{softmax}_a(\log\pi_0(a \mid s) + \theta_{s,a}),\qquad
#   J(\theta) = \mathbb{E}\Big[\sum_t \gamma^t r_t\Big] - \beta\,
#   \mathbb{E}_s\,\mathrm{KL}(\pi_\theta(\cdot \mid s)\,\|\,\pi_0(\cdot \mid s)),$$
#
# $$\frac{\partial\,\mathrm{KL}}{\partial z_k} = \pi_k(\log\pi_k - \log\pi_{0,k} - \mathrm{KL}).$$
#
# The KL term and its gradient, in both frameworks (autograd) against the float64 formula:

# %%
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402

rng = np.random.default_rng(0)
z, log_prior = rng.normal(size=5), np.log(rng.dirichlet(np.ones(5)))
z_torch = torch.tensor(z, requires_grad=True)
log_pi_torch = torch.log_softmax(z_torch, 0)
kl_torch = torch.sum(torch.exp(log_pi_torch) * (log_pi_torch - torch.as_tensor(log_prior)))
kl_torch.backward()
z_tf = tf.Variable(z)
with tf.GradientTape() as tape:
    log_pi_tf = tf.nn.log_softmax(z_tf)
    kl_tf = tf.reduce_sum(tf.exp(log_pi_tf) * (log_pi_tf - log_prior))
grad_tf = tape.gradient(kl_tf, z_tf)
for name, kl, grad in (("torch", kl_torch.item(), z_torch.grad.numpy()),
                       ("tf", float(kl_tf), grad_tf.numpy())):
    assert_close(kl, lm_prior.kl_to_prior(z, log_prior), "float64", f"{name} KL")
    assert_close(grad, lm_prior.kl_gradient(z, log_prior), "float64", f"{name} dKL/dz")
print(f"KL = {lm_prior.kl_to_prior(z, log_prior):.6f} in torch, tf and float64")

# %% [markdown]
# Now on KeyDoor, a new world every episode, success measured (sampling the policy: the
# hall does not say where the key is) on 20 worlds never trained on (10 in quick mode): no
# LM (a uniform prior, plain tabular REINFORCE), each LM alone as the policy, and each LM as
# prior with RL.
# The world LM is pretrained here as in the previous tutorial (`duetrl agent pretrain`); a
# few lines give it the prior's one method, `log_prior(observation)`, with the scoring of
# the LM policy (`core/agents/batch.layout` and the backend's `inference_outputs`).

# %%
from pathlib import Path  # noqa: E402

from duetrl.core.agents.batch import layout  # noqa: E402
from duetrl.core.agents.pretrain import PretrainSettings, tutorial_world_lm  # noqa: E402
from duetrl.core.agents.train import load_pretrained  # noqa: E402


class WorldLMPrior:
    """A pretrained GPT checkpoint as the prior: log pi_0(. | s) over the admissible commands
    (GLAM scoring, cached per state), the interface of ``lm_prior.PriorLM``."""

    def __init__(self, backend, path):
        self.backend = backend
        self.config, params, self.tokenizer = load_pretrained(path)
        self.model = backend.GPT(self.config, seed=0)
        backend.import_params(self.model, params)
        self.head = backend.ValueHead(self.config.n_embd, seed=0)  # unused: the grid's API
        self.cache = {}

    def log_prior(self, observation):
        key = (observation["goal"], observation["text"], tuple(observation["admissible"]))
        if key not in self.cache:
            grid = layout(self.tokenizer, [observation], self.config.block_size)
            log_pi, _ = self.backend.inference_outputs(
                self.model, self.head, grid["tokens"], grid["mask"], grid["admissible"],
                grid["prompt_last"])
            self.cache[key] = log_pi[0, : grid["counts"][0]]
        return self.cache[key]


# the full build reads the stored world LM (`duetrl agent pretrain`'s defaults, as in ch03_2)
world_lm, _ = tutorial_world_lm(backends["torch"], PretrainSettings(sentences=500, steps=40)
                                if QUICK else None, Path("runs") / "ch03_2_rewards")
priors = {"world LM": WorldLMPrior(backends["torch"], world_lm)}
priors["LM that read episodes"] = lm_prior.PriorLM(backends["torch"], ENV,
                                                   lm_prior.PriorSettings(episodes=20))
priors["LM that read episodes"].fit()
rl = lm_prior.PriorRLSettings(episodes=60 if QUICK else 400, beta=0.1)
every, worlds = (30, 10) if QUICK else (25, 20)  # evaluate every `every` episodes on `worlds`
prior_runs = {"no LM (uniform prior)": lm_prior.prior_rl_run(None, rl, every, worlds)}
alone = {}
for label, prior in priors.items():
    prior_runs[f"{label} as prior + RL"] = lm_prior.prior_rl_run(prior, rl, every, worlds)
    alone[label] = lm_prior.prior_success(prior, ENV, episodes=worlds)
for label, result in prior_runs.items():
    print(f"{label:>36}: success on new worlds {result['history']['eval_success'][0]:.2f} -> "
          f"{result['final_success']:.2f}, training episodes' success (last 50) "
          f"{np.mean(result['history']['success'][-50:]):.2f}")
for label, success in alone.items():
    print(f"{label + ' alone as the policy':>36}: success on new worlds {success:.2f}")
# the text's figures (the end of this page; the full run): success on new worlds
for label, figure in (("no LM (uniform prior)", 0.10), ("world LM as prior + RL", 0.20),
                      ("LM that read episodes as prior + RL", 0.15)):
    claim(f"{label}: success on new worlds", prior_runs[label]["final_success"], figure, 0.005)
claim("LM that read episodes as prior + RL: the last 50 training episodes' success",
      np.mean(prior_runs["LM that read episodes as prior + RL"]["history"]["success"][-50:]),
      0.38, 0.005)
for label, figure in (("world LM", 0.15), ("LM that read episodes", 0.50)):
    claim(f"{label} alone: success on new worlds", alone[label], figure, 0.005)
curves = {label: (r["history"]["eval_episode"], r["history"]["eval_success"])
          for label, r in prior_runs.items()}
span = [0, rl.episodes]
curves.update({f"{label} alone": (span, [success] * 2) for label, success in alone.items()})
print("saved", plot_curves(curves, figure_dir() / "ch03_2_lm_prior.png", "training episodes",
                           "success on new worlds", title="the LM as prior (KeyDoor)"))

# %% [markdown]
# ```{figcaption}
# Success on KeyDoor worlds never trained on against training episodes, for tabular REINFORCE
# with a uniform prior (no LM) and with each of the two LMs as prior and a KL penalty toward
# it; the horizontal lines are each LM alone as the policy.
# ```
#
# The two LMs know different things, and a prior passes on what it knows *and* what it does
# not. Here is the world LM acting alone in one new world:

# %%
env = lm_reward.make_text_env(ENV, max_steps=rl.max_steps)
observation, _ = env.reset(seed=10**6)
trace = []  # each step's {command: probability}
for _ in range(6):
    log_p = priors["world LM"].log_prior(observation)
    trace.append(dict(zip(observation["admissible"], np.exp(log_p))))
    print(f"{observation['text'][:60]:<60} | " + ", ".join(
        f"{c} {p:.2f}" for c, p in zip(observation["admissible"], np.exp(log_p))))
    observation, _, terminated, truncated, _ = env.step(int(np.argmax(log_p)))
    if terminated or truncated:
        break
if not QUICK:  # the text's figures (below; the full run's world LM)
    claim("the world LM in the kitchen: go to the hall", trace[1]["go to the hall"], 0.61, 0.005)
    claim("the world LM in the kitchen: take the green key", trace[1]["take the green key"],
          0.39, 0.005)
    claim("the world LM back in the hall: go back to the kitchen",
          trace[2]["go back to the kitchen"], 1.00, 0.005)

# %% [markdown]
# What it showed when measured (full run, with the world LM of `duetrl agent pretrain`'s
# defaults; the quick run trains both LMs less):
#
# * **The LM that read episodes** knows the whole routine, rooms included: alone it
#   succeeds in 0.50 of new worlds. As a prior with RL it fell to 0.15 on new worlds (0.38
#   of the last 50 training episodes): a tabular policy's logits are per state, and what it
#   learnt in the worlds it trained on is noise in worlds it has never seen, where the prior
#   is all the policy there is. No LM stays at 0.10.
# * **The world LM** knows facts (take the key of the door's colour, open, leave; go back
#   to the hall from a locked door with empty hands) and nothing about which room to search:
#   alone it succeeds in 0.15 of new worlds, as a prior with RL 0.20. The trace above shows
#   why: in the kitchen it prefers going back to the hall (probability 0.61) to taking the
#   green key (0.39), and from the hall it goes back to the kitchen (1.00): a loop that only
#   RL, paid for the key, could break, and a tabular policy in a new world has not been. An earlier world LM,
#   whose corpus had no "go to the hall", gave that command a probability near 0 and did
#   worse than no LM at all (0.00): a prior is only as good as its support, and an action it
#   calls impossible stays nearly impossible.
# * The LM as *policy* (the previous tutorial) moves the LM's own weights instead: PPO raises
#   "go to the hall" where it pays, and what it learns in one world carries to the next. The
#   LM as *reward* needs no demonstrations but can be gamed (section 2); the Decision
#   Transformer needs a dataset, no reward model and no exploration, and can only be as good
#   as what the dataset shows it how to do. `ch09_3_what_the_lm_contributes` puts them side by
#   side.
#
# ## Exercises
#
# Write each in the framework of your choice (NumPy in, NumPy out; the presets use torch and
# TensorFlow); the check compares with the float64 reference on fresh inputs (✓ or ✗).
#
# 1. **The KL-to-prior term.** From the policy's logits `(K,)` and the prior's
#    log-probabilities `(K,)`, return $\mathrm{KL}(\pi \| \pi_0)$.
# 2. **A judge reward that cannot be farmed.** Return the reward of one step from the
#    judge's score $J$ and whether the episode ended: $1[J > 0.5]$ at the end of an episode,
#    0 before. (Then re-run section 2 with it in place of the per-step score: the loop is
#    worth nothing any more.)

# %%
from duetrl.core.exercises import compare  # noqa: E402


def kl_to_prior(logits, log_prior):
    """KL(softmax(logits) || pi_0): (K,), (K,) -> ()."""
    log_pi = torch.log_softmax(torch.as_tensor(logits), 0)
    return float(torch.sum(log_pi.exp() * (log_pi - torch.as_tensor(log_prior))))  # your code here


def kl_to_prior_tf(logits, log_prior):
    """KL(softmax(logits) || pi_0), the same in tf: (K,), (K,) -> ()."""
    log_pi = tf.nn.log_softmax(tf.constant(logits), 0)
    return float(
        tf.reduce_sum(tf.exp(log_pi) * (log_pi - tf.constant(log_prior)))
    )  # your code here


def judge_reward(score, ended):
    """The judge's reward of one step: (N,) scores, (N,) 0/1 ended -> (N,)."""
    return tf.where(
        tf.constant(ended) > 0, tf.cast(tf.constant(score) > 0.5, tf.float64), 0.0
    ).numpy()  # your code here


cases = [(rng.normal(size=k), np.log(rng.dirichlet(np.ones(k)))) for k in (2, 4, 9)]
assert compare(1, kl_to_prior, lm_prior.kl_to_prior, cases, "KL(pi || pi_0)")
assert compare(1, kl_to_prior_tf, lm_prior.kl_to_prior, cases, "KL(pi || pi_0)")
judge_cases = [(rng.random(n), (rng.random(n) < 0.3).astype(float)) for n in (3, 8, 20)]
assert compare(2, judge_reward, lambda s, e: ((s > 0.5) & (e > 0)).astype(float), judge_cases,
               "the judge's reward")

# %% [markdown]
# A wrong answer gets a ✗ and what was expected (here: the KL the other way round,
# $\mathrm{KL}(\pi_0 \| \pi)$, another divergence with another gradient):

# %%
assert not compare(1, lambda z, lp: lm_prior.kl_to_prior(lp, np.log(np.exp(z) / np.exp(z).sum())),
                   lm_prior.kl_to_prior, cases, "KL(pi || pi_0)")
