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
# # From a table to a network (outline 9.2.2)
#
# Q-learning keeps one number per (state, action). DQN replaces the table by a network
# $Q_\theta(\phi(s), \cdot)$ of a *feature vector* $\phi(s)$, and what it can learn depends on
# $\phi$:
#
# - **one-hot** $\phi(s) = e_s$: every state has its own first-layer weights, so the network
#   is a table in disguise and meets $Q^*$ like the table does;
# - **coordinates** $\phi(s) = (\text{row}, \text{col}) / 3$: two numbers, so the states share
#   every weight. An update at one state moves its neighbours (generalisation); the network
#   can still represent $Q^*$ here, but reaches it later;
# - **the row only** $\phi(s) = \text{row} / 3$: states in one row look alike (aliasing), so
#   no network of $\phi$ can match $Q^*$: an approximation error that training cannot remove.
#
# One lake: FrozenLake-v1 4x4, deterministic ice, $\gamma = 0.9$; $Q^*$ from value iteration.

# %%
import time

import gymnasium as gym
import numpy as np

from duetrl.core.plots import plot_curves
from duetrl.core.reference.dynamic_programming import tabular_mdp, value_iteration
from duetrl.core.rl.dqn import DQNTrainer, make_dqn_settings
from duetrl.core.tabular import q_learning
from duetrl.core.tutorial import figure_dir, quick_mode

QUICK = quick_mode()
GAMMA = 0.9
STEPS = 10_000 if QUICK else 20_000  # environment steps for each DQN
BACKEND = "torch"  # section 3 trains the one-hot network in TensorFlow too
mdp = tabular_mdp("FrozenLake-v1", is_slippery=False)
nonterminal = np.flatnonzero(mdp.P.sum(axis=(1, 2)) > 0)  # holes and the goal have no future
vi = value_iteration(mdp, GAMMA)
print("V* (value iteration):\n", vi.value.reshape(4, 4).round(4))


def q_error(q: np.ndarray) -> float:
    """max over non-terminal states and all actions of |Q - Q*|."""
    return float(np.abs(q - vi.q)[nonterminal].max())


# %% [markdown]
# ## 1. The table: Q-learning
# From a uniform behaviour (eps = 1) with exploring starts, in chunks so we can watch the
# error fall (each chunk continues from the last table).

# %%
start = time.perf_counter()
env = gym.make("FrozenLake-v1", is_slippery=False)
q_table, table_curve, done_steps = np.zeros((16, 4)), ([], []), 0
for chunk in range(10):
    q_table = q_learning(env, num_steps=1_000, alpha=0.5, gamma=GAMMA, epsilon=1.0, seed=chunk,
                         q_init=q_table, exploring_starts=nonterminal).q
    done_steps += 1_000
    table_curve[0].append(done_steps)
    table_curve[1].append(q_error(q_table))
print(f"Q-learning: max |Q - Q*| = {table_curve[1][-1]:.2e} after {done_steps} steps "
      f"({time.perf_counter() - start:.1f} s)")

# %% [markdown]
# ## 2. The network, with three feature maps
#
# `DQNTrainer` one-hot encodes a Discrete observation itself. For the other two features a
# Gymnasium wrapper turns the state index into a `Box` observation, passed through
# `env_kwargs` to `gym.make_vec`; the trainer then sees a 2- or 1-dimensional state.
# One-step targets (`n_step=1`): the n-step returns of a uniform behaviour are not $Q^*$.

# %%
rows, cols = np.divmod(np.arange(16), 4)
FEATURES = {  # phi(s) for s = 0..15, one row per state; None = the trainer's own one-hot
    "one-hot (16)": None,
    "(row, col) (2)": np.stack([rows, cols], axis=1) / 3.0,
    "row only (1)": rows[:, None] / 3.0,
}
settings = make_dqn_settings(
    num_envs=8, hidden_dim=64, learning_rate=3e-3, gamma=GAMMA, batch_size=64, buffer_size=2000,
    learning_starts=500, train_freq=16, gradient_steps=32, target_update_interval=64,
    epsilon_start=1.0, epsilon_final=1.0, max_grad_norm=0.0, n_step=1)


def feature_wrapper(table: np.ndarray):
    """A wrapper that replaces the state index s by the feature row ``table[s]``."""
    space = gym.spaces.Box(0.0, 1.0, (table.shape[1],), np.float64)
    return lambda env: gym.wrappers.TransformObservation(env, lambda s: table[s], space)


