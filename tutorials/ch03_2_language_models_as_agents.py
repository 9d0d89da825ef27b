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
# # Language models as agents: text worlds, a pretrained LM that scores commands, PPO, and the Decision Transformer
#
# Outline 3.2.1-3.2.3 and 3.2.5. Chapter 3.1 trained a language model with RL; here the
# language model *is* the agent's policy, in a world described in words (Carta et al. 2023,
# "GLAM"), and, turned around, a GPT reads (return, state, action) tokens and acts offline
# (Chen et al. 2021, the Decision Transformer). Both frameworks side by side wherever there
# are tensors. The next tutorial, `ch03_2_rewards_for_agents`, is 3.2.4 (what to pay the
# agent) and the other ways to join an LM and RL (as reward, as prior); `ch09_3_what_the_lm_contributes`
# measures, over seeds, what the pretrained LM is worth (9.3.1, 9.3.2).

# %%
from pathlib import Path

import numpy as np

from duetrl.core.agents.batch import layout
from duetrl.core.agents.decision_transformer import DTRun, DTSettings, plot_returns
from duetrl.core.agents.pretrain import PretrainSettings, pretraining_corpus, tutorial_world_lm
from duetrl.core.agents.settings import AgentSettings
from duetrl.core.agents.train import LMAgentRun, load_pretrained
from duetrl.core.backend import load_backends
from duetrl.core.envs.text import KeyDoorEnv, show
from duetrl.core.plots import plot_curves
from duetrl.core.reference import lm_agent as oracle
from duetrl.core.tolerances import assert_close
from duetrl.core.tutorial import figure_dir, quick_mode

backends = load_backends(["torch", "tf"])
for backend in backends.values():
    backend.set_num_threads(1)  # a tiny GPT: one thread per framework is fastest
QUICK = quick_mode()

# %% [markdown]
# ## 1. 3.2.1 The algorithm at a glance
#
# The agent reads the goal and what it perceives, in words, and chooses one of the commands
# the world admits there. One PPO update of the LM policy:
#
# 1. **pretrain** (once, before any RL): the GPT reads true sentences about the world;
# 2. **score**: in every state, the LM's probability of each admissible command after the
#    prompt is the policy $\pi_\theta(a \mid s)$, and a value head on the prompt's last hidden
#    state is $V(s)$;
# 3. **act**: play a batch of episodes, sampling commands from $\pi_\theta$;
# 4. **advantages**: GAE from the rewards and $V$;
# 5. **learn**: a few PPO steps on the clipped objective move the LM's own weights.
#
# The offline alternative (3.2.5's last section) needs no reward model and no exploration: a
# GPT learns to continue (return, state, action) sequences of a fixed dataset.
#
# ## 2. 3.2.2 Text worlds: states and actions in words
#
# An observation is three texts: the goal, what the agent perceives, and the admissible
# commands (the list changes from state to state). The action is an index into that list.
# `duetrl/KeyDoor-v0`: find the key of the door's colour, open the door, leave. Every world
# has an oracle (a breadth-first search over its model) and can be played by a person:
# `duetrl play duetrl/KeyDoor-v0` (or `--oracle` to watch the search play).

# %%
env = KeyDoorEnv()
observation, _ = env.reset(seed=3)
print(show(observation))
done, steps = False, 0
while not done:
    action = env.oracle_action()
    command = observation["admissible"][action]
    observation, reward, terminated, truncated, info = env.step(action)
    steps += 1
    print(f"> {command:<30} reward {reward:.0f}  | {observation['text']}")
    done = terminated or truncated
print(f"the oracle succeeded in {steps} steps: {info['success']}")
heldout = KeyDoorEnv(split="heldout")
print("a held-out world:", heldout.reset(seed=3)[0]["goal"])

