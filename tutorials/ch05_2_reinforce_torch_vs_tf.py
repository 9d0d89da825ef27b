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
# # REINFORCE in TensorFlow and PyTorch, side by side
#
# Outline listing 5.2 is REINFORCE in TensorFlow. As printed it does not run: it calls a
# `compute_returns` that is never defined, uses the old Gym API (`state = env.reset()`, a
# 4-tuple from `env.step`) and `Adam(lr=...)`, which Keras 3 rejects. The repaired listing
# is `backends/tf/reinforce.py`; its PyTorch twin is `backends/torch/reinforce.py`. Run
# `duetrl diff reinforce` to see them side by side, only the framework differences marked.
# The same files end with the batched update that `duetrl train reinforce` runs (N episodes
# per update), and `reinforce_baseline.py` beside them adds a learned baseline V(s).
# The update rule, from the policy gradient theorem (4.2.3):
#
# $$\theta \leftarrow \theta + \alpha \sum_t \nabla_\theta \log \pi_\theta(a_t|s_t)\, G_t,
#   \qquad G_t = \sum_{k \ge t} \gamma^{k-t} r_k ,$$
#
# which `PolicyNet.compute_loss` writes as the loss $-\frac{1}{T}\sum_t \log\pi(a_t|s_t) G_t$.

# %%
import time

import gymnasium as gym
import numpy as np

from duetrl.core.backend import load_backends
from duetrl.core.initializers import cast_params
from duetrl.core.interfaces.rl_settings import make_settings
from duetrl.core.plots import plot_curves
from duetrl.core.reference.policy import init_agent_params
from duetrl.core.rl.train import PolicyGradientTrainer
from duetrl.core.tolerances import max_abs_error
from duetrl.core.tutorial import figure_dir, quick_mode

backends = load_backends(["torch", "tf"])
for backend in backends.values():
    backend.set_num_threads(1)  # small networks: one thread each is fastest

# %% [markdown]
# ## 1. The listing's `PolicyNet`, in both frameworks, from the same weights
#
# Initial weights are drawn once, in NumPy, and imported into both networks through the
# canonical parameter dictionary (a dense kernel is `(in, out)`; torch's Linear weight is
# transposed once, on import). The sampling noise comes from NumPy too, so both frameworks
# pick the same actions.

# %%
state_dim, hidden_dim, action_dim = 4, 64, 2
params = init_agent_params("reinforce", state_dim, hidden_dim, action_dim, False, seed=0)
policy_params = {k[len("policy."):]: v for k, v in cast_params(params, "float32").items()}
nets = {}
for name, backend in backends.items():
    nets[name] = backend.PolicyNet(state_dim, hidden_dim, action_dim)
    backend.import_params(nets[name], policy_params)
states = np.random.default_rng(0).normal(size=(5, state_dim)).astype(np.float32)
logits = {name: backends[name].to_numpy(net(backends[name].as_tensor(states)))
          for name, net in nets.items()}
print("max |logits torch - logits tf| =", max_abs_error(logits["torch"], logits["tf"])[0])

# %% [markdown]
# ## 2. Listing 5.2, as printed and repaired
#
# The outline's listing, as printed:
#
# ```python
# import tensorflow as tf
#
# class PolicyNet(tf.keras.Model):
#     def __init__(self, state_dim, hidden_dim, action_dim):
#         super().__init__()
#         self.fc1 = tf.keras.layers.Dense(hidden_dim, activation='relu')
#         self.fc2 = tf.keras.layers.Dense(action_dim)
#
#     def call(self, x):
#         x = self.fc1(x)
#         x = self.fc2(x)
#         return x
#
#     def compute_loss(self, states, actions, rewards):
#         logits = self(states)
#         neg_log_prob = tf.nn.sparse_softmax_cross_entropy_with_logits(
#             logits=logits, labels=actions)
#         loss = tf.reduce_mean(neg_log_prob * rewards)
#         return loss
#
# def reinforce(env, policy_net, num_episodes, gamma=0.99):
#     optimizer = tf.keras.optimizers.Adam(lr=1e-3)
#
#     for episode in range(num_episodes):
#         state = env.reset()
#         states, actions, rewards = [], [], []
#         done = False
#         while not done:
#             logits = policy_net(state[None,:])
#             action = tf.random.categorical(logits, 1)[0,0].numpy()
#             next_state, reward, done, _ = env.step(action)
#
#             states.append(state)
#             actions.append(action)
#             rewards.append(reward)
#
#             state = next_state
#
#         states = tf.convert_to_tensor(states, dtype=tf.float32)
#         actions = tf.convert_to_tensor(actions, dtype=tf.int32)
#         returns = compute_returns(rewards, gamma)
#
#         with tf.GradientTape() as tape:
#             loss = policy_net.compute_loss(states, actions, returns)
#         grads = tape.gradient(loss, policy_net.trainable_variables)
#         optimizer.apply_gradients(zip(grads, policy_net.trainable_variables))
#
#         total_reward = sum(rewards)
#         print(f'Episode {episode}: total reward = {total_reward}')
# ```
#
# And repaired (`backends/tf/policy.py` and `backends/tf/reinforce.py`), printed from the
# code this notebook runs. What changed, line by line: `compute_returns` is defined
# (`compute_returns_listing`, exercise 1); Gymnasium's `reset()` returns `(obs, info)` and
# `step` a 5-tuple with *terminated* and *truncated* apart; `Adam(lr=...)` became duetrl's
# Adam with pinned constants (Keras 3 rejects `lr`); the action is drawn by Gumbel-max from
# NumPy noise instead of `tf.random.categorical`, so the PyTorch twin
# (`backends/torch/reinforce.py`) takes the same actions; the act of each step is one call of
# a traced function (`tf.function`'s concrete function), because calling the Keras model
# eagerly costs about 1 ms a call against PyTorch's 0.03 ms (`benchmarks/cartpole.py`), and
# made the listing 20 times slower than its twin; and the function returns the episode
# returns instead of printing them.

