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
# # The Bellman equation solved, iterated and learned (outline 4.2.2, 9.2.2)
#
# One lake (FrozenLake-v1 4x4, deterministic ice, $\gamma = 0.9$), three ways to its
# optimal action values $Q^*$:
#
# 1. **solved / iterated** with the model: value iteration
#    $V \leftarrow \max_a (R + \gamma P V)$ and policy iteration, whose evaluation step is the
#    linear system $(I - \gamma P_\pi) V = R_\pi$;
# 2. **learned** from samples in a table: Q-learning,
#    $Q(s,a) \leftarrow Q(s,a) + \alpha\,(r + \gamma \max_{a'} Q(s',a') - Q(s,a))$;
# 3. **learned** by a network: DQN, $y = r + \gamma (1-\mathrm{term})\,Q_{\text{target}}(s', a^*)$,
#    in PyTorch and in TensorFlow.
#
# All three meet the same $Q^*$.

# %%
import inspect

import gymnasium as gym
import numpy as np

from duetrl.core.cli.value import plot_policy_arrows
from duetrl.core.reference.dynamic_programming import (
    evaluate_policy_linear,
    policy_iteration,
    tabular_mdp,
    value_iteration,
)
from duetrl.core.rl.dqn import DQNTrainer, make_dqn_settings
from duetrl.core.tabular import q_learning
from duetrl.core.tutorial import figure_dir, quick_mode

QUICK = quick_mode()
GAMMA = 0.9
mdp = tabular_mdp("FrozenLake-v1", is_slippery=False)
nonterminal = np.flatnonzero(mdp.P.sum(axis=(1, 2)) > 0)

# %% [markdown]
# ## 1. Solved and iterated

# %%
vi, pi = value_iteration(mdp, GAMMA), policy_iteration(mdp, GAMMA)
print(f"value iteration: {vi.iterations} sweeps; policy iteration: {pi.iterations} policies")
print("V*:\n", vi.value.reshape(4, 4).round(4))
print("max |Q*_VI - Q*_PI| =", np.abs(vi.q - pi.q).max())
print("linear solve of V^pi* vs V*:", np.abs(evaluate_policy_linear(mdp, vi.policy, GAMMA)
                                             - vi.value).max())
desc = np.asarray(gym.make("FrozenLake-v1").unwrapped.desc).astype(str)
print(plot_policy_arrows(vi.value, vi.policy, desc, figure_dir() / "ch04_2_policy.png",
                         "value iteration, FrozenLake 4x4 deterministic"))

# %% [markdown]
# ## 2. Learned in a table
# Q-learning from an eps = 0.5 behaviour, with exploring starts so every state is visited.

# %%
table = q_learning(gym.make("FrozenLake-v1", is_slippery=False), num_steps=10_000,
                   alpha=0.5, gamma=GAMMA, epsilon=0.5, seed=0, exploring_starts=nonterminal)
print("Q-learning: max |Q - Q*| =", np.abs(table.q - vi.q)[nonterminal].max())

# %% [markdown]
# ## 3. Learned by a network, in both frameworks
# The update the trainer calls, in PyTorch (its TensorFlow twin: `duetrl diff dqn`):

# %%
from duetrl.backends.torch.dqn import DQNAgent  # noqa: E402

print(inspect.getsource(DQNAgent.update_step))

settings = make_dqn_settings(
    num_envs=8, hidden_dim=64, learning_rate=1e-3, gamma=GAMMA, batch_size=64, buffer_size=2000,
    learning_starts=500, train_freq=16, gradient_steps=32, target_update_interval=64,
    epsilon_start=1.0, epsilon_final=1.0, max_grad_norm=0.0,
    n_step=1)  # n-step returns of a uniform behaviour policy are not Q*: one step here
steps = 5_000 if QUICK else 9_000
errors = {}
for backend in ("torch", "tf"):
    trainer = DQNTrainer("FrozenLake-v1", backend, settings, seed=0, total_steps=steps,
                         env_kwargs={"is_slippery": False})
    while trainer.env_steps < steps:
        trainer.step()
    q = trainer.agent.q_values(np.eye(16))
    errors[backend] = np.abs(q - vi.q)[nonterminal].max()
    print(f"DQN {backend}: max |Q - Q*| = {errors[backend]:.4f} after {trainer.env_steps} steps")

# %% [markdown]
# ## Exercises
#
# 1. The deterministic lake's start value is $\gamma^5$: the goal is six moves away. Check it.
# 2. Make the ice slippery (`is_slippery=True`): V*(0) drops. Why does value iteration need
#    many more sweeps now (hint: what is the slowest-decaying error)?
# 3. Run SARSA (`duetrl.core.tabular.sarsa`) with eps = 0.5: it does *not* reach Q*. Compare
#    with `epsilon_greedy_q(mdp, GAMMA, 0.5)`.

# %%
assert np.isclose(vi.value[0], GAMMA**5)
slippery = value_iteration(tabular_mdp("FrozenLake-v1"), GAMMA)
print(f"exercise 2: slippery V*(0) = {slippery.value[0]:.4f}, {slippery.iterations} sweeps")
assert slippery.value[0] < vi.value[0] and slippery.iterations > vi.iterations
assert all(err < 0.1 for err in errors.values()), errors
