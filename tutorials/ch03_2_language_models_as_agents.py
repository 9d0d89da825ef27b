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
# # Language models as agents: text worlds, an LM that scores commands, PPO, and the Decision Transformer
#
# Outline 3.2.1-3.2.3 and 3.2.5. Chapter 3.1 trained a language model with RL; here the
# language model *is* the agent's policy, in a world described in words (Carta et al. 2023,
# "GLAM"), and, turned around, a GPT reads (return, state, action) tokens and acts offline
# (Chen et al. 2021, the Decision Transformer). Both frameworks side by side wherever there
# are tensors. The next tutorial, `ch03_2_rewards_for_agents`, designs the reward and joins
# the LM to RL in the other ways (as reward, as prior).

# %%
import numpy as np

from duetrl.core.agents.batch import layout
from duetrl.core.agents.decision_transformer import DTRun, DTSettings, plot_returns
from duetrl.core.agents.settings import AgentSettings
from duetrl.core.agents.tokenizer import WordTokenizer
from duetrl.core.agents.train import LMAgentRun
from duetrl.core.backend import load_backends
from duetrl.core.envs.text import KeyDoorEnv, show
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.plots import plot_curves
from duetrl.core.reference import lm_agent as oracle
from duetrl.core.tolerances import assert_close
from duetrl.core.tutorial import figure_dir, quick_mode

backends = load_backends(["torch", "tf"])
for backend in backends.values():
    backend.set_num_threads(1)  # a tiny GPT: one thread per framework is fastest
QUICK = quick_mode()

# %% [markdown]
# ## 1. 3.2.2 Text worlds
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
    print(f"> {command:<28} reward {reward:.0f}  | {observation['text']}")
    done = terminated or truncated
print(f"the oracle succeeded in {steps} steps: {info['success']}")

# %% [markdown]
# ## 2. 3.2.3 Scoring commands with the LM
#
# The LM's policy over the admissible commands $a_1..a_K$ (GLAM) is the probability of each
# command's words after the prompt (goal, observation, `action :`), renormalised:
#
# $$\text{score}_k = \sum_{i=1}^{L_k} \log p_{LM}(a_{k,i} \mid p, a_{k,<i}), \qquad
#   \pi(a_k \mid s) = \frac{e^{\text{score}_k}}{\sum_j e^{\text{score}_j}}.$$
#
# The sum, not the mean, over a command's words: the policy stays the LM's own distribution
# over whole commands. Each state becomes $K$ rows, prompt + command, right-padded; the mask
# marks the columns whose *next* token is a command word. Both frameworks score the same rows
# from the same weights, and a float64 NumPy computation that scores each command on its own
# (no padding, no mask) checks them.

# %%
tokenizer = WordTokenizer.from_words(KeyDoorEnv.vocabulary())
config = GPTConfig(vocab_size=tokenizer.vocab_size, block_size=128, n_layer=2, n_head=2,
                   n_embd=32)
observation, _ = env.reset(seed=3)
grid = layout(tokenizer, [observation], config.block_size)
print("rows (commands) x columns:", grid["tokens"].shape, "| mask of row 0:",
      grid["mask"][0].astype(int))
models, log_pis = {}, {}
for name, backend in backends.items():
    models[name] = backend.GPT(config, seed=0)  # the same canonical weights in both
    head = backend.ValueHead(config.n_embd, seed=0)
    log_pi, value = backend.inference_outputs(models[name], head, grid["tokens"], grid["mask"],
                                              grid["admissible"], grid["prompt_last"])
    log_pis[name] = log_pi[0, : grid["counts"][0]]
params = backends["torch"].export_params(models["torch"])
prompt_ids, command_ids = grid["tokens"][0, : grid["prompt_last"][0] + 1], [
    tokenizer.encode(c) for c in observation["admissible"]]
reference = oracle.action_log_probs(oracle.command_scores(params, config, prompt_ids,
                                                          command_ids))
for name in backends:
    assert_close(log_pis[name], reference, "float32_model", f"{name} log pi vs float64")