# %% tags=["torch"]
import inspect  # noqa: E402

torch_backend = backends["torch"]
for function in (torch_backend.PolicyNet, torch_backend.compute_returns_listing,
                 torch_backend.reinforce):
    print(inspect.getsource(function))

# %% tags=["tf"]
tf_backend = backends["tf"]
for function in (tf_backend.PolicyNet, tf_backend.compute_returns_listing, tf_backend.reinforce):
    print(inspect.getsource(function))

# %% [markdown]
# ## 3. The repaired listing, run in both frameworks
#
# One environment, one episode per update, exactly as the listing does it.

# %%
num_episodes = 15 if quick_mode() else 300
listing_returns, listing_time = {}, {}
for name, backend in backends.items():
    env = gym.make("CartPole-v1")
    start = time.perf_counter()
    listing_returns[name] = backend.reinforce(env, nets[name], num_episodes, gamma=0.99,
                                              learning_rate=1e-2, seed=0)
    listing_time[name] = time.perf_counter() - start
    print(f"{name:>5}: first returns {listing_returns[name][:8]}  ({listing_time[name]:.1f} s)")
same = np.array(listing_returns["torch"]) == np.array(listing_returns["tf"])
print(f"identical episode returns in {same.sum()} of {num_episodes} episodes "
      "(float32 rounding can flip a near-tie action after many updates)")

# %% [markdown]
# ## 4. The fast version: batched over vector environments
#
# `duetrl train reinforce` runs the same algorithm with 8 CartPole copies stepped together
# by NumPy (`gymnasium.make_vec(..., vectorization_mode="vector_entry_point")`), one episode
# from each per update, one batched network call per step and advantage normalisation. The
# loop lives once in `core/rl`; each backend supplies only the network and the update.

# %%
updates = 12 if quick_mode() else 120
curves = {}
for name in backends:
    trainer = PolicyGradientTrainer("reinforce", "CartPole-v1", name, make_settings("reinforce"), seed=0)
    start = time.perf_counter()
    for _ in range(updates):
        trainer.step()
    elapsed = time.perf_counter() - start
    steps = [s for s, _ in trainer.episode_log]
    returns = [r for _, r in trainer.episode_log]
    # trailing mean of the last 8 episodes, drawn at the step the 8th of them ended: each
    # point averages 8 real episodes (np.convolve's mode="same" would pad with zeros and
    # drag both ends of the curve down)
    smoothed = np.convolve(returns, np.ones(8) / 8, mode="valid")
    curves[f"{name} (batched)"] = (steps[len(steps) - len(smoothed):], smoothed)
    print(f"{name:>5}: {trainer.env_steps} steps, {trainer.episodes} episodes, "
          f"mean return of the last 100: {trainer.mean_return():.1f}, {elapsed:.1f} s")

# %%
path = plot_curves(curves, figure_dir() / "ch05_2_reinforce_torch_vs_tf.png",
                   "environment steps", "mean return of the last 8 episodes",
                   title="REINFORCE on CartPole-v1: PyTorch and TensorFlow", hline=475)
print("saved", path)