# %% [markdown]
# The colours and rooms are split in two. RL trains on `split="train"` worlds (red, blue,
# green, yellow doors); the `heldout` worlds' doors are purple or orange, words that RL never
# shows the agent. Whether a policy still acts well there is the generalisation test of 9.3.2.
#
# ## 3. 3.2.3 An LM that knows the world: pretraining
#
# What an LM should bring to RL is knowledge gathered before it: which key opens which door,
# that one leaves through an open door. We make that knowledge in code: true sentences about
# the worlds (every colour, held-out ones included), half of them in the policy's own prompt
# format, ending with the command a world fact prescribes. Navigation (which room holds the
# key) is not a fact of the world, and is not in the corpus: that is RL's job. The GPT
# (2 blocks, width 32) is trained by the LM loss of chapter 2 (`duetrl agent pretrain`); its
# weights are canonical, so the same file starts the policy in both frameworks.
#
# Two families of the corpus are there because a measurement asked for them. With the facts
# alone, the LM gives "take the blue key" the same probability whether the door is blue or
# red: it never compares the goal's colour with the key's, and PPO then learns to take
# whichever key it finds. A quarter of the sentences state that comparison in a shape of
# their own ("the red door and the blue key : it does not open ."), and some prompt-format
# facts read the hall's notes aloud ("the study has a red key": go back to the study).

# %%
for sentence in pretraining_corpus(seed=0, sentences=8, prompt_fraction=0.5,
                                   match_fraction=0.25, hall_facts=True):
    print("  ", sentence)
# quick mode pretrains a small LM here; the full build reads the one `duetrl agent pretrain`
# wrote with the same defaults (stored; DUETRL_RETRAIN=1 pretrains it here, about a minute)
world_lm, record = tutorial_world_lm(backends["torch"], PretrainSettings(sentences=1000, steps=100)
                                     if QUICK else None, Path("runs") / "ch03_2")
print(f"pretrained on {record['corpus_tokens']} tokens, {record['steps']} steps: "
      f"validation loss {record['val_loss']:.3f} nats per token")

# %% [markdown]
# ## 4. 3.2.3 The policy: scoring commands with the LM
#
# The LM's policy over the admissible commands $a_1..a_K$ (GLAM) is the probability of each
# command's words after the prompt $p$ (goal, observation, `action :`), renormalised:
#
# $$\text{score}_k = \sum_{i=1}^{L_k} \log p_{LM}(a_{k,i} \mid p, a_{k,<i}), \qquad
#   \pi(a_k \mid s) = \frac{e^{\text{score}_k}}{\sum_j e^{\text{score}_j}}.$$
#
# The sum, not the mean, over a command's words: the policy stays the LM's own distribution
# over whole commands (a mean would reward long commands whose later words are easy to
# guess). Each state becomes $K$ rows, prompt + command, right-padded; the mask marks the
# columns whose *next* token is a command word. The value $V(s)$ is a linear head on the
# prompt's last hidden state. Both frameworks score the same rows from the same pretrained
# weights, and a float64 NumPy computation that scores each command on its own (no padding,
# no mask) checks them.

# %%
config, params, tokenizer = load_pretrained(world_lm)
observation, _ = env.reset(seed=3)
observation, *_ = env.step(observation["admissible"].index("go to the kitchen"))
grid = layout(tokenizer, [observation], config.block_size)
print(show(observation))
print("rows (commands) x columns:", grid["tokens"].shape)
models, heads, log_pis = {}, {}, {}
for name, backend in backends.items():
    models[name] = backend.GPT(config, seed=0)
    backend.import_params(models[name], params)  # the same pretrained weights in both
    heads[name] = backend.ValueHead(config.n_embd, seed=0)
    log_pi, value = backend.inference_outputs(models[name], heads[name], grid["tokens"], grid["mask"],
                                              grid["admissible"], grid["prompt_last"])
    log_pis[name] = log_pi[0, : grid["counts"][0]]
