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
from duetrl.core.tutorial import claim, figure_dir, quick_mode

QUICK = quick_mode()
GAMMA = 0.9
mdp = tabular_mdp("FrozenLake-v1", is_slippery=False)
nonterminal = np.flatnonzero(mdp.P.sum(axis=(1, 2)) > 0)

# %% [markdown]
# The lake as arrays (`tabular_mdp`, read from Gymnasium's own transition table): 16 states
# (the 4x4 grid, row by row from the start S at the top left), 4 actions (left, down,
# right, up), `P[s, a, s']` the probability of a move that does not end the episode, and
# `R[s, a]` the expected reward, 1 only for the move onto the goal G. Falling into a hole H
# or reaching G ends the episode, so those 5 states have no row of their own: `nonterminal`
# lists the other 11, the only states where $Q$ means anything.
#
# ## 1. Solved and iterated
#
# *Value iteration* applies the optimality backup $V \leftarrow \max_a (R + \gamma P V)$ to
# every state at once (a *sweep*) until $V$ stops moving: each sweep shrinks the error by
# a factor $\gamma$ at least. *Policy iteration* evaluates the current policy exactly (one
# linear solve) and makes it greedy, until the policy stops changing. Both end at $V^*$; the
# greedy policy of $Q^*$ is optimal.

# %%
vi, pi = value_iteration(mdp, GAMMA), policy_iteration(mdp, GAMMA)
print(f"value iteration: {vi.iterations} sweeps; policy iteration: {pi.iterations} policies")
print("V*:\n", vi.value.reshape(4, 4).round(4))
print("max |Q*_VI - Q*_PI| =", np.abs(vi.q - pi.q).max())
print("linear solve of V^pi* vs V*:", np.abs(evaluate_policy_linear(mdp, vi.policy, GAMMA)
                                             - vi.value).max())
desc = np.asarray(gym.make("FrozenLake-v1").unwrapped.desc).astype(str)
path = plot_policy_arrows(vi.value, vi.policy, desc, figure_dir() / "ch04_2_policy.png",
                          "value iteration, FrozenLake 4x4 deterministic")
print(path)

# %% [markdown]
# ```{figcaption}
# The optimal values $V^*(s)$ and the greedy action in each cell of the FrozenLake map.
# ```
#
# **What to see.** Each cell shows $V^*(s)$ and the greedy action. On deterministic ice the
# values are powers of $\gamma$: a state $k$ moves from the goal is worth $\gamma^{k-1}$
# (the reward 1 comes on the last move), so $V^*$ falls by a factor 0.9 per step away from G
# and the start, six moves away, is worth $\gamma^5 = 0.59$. Holes and the goal are 0: nothing
# follows them. The arrows trace a shortest path around the holes; where two moves are
# equally short, the arrow is the first of them.
#
# ## 2. Learned in a table
#
# Q-learning needs no model, only transitions $(s, a, r, s')$ it experiences. It learns $Q^*$
# *off-policy*: its target takes $\max_{a'} Q(s', a')$, the greedy policy's value, whatever
# the behaviour did next, so a behaviour that explores a lot (here a random move half the
# time, $\varepsilon = 0.5$) is fine. *Exploring starts* begin each episode in a random
# non-terminal state, so every state is visited often, not just those near S.

# %%
table = q_learning(gym.make("FrozenLake-v1", is_slippery=False), num_steps=10_000,
                   alpha=0.5, gamma=GAMMA, epsilon=0.5, seed=0, exploring_starts=nonterminal)
print("Q-learning: max |Q - Q*| =", np.abs(table.q - vi.q)[nonterminal].max())

# %% [markdown]
# ## 3. Learned by a network, in both frameworks
#
# DQN replaces the table by a network $Q_\theta(s, \cdot)$ (here the one-hot state in, 4
# values out) and the one-transition update by gradient steps on a replayed batch, toward
# targets from a *target network*, a copy of $\theta$ refreshed every few steps so that the
# target does not move with every step. The update the trainer calls, in PyTorch (its
# TensorFlow twin: `duetrl diff dqn`):

# %%
from duetrl.backends.torch.dqn import DQNAgent  # noqa: E402

print(inspect.getsource(DQNAgent.update_step))

# %% [markdown]
# The settings are chosen so that the answer is $Q^*$, which we know:
#
# * `epsilon_start = epsilon_final = 1.0`: the behaviour is *uniformly random* for the whole
#   run and never uses the network. Like Q-learning's, DQN's target is greedy, so it learns
#   $Q^*$ from any behaviour that visits every state and action; a random one does, and keeps
#   doing so (a decaying $\varepsilon$, the usual choice, would make the data depend on the
#   network and the run harder to read).
# * `n_step = 1`: an $n$-step target sums $n$ rewards *the behaviour* earned, so with a random
#   behaviour it estimates something between $Q^*$ and the random policy's $Q$; one step
#   keeps the target greedy.
# * `learning_starts = 500` random steps before the first update fill the replay buffer
#   (2000 transitions, all of a short run); `train_freq = 16` vector steps of 8 environments,
#   then `gradient_steps = 32` updates on batches of 64: about 0.25 updates per transition.
# * `target_update_interval = 64` gradient steps between copies of the target network;
#   `max_grad_norm = 0.0`: no gradient clipping.

# %%
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
    if trainer.env_steps >= 9000:  # the text's figure below (the full run)
        claim(f"DQN {backend}: max |Q - Q*| after 9000 steps", errors[backend], 0.0, 0.00005)