# %% [markdown]
# ```{figcaption}
# REINFORCE on CartPole-v1 in PyTorch and TensorFlow: the mean return of the last 8 finished
# episodes against environment steps, with the 475 of a solved task dashed.
# ```
#
# **What to see.** Each point is the mean return of the last 8 finished episodes, at the
# environment step where the 8th ended; the dashed line is CartPole's 475. Both frameworks
# start near 20 (a random policy drops the pole within a few dozen steps) and climb as the
# episodes lengthen. The two curves lie on top of each other (quick mode: the same 96
# episodes): the same weights and the same noise. Over a long run float32 rounding in two
# libraries can flip a near-tie action, and from then on the episodes differ. The smoothing is *trailing*: an earlier version used
# `np.convolve(..., mode="same")`, which pads the ends with zeros, so the last points
# averaged a few real episodes with zeros and the end of training looked like a collapse
# that never happened.

# %% [markdown]
# ## Exercises
#
# Each exercise is a function with one line marked `# your code here`, preset to an answer so
# that this notebook runs; replace it with your own and run the check below it. A check
# compares your function with the float64 reference on fresh random inputs and prints ✓ or ✗
# with what it expected.
#
# 1. **The function listing 5.2 forgot.** Write the returns of one episode that terminates,
#    $G_t = r_t + \gamma G_{t+1}$ with $G_T = 0$, for a 1-D array of rewards. (What do
#    $\gamma = 0$ and $\gamma = 1$ give?) The cell compares your returns with
#    `compute_returns_listing` in both frameworks.
# 2. **The loss, in the framework of your choice.** Write
#    $L = -\frac{1}{T}\sum_t \log \pi(a_t|s_t)\, G_t$ from the logits `(T, A)` of a
#    categorical policy, the actions `(T,)` and the returns `(T,)`, in PyTorch *or*
#    TensorFlow (both are below; the check reads your tensor back, at float32 tolerance), the
#    way `PolicyNet.compute_loss` does in each framework.
# 3. **Its gradient.** Write $\partial L / \partial z_t = -\frac{1}{T}(e_{a_t} - \pi_t)\, G_t$
#    (with $\pi_t = \text{softmax}(z_t)$), the signal that backpropagation sends into the
#    network. The check compares it with finite differences of the reference loss.

# %%
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402

from duetrl.core.exercises import exercise_checks  # noqa: E402
from duetrl.core.reference.attention import softmax  # noqa: E402

check_exercise_1, check_exercise_2, check_exercise_3 = exercise_checks(
    "ch05_2_reinforce_torch_vs_tf")


def returns_to_go(rewards, gamma):
    """G_t = r_t + gamma G_{t+1} of one terminated episode, rewards (T,) -> (T,)."""
    return np.array(
        [sum(gamma**k * r for k, r in enumerate(rewards[t:])) for t in range(len(rewards))]
    )  # your code here


def reinforce_loss_gradient(logits, actions, returns):
    """dL/dlogits (T, A)."""
    onehot = np.eye(logits.shape[1])[actions]
    return -(onehot - softmax(logits)) * returns[:, None] / len(actions)  # your code here


assert check_exercise_1(returns_to_go)
episode_rewards = np.ones(10)  # a CartPole episode of 10 steps
for name, backend in backends.items():
    listing = backend.to_numpy(backend.compute_returns_listing(list(episode_rewards), 0.99))
    print(f"  {name:>5} listing vs yours: max difference "
          f"{np.abs(listing - returns_to_go(episode_rewards, 0.99)).max():.1e}")
assert check_exercise_3(reinforce_loss_gradient)

# %% tags=["torch"]
def reinforce_loss_torch(logits, actions, returns):
    """-1/T sum_t log pi(a_t|s_t) G_t in torch: NumPy logits (T, A), actions (T,), returns (T,)."""
    log_pi = torch.log_softmax(torch.as_tensor(logits, dtype=torch.float32), dim=-1)
    taken = log_pi.gather(1, torch.as_tensor(actions)[:, None])[:, 0]  # log pi(a_t|s_t)
    return -(taken * torch.as_tensor(returns, dtype=torch.float32)).mean()  # your code here


assert check_exercise_2(reinforce_loss_torch)

# %% tags=["tf"]
def reinforce_loss_tf(logits, actions, returns):
    """-1/T sum_t log pi(a_t|s_t) G_t in tf: NumPy logits (T, A), actions (T,), returns (T,)."""
    neg_log_pi = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=actions, logits=tf.constant(logits, tf.float32)
    )
    return tf.reduce_mean(neg_log_pi * tf.constant(returns, tf.float32))  # your code here


assert check_exercise_2(reinforce_loss_tf)

# %% [markdown]
# A wrong answer gets a ✗ and the expected values (here: the sign of the loss flipped, which
# would make gradient *descent* lower the probability of good actions):

# %%
assert not check_exercise_2(
    lambda logits, actions, returns: -reinforce_loss_torch(logits, actions, returns)
)