for command, p in zip(observation["admissible"], np.exp(reference)):
    print(f"  pi({command!r}) = {p:.3f}")

# %% [markdown]
# An untrained LM spreads its probability about evenly over commands of equal length, and
# prefers short commands to long ones (each extra word multiplies by a probability below one).
#
# ## 3. 3.2.3 PPO with the LM as the policy
#
# `LMAgentRun` plays a batch of episodes with the LM, computes GAE advantages on the host and
# takes PPO steps in the chosen backend (`duetrl agent train --backend torch|tf`). The
# sampling noise is NumPy's, so both frameworks play the same first episodes. The LM starts
# from random weights here (a pretrained LM, `duetrl agent pretrain`, is chapter 9.3.2's
# measurement; it was not in this checkout when this tutorial was written).

# %%
updates = 1 if QUICK else 40
settings = AgentSettings(env="duetrl/KeyDoor-v0", policy="lm-scratch", num_envs=4 if QUICK else 8,
                         updates=updates, ent_coef=0.1, learning_rate=1e-2,
                         eval_episodes=4 if QUICK else 20)
curves = {}
for name, backend in backends.items():
    trainer = LMAgentRun(backend, settings)
    for _ in range(updates):
        metrics = trainer.step()
    h = trainer.history
    curves[f"{name}: success of the update's episodes"] = (h["env_steps"], h["success_rate"])
    evaluation = trainer.success_rate()
    print(f"{name:>5}: {trainer.env_steps} env steps, last loss {metrics['loss']:.3f}, "
          f"greedy success {evaluation['success_rate']:.2f}")
    trainer.close()
print("saved", plot_curves(curves, figure_dir() / "ch03_2_lm_policy_ppo.png", "env steps",
                           "success rate", title="PPO with the LM as the policy (KeyDoor)"))

# %% [markdown]
# ## 4. 3.2.1, 3.2.5 Offline RL as sequence modelling: the Decision Transformer
#
# Tokens $(R_t, s_t, a_t)$ with the return-to-go $R_t = \sum_{t' \ge t} r_{t'}$; a causal GPT
# predicts $a_t$. At test time we *ask* for a return $R_0$ and subtract the rewards received.
# Trained on a mixed-quality behaviour dataset (FrozenLake, episodes acting at random with a
# probability drawn per episode), it is judged by the return achieved against the return
# asked for, beside behaviour cloning (the same GPT without return tokens) and the behaviour
# policy itself (`duetrl dt train|eval`).

# %%
dt_settings = DTSettings(episodes=100 if QUICK else 1000, steps=20 if QUICK else 300,
                         eval_episodes=10 if QUICK else 100)
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
    return torch.log_softmax((torch.as_tensor(token_logp) * torch.as_tensor(mask)).sum(1), 0).numpy()  # your code here


def returns_to_go(rewards):
    """R_t = sum_{t' >= t} r_t': (L,) -> (L,)."""
    return tf.reverse(tf.cumsum(tf.reverse(tf.constant(rewards, tf.float64), [0])), [0]).numpy()  # your code here


def reference_log_pi(token_logp, mask):
    return oracle.action_log_probs((token_logp * mask).sum(axis=1))


rng = np.random.default_rng(0)
cases = []
for k, t in ((2, 5), (4, 9), (7, 3)):
    logp = -rng.exponential(size=(k, t))
    mask = (rng.random((k, t)) < 0.5).astype(float)
    cases.append((logp, mask))
assert compare(1, log_pi_of_rows, reference_log_pi, cases, "log pi over the admissible rows")
assert compare(2, returns_to_go, return_to_go,
               [(rng.integers(0, 2, size=n).astype(float),) for n in (1, 4, 9)],
               "returns-to-go")

# %% [markdown]
# A wrong answer gets a ✗ and what was expected (here: the mean over a command's words
# instead of the sum, which is no distribution over whole commands):

# %%
assert not compare(1, lambda lp, m: oracle.action_log_probs((lp * m).sum(1) / np.maximum(
    m.sum(1), 1)), reference_log_pi, cases, "log pi over the admissible rows")