prompt_ids = grid["tokens"][0, : grid["prompt_last"][0] + 1]
command_ids = [tokenizer.encode(c) for c in observation["admissible"]]
reference = oracle.action_log_probs(oracle.command_scores(params, config, prompt_ids,
                                                          command_ids))
for name in backends:
    assert_close(log_pis[name], reference, "float32_model", f"{name} log pi vs float64")
print("pi of the pretrained LM (torch = tf = float64):")
for command, p in zip(observation["admissible"], np.exp(reference)):
    print(f"  {p:.3f}  {command}")

# %% [markdown]
# The key of the door's colour lies on the floor, and the pretrained LM gives taking it a
# large share of its probability: a fact it read in pretraining, before any reward. How
# much it compares the two colours, measured over 48 worlds with the full pretraining
# (`take_probabilities` in `core/agents/pretrain.py`): "take the K key" gets 0.47 when K is
# the door's colour and 0.36 when it is not (held-out colours 0.63 and 0.39). A preference,
# not a rule: this comparison is the hardest thing the small LM learns, and PPO finishes it.
# The same LM
# from random weights spreads its probability about evenly (and prefers short commands:
# each extra word multiplies by a probability below one). On a held-out colour the
# pretrained LM knows the fact too: it read sentences about purple doors, RL never will.

# %%
scratch = LMAgentRun(backends["torch"], AgentSettings(policy="lm-scratch", num_envs=1))
h_observation, _ = heldout.reset(seed=3)
while "lies on the floor" not in h_observation["text"] or heldout.state.location == "hall":
    h_observation, *_ = heldout.step(heldout.oracle_action())
h_grid = layout(tokenizer, [h_observation], config.block_size)
h_log_pi = backends["torch"].inference_outputs(
    models["torch"], heads["torch"], h_grid["tokens"], h_grid["mask"], h_grid["admissible"],
    h_grid["prompt_last"])[0][0, : h_grid["counts"][0]]
print(f"{'command':<28} {'pretrained':>10} {'scratch':>8}")
for command, p, q in zip(observation["admissible"], np.exp(reference),
                         scratch.probabilities(observation)):
    print(f"{command:<28} {p:>10.3f} {q:>8.3f}")
print("held-out world:", h_observation["text"])
for command, p in zip(h_observation["admissible"], np.exp(h_log_pi)):
    print(f"  pretrained {p:.3f}  {command}")
scratch.close()

# %% [markdown]
# ## 5. 3.2.3, 3.2.5 PPO with the pretrained LM as the policy
#
# `LMAgentRun` plays a batch of episodes with the LM, computes GAE advantages on the host and
# takes PPO steps in the chosen backend (`duetrl agent train --policy lm --pretrained FILE
# --backend torch|tf`). The sampling noise is NumPy's, so both frameworks play the same first
# episodes from the same weights, and their curves part only as float32 rounding
# accumulates. Success is measured three ways after training: greedy (argmax $\pi$) and
# sampled from $\pi$, on new train-split worlds, and sampled on held-out worlds.

# %%
updates = 1 if QUICK else AgentSettings.updates  # 100: the KeyDoor recipe (lr 3e-4, clip 0.1)
settings = AgentSettings(env="duetrl/KeyDoor-v0", policy="lm", lm_checkpoint=str(world_lm),
                         num_envs=2 if QUICK else 8, updates=updates,
                         eval_episodes=2 if QUICK else 20)
curves = {}
for name, backend in backends.items():
    trainer = LMAgentRun(backend, settings)
    for _ in range(updates):
        metrics = trainer.step()
    h = trainer.history
    curves[f"{name}: success of the update's episodes"] = (h["env_steps"], h["success_rate"])
    greedy = trainer.success_rate()["success_rate"]
    sampled = trainer.success_rate(greedy=False)["success_rate"]
    held = trainer.success_rate(split="heldout", greedy=False)["success_rate"]
    print(f"{name:>5}: {trainer.env_steps} env steps, last loss {metrics['loss']:.3f}, entropy "
          f"{metrics['entropy']:.2f} nats; success greedy {greedy:.2f}, sampled {sampled:.2f}, "
          f"held-out (sampled) {held:.2f}")
    trainer.close()