curves = {"Q-learning (table)": table_curve}
networks = {}
for name, table in FEATURES.items():
    start = time.perf_counter()
    env_kwargs = {"is_slippery": False}
    if table is not None:
        env_kwargs["wrappers"] = [feature_wrapper(table)]
    trainer = DQNTrainer("FrozenLake-v1", BACKEND, settings, seed=0, total_steps=STEPS,
                         env_kwargs=env_kwargs)
    inputs = np.eye(16) if table is None else table  # phi(s) of every state
    x, y = [], []
    while trainer.env_steps < STEPS:
        trainer.step()
        x.append(trainer.env_steps)
        y.append(q_error(trainer.agent.q_values(inputs)))
    curves[f"DQN, {name}"] = (x, y)
    networks[name] = trainer
    print(f"DQN {name:<15} input {trainer.state_dim:>2}: max |Q - Q*| = {y[-1]:.4f} "
          f"(lowest {min(y):.4f}), greedy return {trainer.evaluate_greedy(1):.0f} "
          f"({time.perf_counter() - start:.1f} s)")

# %% [markdown]
# The row-only network cannot do better than a floor we can compute: a Q that depends on the
# row only gives all states of a row one value per action, and the best single value for a
# set of numbers, in the max-error sense, is the midpoint of their range. (Exercise 1.)

# %%
floor = max((np.ptp(vi.q[[s for s in nonterminal if rows[s] == r]], axis=0) / 2).max()
            for r in range(4) if any(rows[s] == r for s in nonterminal))
assert table_curve[1][-1] < 1e-6 and min(curves["DQN, one-hot (16)"][1]) < 0.05
print(f"no function of the row alone gets closer than {floor:.4f} to Q*")
path = plot_curves(curves, figure_dir() / "ch09_2_table_to_network.png", "environment steps",
                   "max |Q - Q*| over non-terminal states",
                   title="FrozenLake 4x4: from a table to a network", hline=floor)
print("figure:", path)

# %% [markdown]
# ```{figcaption}
# FrozenLake 4x4 from a table to a network (PyTorch): the error of each learner's values
# against environment steps.
# ```
#
# **The same network in TensorFlow.** The curves above are PyTorch's. The tf backend trains
# the one-hot network from the same initial weights, on the same random moves and replayed
# batches (all drawn in NumPy); its error after the same steps:

# %%
tf_trainer = DQNTrainer("FrozenLake-v1", "tf", settings, seed=0, total_steps=STEPS,
                        env_kwargs={"is_slippery": False})
while tf_trainer.env_steps < STEPS:
    tf_trainer.step()
print(f"DQN one-hot (16): max |Q - Q*| torch "
      f"{q_error(networks['one-hot (16)'].agent.q_values(np.eye(16))):.4f}, tf "
      f"{q_error(tf_trainer.agent.q_values(np.eye(16))):.4f} after {tf_trainer.env_steps} steps")

# %% [markdown]
# **What to see.** In the figure, the table and the one-hot network fall to $Q^*$ (the table exactly: its
# transitions are deterministic; the network jitters around it, a constant step size on
# fresh random batches); the coordinate network falls later (what it learns at one state it
# also writes at the others, and must unlearn) but gets there; the row-only network stalls
# above the dashed floor: more data or training cannot fix what the features cannot tell
# apart.
#
# ## Exercises
#
# Each exercise is a function with one line marked `# your code here`, preset to an answer so
# that this notebook runs; replace it with your own and run the check below it, which prints
# ✓ or ✗ with what it expected.
#
# 1. **The aliasing floor.** Given a $Q^*$ table `(S, A)` and a group label per state, return
#    the smallest $\max_{s,a} |Q(s,a) - Q^*(s,a)|$ any Q that is constant within each group
#    can reach. The check compares with its own computation on random tables and groups, and
#    with the row-only network above (which must not beat the floor).
# 2. **A table's worth of weights, in the framework of your choice.** Build DQN's Q-network
#    (two hidden ReLU layers of width `hidden`, `state_dim` inputs, `actions` outputs) as a
#    PyTorch `nn.Sequential` *or* a Keras `Sequential` (both are below) and return its number
#    of parameters, as the framework counts them. The check counts the online network's
#    weights of each trained network. The
#    table has 64 numbers: which network has fewer weights, and does that decide what it
#    can learn?
# 3. **Q\* in closed form.** On deterministic ice the only reward is 1 for stepping onto the
#    goal, so $V^*(s) = \gamma^{d(s) - 1}$ where $d(s)$ is the fewest moves to the goal.
#    Write $V^*$ from $d$; the check finds $d$ by a breadth-first search of the MDP and
#    compares with value iteration.

# %%
import keras  # noqa: E402
import torch  # noqa: E402

from duetrl.core.coursework.compare import compare_calls  # noqa: E402
from duetrl.core.exercises import report  # noqa: E402


def _floor(q_star: np.ndarray, groups: np.ndarray) -> float:
    return float(max((np.ptp(q_star[groups == g], axis=0) / 2).max() for g in np.unique(groups)))