# %% [markdown]
# Both frameworks land on $Q^*$ at every non-terminal state: seed 0, max error 0.0016 for
# each after 5000 steps (quick mode) and below 0.00005 after 9000. They start from the same
# initial weights and see the same random moves and replayed batches (all drawn in NumPy),
# so their errors agree to the printed digits.
#
# ## Exercises
#
# Each exercise is a function with one line marked `# your code here`, preset to an answer
# so that this notebook runs; replace it with yours and run the check, which compares it with
# the float64 reference on fresh random MDPs or batches and prints ✓ or ✗ with what it
# expected.
#
# 1. **One sweep of value iteration.** From `P` (S, A, S), `R` (S, A), the current `V` (S,)
#    and $\gamma$, return $V'(s) = \max_a (R[s,a] + \gamma \sum_{s'} P[s,a,s'] V(s'))$. The
#    cell then sweeps from $V = 0$ on the lake until nothing moves, checks the start value
#    $\gamma^5$, and does the same on slippery ice: why does it need many more sweeps there
#    (hint: how fast does the error of a sweep shrink when a move can loop back)?
# 2. **SARSA's answer is not $Q^*$.** Expected SARSA with a fixed $\varepsilon$-greedy
#    behaviour evaluates that behaviour: its backup is $Q'(s, a) = R + \gamma \sum_{s'}
#    P[s,a,s']\,((1-\varepsilon)\max_{a'} Q(s', a') + \varepsilon\,\text{mean}_{a'} Q(s', a'))$.
#    Write it; the cell iterates it on the lake with $\varepsilon = 0.5$ and compares the
#    start value with $V^*$.
# 3. **DQN's target, in the framework of your choice.** From a batch of rewards, discounts
#    $\gamma^n$, termination flags and the online and target networks' $Q(s', \cdot)$
#    (B, A), return $y = r + \gamma^n (1 - \text{term})\, Q_{\text{target}}(s', a^*)$ with
#    $a^* = \arg\max_a Q_{\text{target}}(s', a)$, or $\arg\max_a Q_{\text{online}}(s', a)$
#    when `double` (Double DQN), in PyTorch *or* TensorFlow (both are below; the check reads
#    your tensor back). The check's batches come from the reference DQN's own networks.

# %%
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402

from duetrl.core.exercise_sets.bellman import CHECKS  # noqa: E402

check_exercise_1, check_exercise_2, check_exercise_3 = CHECKS


def bellman_backup(P, R, V, gamma):
    """max_a (R + gamma P V): P (S, A, S), R (S, A), V (S,) -> (S,)."""
    return (R + gamma * P @ V).max(axis=1)  # your code here


def expected_sarsa_backup(P, R, Q, gamma, epsilon):
    """R + gamma P ((1 - eps) max_a' Q + eps mean_a' Q): Q (S, A) -> (S, A)."""
    return R + gamma * P @ (
        (1 - epsilon) * Q.max(axis=1) + epsilon * Q.mean(axis=1)
    )  # your code here


assert check_exercise_1(bellman_backup)
for name, lake in (("deterministic", mdp), ("slippery", tabular_mdp("FrozenLake-v1"))):
    V, sweeps = np.zeros(16), 0
    while True:
        new, sweeps = bellman_backup(lake.P, lake.R, V, GAMMA), sweeps + 1
        if np.abs(new - V).max() < 1e-10:
            break
        V = new
    print(f"  {name} ice: V*(start) = {V[0]:.4f} after {sweeps} sweeps (gamma^5 = {GAMMA**5:.4f})")
assert check_exercise_2(expected_sarsa_backup)
Q = np.zeros_like(mdp.R)
for _ in range(500):  # the backup contracts by gamma: 0.9^500 leaves nothing
    Q = expected_sarsa_backup(mdp.P, mdp.R, Q, GAMMA, 0.5)
print(f"  eps = 0.5: start value {Q[0].max():.4f} (SARSA's answer) vs V*(start) {vi.value[0]:.4f}")

# %% tags=["torch"]
def dqn_targets_torch(rewards, discounts, terminations, q_next_online, q_next_target, double):
    """y (B,) in torch, from NumPy arrays rewards, discounts, terminations (B,), Q's (B, A)."""
    q_online, q_target = torch.as_tensor(q_next_online), torch.as_tensor(q_next_target)
    best = (q_online if double else q_target).argmax(dim=1, keepdim=True)  # a* (B, 1)
    not_done = 1.0 - torch.as_tensor(terminations, dtype=torch.float64)
    return (
        torch.as_tensor(rewards)
        + torch.as_tensor(discounts) * not_done * q_target.gather(1, best)[:, 0]
    )  # your code here


assert check_exercise_3(dqn_targets_torch)

# %% tags=["tf"]
def dqn_targets_tf(rewards, discounts, terminations, q_next_online, q_next_target, double):
    """y (B,) in tf, from NumPy arrays rewards, discounts, terminations (B,), Q's (B, A)."""
    q_online, q_target = (
        tf.constant(q_next_online, tf.float32),
        tf.constant(q_next_target, tf.float32),
    )
    best = tf.argmax(q_online if double else q_target, axis=1)  # a* (B,)
    not_done = 1.0 - tf.cast(terminations, tf.float32)
    return tf.cast(rewards, tf.float32) + tf.cast(discounts, tf.float32) * not_done * tf.gather(
        q_target, best, batch_dims=1
    )  # your code here


assert check_exercise_3(dqn_targets_tf)

# %% [markdown]
# A wrong answer gets a ✗ and what was expected. Here the target bootstraps through the end
# of an episode (the termination flag forgotten), the bug that lets $Q$ grow past any return
# the lake can pay:

# %%
assert not check_exercise_3(
    lambda r, d, term, q_online, q_target, double: r + d * q_target.max(axis=1))
