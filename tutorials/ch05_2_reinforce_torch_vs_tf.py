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
# ## 2. The repaired listing, run in both frameworks
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
# ## 3. The fast version: batched over vector environments
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
    curves[f"{name} (batched)"] = (steps, np.convolve(returns, np.ones(8) / 8, mode="same"))
    print(f"{name:>5}: {trainer.env_steps} steps, {trainer.episodes} episodes, "
          f"mean return of the last 100: {trainer.mean_return():.1f}, {elapsed:.1f} s")

# %%
path = plot_curves(curves, figure_dir() / "ch05_2_reinforce_torch_vs_tf.png",
                   "environment steps", "episode return (smoothed)",
                   title="REINFORCE on CartPole-v1: PyTorch and TensorFlow", hline=475)
print("saved", path)

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
# 2. **The loss.** Write $L = -\frac{1}{T}\sum_t \log \pi(a_t|s_t)\, G_t$ from the logits
#    `(T, A)` of a categorical policy, the actions `(T,)` and the returns `(T,)`.
# 3. **Its gradient.** Write $\partial L / \partial z_t = -\frac{1}{T}(e_{a_t} - \pi_t)\, G_t$
#    (with $\pi_t = \text{softmax}(z_t)$), the signal that backpropagation sends into the
#    network. The check compares it with finite differences of the reference loss.

# %%
from duetrl.core.exercises import exercise_checks  # noqa: E402
from duetrl.core.reference.attention import softmax  # noqa: E402

check_exercise_1, check_exercise_2, check_exercise_3 = exercise_checks(
    "ch05_2_reinforce_torch_vs_tf")


def returns_to_go(rewards, gamma):
    """G_t = r_t + gamma G_{t+1} of one terminated episode, rewards (T,) -> (T,)."""
    return np.array([sum(gamma**k * r for k, r in enumerate(rewards[t:])) for t in range(len(rewards))])  # your code here


def reinforce_loss(logits, actions, returns):
    """-1/T sum_t log pi(a_t|s_t) G_t, logits (T, A), actions (T,), returns (T,)."""
    log_pi = logits - logits.max(axis=1, keepdims=True)
    log_pi = log_pi - np.log(np.exp(log_pi).sum(axis=1, keepdims=True))
    return -np.mean(log_pi[np.arange(len(actions)), actions] * returns)  # your code here


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
assert check_exercise_2(reinforce_loss)
assert check_exercise_3(reinforce_loss_gradient)

# %% [markdown]
# A wrong answer gets a ✗ and the expected values (here: the sign of the loss flipped, which
# would make gradient *descent* lower the probability of good actions):

# %%
assert not check_exercise_2(lambda logits, actions, returns: -reinforce_loss(logits, actions, returns))