def check_exercise_1(answer, seed: int = 0) -> bool:
    """``answer(q_star, groups)`` against the midpoint floor, and against the row-only DQN."""
    rng = np.random.default_rng(seed)
    cases = [(vi.q[nonterminal], rows[nonterminal]), (vi.q[nonterminal], cols[nonterminal]),
             (vi.q[nonterminal], np.arange(len(nonterminal)))]
    cases += [(rng.normal(size=(12, 3)), rng.integers(0, 4, size=12)) for _ in range(3)]
    verdict = compare_calls(lambda q_star, groups: float(answer(q_star, groups)), _floor, cases,
                            "the aliasing floor", atol=1e-12, rtol=1e-9)
    if not verdict:  # the comparator's message: which input, expected and got
        return report(1, False, verdict.message)
    trained = networks["row only (1)"].agent.q_values(FEATURES["row only (1)"])
    achieved = q_error(trained)
    row_floor = _floor(vi.q[nonterminal], rows[nonterminal])
    ok = achieved >= row_floor - 1e-6
    return report(1, ok, f"the floor by rows is {row_floor:.4f}; the row-only DQN reached "
                         f"{achieved:.4f}" + ("" if ok else ", below it?"))


def check_exercise_2(answer) -> bool:
    """``answer(state_dim, hidden, actions)`` against the trained networks' weights."""
    for name, trainer in networks.items():
        expected = sum(v.size for k, v in trainer.params().items() if k.startswith("q."))
        try:
            got = int(answer(trainer.state_dim, settings.hidden_dim, trainer.action_dim))
        except Exception as error:  # the student's code, whatever it raises
            return report(2, False, f"raised {type(error).__name__}: {error}")
        if got != expected:
            return report(2, False, f"{name}: expected {expected} weights, got {got}")
    counts = {name: sum(v.size for k, v in t.params().items() if k.startswith("q."))
              for name, t in networks.items()}
    return report(2, True, "weights: " + ", ".join(f"{n} {c}" for n, c in counts.items())
                  + "; the table: 64")


def _distances() -> np.ndarray:
    """Fewest moves from each state to the goal, by breadth-first search backwards."""
    goal_reaching = mdp.R > 0  # (S, A): the moves that step onto the goal
    distance = np.full(mdp.num_states, np.inf)
    distance[np.flatnonzero(goal_reaching.any(axis=1))] = 1
    for d in range(2, mdp.num_states + 1):
        frontier = np.flatnonzero(distance == d - 1)
        reach = (mdp.P[:, :, frontier].sum(axis=2) > 0).any(axis=1)  # a move into the frontier
        distance[np.isinf(distance) & reach & np.isin(np.arange(mdp.num_states), nonterminal)] = d
    return distance


def check_exercise_3(answer) -> bool:
    """``answer(distance, gamma)`` against V* from value iteration, non-terminal states."""
    distance = _distances()[nonterminal]
    for gamma in (GAMMA, 0.5):
        expected = value_iteration(mdp, gamma).value[nonterminal]
        try:
            got = np.asarray(answer(distance, gamma), float)
        except Exception as error:  # the student's code, whatever it raises
            return report(3, False, f"raised {type(error).__name__}: {error}")
        if got.shape != expected.shape or not np.allclose(got, expected, atol=1e-9):
            return report(3, False, f"gamma={gamma}, distances {distance.astype(int).tolist()}:"
                                    f" expected {np.round(expected, 4).tolist()}")
    return report(3, True, f"V* = gamma^(d - 1); the start is d = {int(distance[0])} moves away")


def aliasing_floor(q_star, groups) -> float:
    """min over Q constant within each group of max |Q - Q*|."""
    return max((q_star[groups == g].max(axis=0) - q_star[groups == g].min(axis=0)).max() / 2
               for g in np.unique(groups))  # your code here


def v_star(distance, gamma):
    """V*(s) from the fewest moves d(s) to the goal."""
    return gamma ** (distance - 1)  # your code here


assert check_exercise_1(aliasing_floor)
assert check_exercise_3(v_star)
for trainer in networks.values():
    trainer.close()

# %% tags=["torch"]
def q_network_weights_torch(state_dim: int, hidden: int, actions: int) -> int:
    """Parameters of the Q-network built in torch: fc1 (state_dim -> hidden), fc2, fc3."""
    net = torch.nn.Sequential(
        torch.nn.Linear(state_dim, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, actions),
    )
    return sum(p.numel() for p in net.parameters())  # your code here


assert check_exercise_2(q_network_weights_torch)

# %% tags=["tf"]
def q_network_weights_tf(state_dim: int, hidden: int, actions: int) -> int:
    """Parameters of the Q-network built in Keras: fc1 (state_dim -> hidden), fc2, fc3."""
    net = keras.Sequential(
        [
            keras.Input((state_dim,)),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(actions),
        ]
    )
    return net.count_params()  # your code here


assert check_exercise_2(q_network_weights_tf)

# %% [markdown]
# A wrong answer gets a ✗ and the expected values. Here, counting the moves to the goal as
# the exponent (the first move is not discounted):

# %%
assert not check_exercise_3(lambda distance, gamma: gamma**distance)