print("saved", plot_curves(curves, figure_dir() / "ch03_2_lm_policy_ppo.png", "env steps",
                           "success rate", title="PPO with the pretrained LM as the policy "
                           "(KeyDoor)"))

# %% [markdown]
# ```{figcaption}
# PPO with the pretrained LM as the policy on KeyDoor, in PyTorch and TensorFlow: the success
# rate of each update's episodes against environment steps, for one seed.
# ```
#
# **3.2.5 Training, and whether it converges.** What the curve shows, and what it does not:
#
# * The pretrained LM succeeds in some episodes from the first update: it takes keys, opens
#   doors and leaves without having been paid for it. What it must learn is where to go
#   first, and the reward only arrives at the end of an episode, so the curve of one seed is
#   jumpy: eight episodes an update make the success rate a multiple of 1/8.
# * Measured with these settings (`duetrl agent train`'s defaults, seed 0; greedy success on
#   100 new worlds every 10 updates, `benchmarks/lm_agent.py`): PyTorch (1 thread) 0.23,
#   0.21, 0.30, 0.66, 0.91, 0.72, 0.36, 0.84, 0.62 and 0.97 at update 100 (0.945 on 200 other
#   worlds), 53 s of CPU; TensorFlow (2 threads) 0.25, 0.24, 0.52, 0.54, 0.67 and 1.00 at
#   update 60 (1.00 on 200 others), 51 s of CPU. The two frameworks play the same first
#   episodes and part after a few updates: float32 sums differ (the thread count changes
#   them too), and a tie between two commands can go either way. The small steps (learning
#   rate 3e-4, clip 0.1) are deliberate: larger ones wear away what pretraining gave; the
#   curve of one seed still goes down as well as up.
# * PPO's guarantees are local: the clipped ratio keeps each update close to the last, the
#   entropy (in nats over the admissible commands) tells how much the policy still explores.
#   Nothing promises a monotone curve; convergence is to a local optimum of a policy that
#   sees only the current text.
# * One seed is an anecdote: how much the pretraining is worth, with intervals over ten
#   seeds and against an LM from random weights and an MLP, is `ch09_3_what_the_lm_contributes`.
# * The greedy and the sampled success can differ: a greedy policy that cannot tell two
#   states apart chooses the same command in both, for ever; sampling breaks such loops.
#
# ## 6. 3.2.1, 3.2.5 Offline RL as sequence modelling: the Decision Transformer
#
# Tokens $(R_t, s_t, a_t)$ with the return-to-go $R_t = \sum_{t' \ge t} r_{t'}$; a causal GPT
# predicts $a_t$. At test time we *ask* for a return $R_0$ and subtract the rewards received.
# Trained on a mixed-quality behaviour dataset (FrozenLake, episodes acting at random with a
# probability drawn per episode), it is judged by the return achieved against the return
# asked for, beside behaviour cloning (the same GPT without return tokens) and the behaviour
# policy itself (`duetrl dt train|eval`).

# %%
dt_settings = DTSettings(episodes=100 if QUICK else 1000, steps=10 if QUICK else 300,
                         eval_episodes=4 if QUICK else 100)
results = {}
for name, backend in backends.items():
    run = DTRun(backend, dt_settings)
    while not run.finished():
        run.step()
    results[name] = run.returns_asked()
    asked = ", ".join(f"{t:.1f} -> {a:.2f}" for t, a in zip(results[name]["targets"],
                                                             results[name]["achieved"]))
    print(f"{name:>5}: asked -> achieved {asked}; BC {results[name]['bc_return']:.2f}, "
          f"behaviour {results[name]['behaviour_return']:.2f}")
print("saved", plot_returns(results, figure_dir() / "ch03_2_dt_returns.png"))

