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
# # RLlib beside duetrl: the same PPO, the same budget, the same weights
#
# Outline section 7.2.3. **RLlib** is the reinforcement-learning library of Ray, a framework
# for running Python across many processes and machines. Its current API stack splits an
# algorithm into three parts:
#
# * **EnvRunner**: steps (vectorised) Gymnasium environments and collects episodes, acting
#   with an inference copy of the network;
# * **Learner**: computes the loss on a train batch and takes the optimiser steps;
# * **RLModule**: the network itself, a `torch.nn.Module` with `forward_inference`,
#   `forward_exploration` and `forward_train`.
#
# RLlib scales the same code from the laptop to a cluster by adding env runners and
# learners. duetrl's trainer is one loop you can read top to bottom. This tutorial puts the
# two side by side on CartPole-v1 and connects them three ways: environments, settings and
# weights.
#
# **What RLlib no longer supports.** RLlib's current API stack (RLModule, Learner,
# EnvRunner) is **PyTorch-only**: RLlib no longer trains TensorFlow models (its older
# TensorFlow policies belong to the deprecated old API stack). duetrl's tf policies therefore
# reach RLlib only through their **canonical weights**, the framework-neutral parameter
# dictionary both duetrl backends export (`policy.fc1.kernel` ..., a kernel laid out
# `(in, out)` for $y = xW + b$).

# %%
import time

import numpy as np

from duetrl.core.backend import load_backends
from duetrl.core.initializers import cast_params
from duetrl.core.interfaces.rl_settings import make_settings
from duetrl.core.plots import plot_curves
from duetrl.core.reference.policy import init_agent_params
from duetrl.core.rl.train import PolicyGradientTrainer
from duetrl.core.scale import rllib
from duetrl.core.tolerances import assert_close
from duetrl.core.tutorial import figure_dir, quick_mode

QUICK = quick_mode()
ENV = "CartPole-v1"
SEED = 0
TOTAL_STEPS = 512 if QUICK else 60_000  # the one budget both libraries get
EVAL_EPISODES = 2 if QUICK else 10
backends = load_backends(["torch", "tf"])  # torch first, as everywhere in duetrl
for backend in backends.values():
    backend.set_num_threads(1)

# %% [markdown]
# TensorFlow on RLlib's current stack fails at once, with RLlib's own words:

# %%
from ray.rllib.algorithms.ppo import PPOConfig  # noqa: E402

try:
    PPOConfig().framework("tf2").get_default_learner_class()
except ValueError as error:
    print("RLlib says:", error)

# %% [markdown]
# ## 1. duetrl's environments, registered with RLlib
#
# RLlib finds an environment by a name given to `ray.tune.registry.register_env` together
# with a creator `env_config -> gymnasium.Env`. `register_rllib_envs` registers duetrl's
# environments (and any Gymnasium id asked for) with `gymnasium.make` as the creator.

# %%
env_ids = rllib.register_rllib_envs([ENV])
print("registered with RLlib:", env_ids)

# %% [markdown]
# ## 2. One PPO, two libraries: the settings, matched
#
# `rllib.ppo_config` turns duetrl's `PPOSettings` into RLlib's `PPOConfig` setting by
# setting: the same network (one hidden ReLU layer of `hidden_dim` units, separate policy and
# value networks), the same $\gamma$, GAE $\lambda$, clip range $\epsilon$, learning rate
# (annealed linearly to 0 over the budget), epochs and minibatches, and RLlib's train batch
# = rollout length $\times$ environments. One difference is arithmetic, not substance:
# duetrl's value loss is $c_V \frac{1}{2}(V - R)^2$, RLlib's $c_V (V - R)^2$, so RLlib gets
# `vf_loss_coeff` $= c_V / 2$. And RLlib starts from duetrl's initial weights (below), so
# both begin with the same policy.