# %% [markdown]
# ```{figcaption}
# The Decision Transformer on FrozenLake, in PyTorch and TensorFlow: the mean return achieved
# against the return asked for, beside the diagonal achieved = asked and, as horizontal lines,
# the returns of behaviour cloning and of the behaviour policy, which are told no return.
# ```
#
# With the full settings (1000 episodes, 300 steps) the achieved return follows the asked
# one: asked 0, 0.5, 1, achieved about 0.08, 0.27, 0.85, where behaviour cloning gets 0.36
# and the behaviour policy 0.43 (`duetrl dt train` then `duetrl dt eval`). Asking for the
# top return extracts the best behaviour in the data, better than imitating all of it; a
# return above anything in the data cannot be asked for (it is refused), because the model
# has never seen how to reach it. Quick mode trains too little for this.

# %% [markdown]
# ## Exercises
#
# Each exercise is a function with one line marked `# your code here`, preset to an answer so
# that this notebook runs; write it in the framework of your choice (the presets use torch
# for one and TensorFlow for the other; NumPy in, NumPy out) and run the check below it,
# which compares it with the float64 reference on fresh inputs and prints ✓ or ✗.
#
# 1. **Scoring commands.** From the token log-probabilities `(R, T-1)` of the rows of one
#    state and their mask `(R, T-1)`, return $\log\pi(a_k \mid s)$ `(R,)`: each row's sum of
#    masked log-probabilities, then a log-softmax over the rows.
# 2. **Return-to-go tokens.** From an episode's rewards `(L,)`, return
#    $R_t = \sum_{t' \ge t} r_{t'}$ `(L,)`, the value the Decision Transformer is told.

# %%
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402

from duetrl.core.agents.dt_data import return_to_go  # noqa: E402
from duetrl.core.exercises import compare  # noqa: E402


def log_pi_of_rows(token_logp, mask):
    """log pi over the K rows of one state: (K, T-1), (K, T-1) -> (K,)."""
    return torch.log_softmax(
        (torch.as_tensor(token_logp) * torch.as_tensor(mask)).sum(1), 0
    ).numpy()  # your code here


def log_pi_of_rows_tf(token_logp, mask):
    """log pi over the K rows of one state, the same in tf: (K, T-1), (K, T-1) -> (K,)."""
    return tf.nn.log_softmax(
        tf.reduce_sum(tf.constant(token_logp) * tf.constant(mask), 1), 0
    )  # your code here


def returns_to_go(rewards):
    """R_t = sum_{t' >= t} r_t': (L,) -> (L,)."""
    return tf.reverse(
        tf.cumsum(tf.reverse(tf.constant(rewards, tf.float64), [0])), [0]
    ).numpy()  # your code here


def reference_log_pi(token_logp, mask):
    return oracle.action_log_probs((token_logp * mask).sum(axis=1))


rng = np.random.default_rng(0)
cases = []
for k, t in ((2, 5), (4, 9), (7, 3)):
    logp = -rng.exponential(size=(k, t))
    mask = (rng.random((k, t)) < 0.5).astype(float)
    cases.append((logp, mask))
assert compare(1, log_pi_of_rows, reference_log_pi, cases, "log pi over the admissible rows")
assert compare(1, log_pi_of_rows_tf, reference_log_pi, cases, "log pi over the admissible rows")
assert compare(2, returns_to_go, return_to_go,
               [(rng.integers(0, 2, size=n).astype(float),) for n in (1, 4, 9)],
               "returns-to-go")

# %% [markdown]
# A wrong answer gets a ✗ and what was expected (here: the mean over a command's words
# instead of the sum, which is no distribution over whole commands):

# %%
assert not compare(1, lambda lp, m: oracle.action_log_probs((lp * m).sum(1) / np.maximum(
    m.sum(1), 1)), reference_log_pi, cases, "log pi over the admissible rows")