# %%
settings = make_settings("ppo")
config = rllib.ppo_config(ENV, settings, seed=SEED, total_steps=TOTAL_STEPS)
rows = [("gamma", settings.gamma, config.gamma), ("GAE lambda", settings.gae_lambda,
        config.lambda_), ("clip epsilon", settings.clip_eps, config.clip_param),
        ("learning rate", settings.learning_rate, config.lr), ("epochs", settings.update_epochs,
        config.num_epochs), ("batch", settings.num_envs * settings.num_steps,
        config.train_batch_size_per_learner), ("minibatch", settings.num_envs *
        settings.num_steps // settings.num_minibatches, config.minibatch_size),
        ("hidden layers", [settings.hidden_dim], config.model_config["fcnet_hiddens"])]
for name, ours, theirs in rows:
    print(f"{name:>14}  duetrl {str(ours):<22} RLlib {theirs}")

# %% [markdown]
# ## 3. Training both on CartPole-v1, at the same budget
#
# duetrl's `PolicyGradientTrainer` steps 16 environments for 16 steps, then updates; RLlib's
# PPO does the same inside `algo.train()`, one iteration per train batch. (An RLlib iteration
# may sample a few steps more than the batch, finishing what its vector environment started,
# so its curve ends a little past the budget.) Both curves are computed the same way, by
# `rllib.learning_curve`, from every finished training episode: the mean return of the last
# 100 episodes against environment steps (duetrl's "solved" statistic; RLlib's own
# `episode_return_mean` averages only the episodes of one iteration, so it is not used).

# %%
initial = cast_params(init_agent_params("ppo", 4, settings.hidden_dim, 2, False, SEED),
                      "float32")  # duetrl's initial weights, for both libraries

trainer = PolicyGradientTrainer("ppo", ENV, "torch", settings, seed=SEED,
                                total_steps=TOTAL_STEPS)
start = time.perf_counter()
while trainer.env_steps < TOTAL_STEPS:
    trainer.step()
duetrl_seconds = time.perf_counter() - start
duetrl_params = trainer.params()
trainer.close()

with rllib.ray_session(num_cpus=1):
    run = rllib.train_rllib_ppo(ENV, settings, TOTAL_STEPS, seed=SEED, initial_params=initial,
                                max_iterations=1 if QUICK else None)
    rllib_params = rllib.learner_params(run.algo)  # policy and value network, canonical
    run.algo.stop()
print(f"duetrl: {trainer.env_steps} steps in {duetrl_seconds:.1f} s; "
      f"RLlib: {run.env_steps[-1]} steps in {run.seconds:.1f} s "
      f"(including building the algorithm)")

path = plot_curves(
    {"duetrl PPO (torch)": rllib.learning_curve(trainer.episode_log),
     "RLlib PPO": rllib.learning_curve(run.episode_log)},
    figure_dir() / "ch07_2_rllib_vs_duetrl.png", "environment steps",
    "mean return, last 100 training episodes", hline=475.0,
    title=f"PPO on {ENV}: duetrl vs RLlib, same settings and initial weights")
print("saved", path)

# %% [markdown]
# ```{figcaption}
# PPO on CartPole-v1 in duetrl (torch) and in RLlib, same settings and initial weights: the
# mean return of the last 100 training episodes against environment steps.
# ```
#
# **What to see.** Each curve is the mean return of the last 100 finished training episodes
# against environment steps; the dashed line at 475 is CartPole's "solved". Both start
# near 20 (a random policy's episodes are short) from the same weights and climb as PPO
# lengthens the episodes; where one curve rises earlier, the next section shows how little a
# single seed says about which library is faster. Quick mode (512 steps) shows only the first
# few episodes of each: the curves start, they do not climb yet.

# %% [markdown]
# ## 4. The same evaluation for both
#
# These are one seed each. Both start from the same weights and track each other at first,
# then part: different minibatch shuffles and sampling noise are enough, and a gap of this
# size between two seeds of the *same* library is common (chapter 8.3's tutorial, "why one
# seed lies", measures it). Training curves also mix exploration noise into the score.
# `rllib.evaluate` is the one
# evaluation both libraries get: 10 episodes with the fixed seeds 10000, 10001, ... (unseen
# in training), acting **greedily** (the argmax of the logits), so the result depends on the
# weights alone. duetrl's policy is run by the float64 reference network
# (`reference_logits`), RLlib's by its own module (`rllib_logits`).

# %%
duetrl_eval = rllib.evaluate(rllib.reference_logits(duetrl_params), ENV, EVAL_EPISODES)
rllib_module = rllib.build_rllib_module(ENV, settings)
rllib.load_canonical_into_rllib(rllib_module, rllib_params)
rllib_eval = rllib.evaluate(lambda s: rllib.rllib_logits(rllib_module, s), ENV, EVAL_EPISODES)
print(f"greedy mean return over {EVAL_EPISODES} episodes: duetrl {duetrl_eval.mean_return:.1f}"
      f", RLlib {rllib_eval.mean_return:.1f}")

# %% [markdown]
# ## 5. duetrl's weights in an RLlib module: the same actions
#
# RLlib's default PPO torch module keeps its layers under its own names
# (`encoder.actor_encoder.net.mlp.0.weight`, `pi.net.mlp.0.weight`, ...) and stores a
# `Linear` weight as `(out, in)`. `load_canonical_into_rllib` renames and transposes once
# (`rllib.CANONICAL_TO_RLLIB` is the whole map) and refuses a layer of the wrong shape,
# naming it. Below, the duetrl-trained policy goes into a fresh RLlib module, and both
# choose actions for a batch of CartPole states: the logits agree to float32 rounding and
# every chosen action is the same.

# %%
for name, value in rllib.CANONICAL_TO_RLLIB.items():
    print(f"{name:>18} -> {value}")

states = np.random.default_rng(1).normal(0.0, 1.0, size=(500, 4)).astype(np.float32)
rllib.load_canonical_into_rllib(rllib_module, duetrl_params)
comparison = rllib.compare_policies(rllib.reference_logits(duetrl_params), rllib_module, states)
# a whole float32 model; a trained policy's logits reach ~100, and rounding grows with them
assert_close(comparison.rllib_logits, comparison.duetrl_logits, "float32_model",
             "RLlib vs duetrl logits")
print(f"duetrl (torch) -> RLlib: max |logit difference| {comparison.max_logit_error:.1e}, "
      f"same action on {comparison.same_action_fraction:.0%} of {len(states)} states")

# %% [markdown]
# A TensorFlow-built duetrl policy takes the same road: the tf backend exports the same
# canonical dictionary, and RLlib never sees TensorFlow.

# %%
tf = backends["tf"]
tf_agent = tf.Agent("ppo", 4, 2, False, settings)
tf.import_params(tf_agent, duetrl_params)
rllib.load_canonical_into_rllib(rllib_module, tf.export_params(tf_agent))
comparison = rllib.compare_policies(lambda s: tf_agent.policy(tf_agent.as_tensor(s)),
                                    rllib_module, states)
print(f"duetrl (tf) -> RLlib: max |logit difference| {comparison.max_logit_error:.1e}, "
      f"same action on {comparison.same_action_fraction:.0%} of {len(states)} states")

# %% [markdown]
# And the other way: `rllib_to_canonical` read RLlib's trained module into duetrl's
# dictionary (section 3), which either backend can load (`backend.import_params`) and keep
# training. Run by duetrl's own torch network, RLlib's policy scores exactly what it scored
# inside RLlib:

# %%
torch_backend = backends["torch"]
torch_agent = torch_backend.Agent("ppo", 4, 2, False, settings)
torch_backend.import_params(torch_agent, rllib_params)
in_duetrl = rllib.evaluate(lambda s: torch_agent.policy(torch_agent.as_tensor(s)), ENV,
                           EVAL_EPISODES)
print(f"RLlib's policy, greedy: {rllib_eval.mean_return:.1f} in RLlib, "
      f"{in_duetrl.mean_return:.1f} in duetrl (torch)")
assert in_duetrl.returns == rllib_eval.returns

# %% [markdown]
#
# **Takeaways.** RLlib and duetrl agree on the environment interface (Gymnasium), on PPO's
# settings and, through canonical weights, on the network itself, so a policy can move
# between them in either direction and act identically. RLlib pays for its generality in
# start-up time (a Ray cluster, an algorithm with env runners and a learner group) and
# per-iteration overhead; it earns it back when the work is spread over many processes or
# machines. On RLlib's current stack, that work runs in PyTorch only.
#
# ## Exercises
#
# Each exercise is a function with one line marked `# your code here`, preset to an answer
# so that this notebook runs; replace it with yours and run the check, which prints ✓ or ✗
# with what it expected. Each is one of the joints where the two libraries meet.
#
# 1. **One loss, two ways of writing it.** duetrl's value loss is $c_V \frac{1}{2}(V - R)^2$,
#    RLlib's $c' (V - R)^2$. Which `vf_loss_coeff` $c'$ gives RLlib the same loss (and so the
#    same gradient) for duetrl's $c_V$? Compare with `config.vf_loss_coeff` of section 2.
# 2. **Canonical weights in the framework of your choice.** A canonical dense kernel is laid
#    out `(in, out)`, for $y = xW + b$. Build a PyTorch `nn.Linear` *or* a Keras `Dense` from
#    a kernel and a bias and return its output for `x` (both are below). A torch `Linear`
#    stores its weight `(out, in)`: the check includes a square kernel, where a forgotten
#    transpose keeps every shape right and every value wrong. This is the whole of what
#    `load_canonical_into_rllib` does per layer.
# 3. **The statistic of both curves.** From a sequence of episode returns, return after each
#    episode the mean of the last 100 (of all, while there are fewer). The check compares with
#    `rllib.learning_curve`, which drew section 3's figure.

# %%
import keras  # noqa: E402
import torch  # noqa: E402

from duetrl.core.exercise_sets.scale import CHECKS  # noqa: E402

check_exercise_1, check_exercise_2, check_exercise_3 = CHECKS


def rllib_value_coefficient(c_v):
    """RLlib's vf_loss_coeff for duetrl's value coefficient c_V."""
    return c_v / 2  # your code here


def last_100_mean(returns):
    """After each episode, the mean of the last min(100, episodes so far) returns."""
    return [float(np.mean(returns[max(0, i - 99):i + 1]))
            for i in range(len(returns))]  # your code here


assert check_exercise_1(rllib_value_coefficient)
print(f"  yours {rllib_value_coefficient(settings.vf_coef)}, config.vf_loss_coeff "
      f"{config.vf_loss_coeff}")
assert check_exercise_3(last_100_mean)

# %% tags=["torch"]
def dense_output_torch(kernel, bias, x):
    """x W + b through a torch.nn.Linear loaded from the canonical kernel (in, out) and bias."""
    layer = torch.nn.Linear(*kernel.shape, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(kernel.T))  # torch stores (out, in)
        layer.bias.copy_(torch.as_tensor(bias))
    return layer(torch.as_tensor(x))  # your code here


assert check_exercise_2(dense_output_torch)

# %% tags=["tf"]
def dense_output_tf(kernel, bias, x):
    """x W + b through a keras.layers.Dense loaded from the canonical kernel (in, out) and bias."""
    layer = keras.layers.Dense(kernel.shape[1])
    layer.build((None, kernel.shape[0]))
    layer.set_weights([kernel, bias])  # Keras stores (in, out), as the canonical layout
    return layer(x.astype("float32"))  # your code here


assert check_exercise_2(dense_output_tf)

# %% [markdown]
# A wrong answer gets a ✗ and what was expected. Here the torch weight loaded without the
# transpose (`reshape` instead of `.T`: the shapes fit, the numbers do not):

# %%
def dense_without_transpose(kernel, bias, x):
    layer = torch.nn.Linear(*kernel.shape, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(kernel.reshape(kernel.shape[1], kernel.shape[0])))
        layer.bias.copy_(torch.as_tensor(bias))
    return layer(torch.as_tensor(x))


assert not check_exercise_2(dense_without_transpose)
