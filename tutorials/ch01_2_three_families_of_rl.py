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
# # Three families of RL on one task (outline 1.2.3)
#
# Deep RL algorithms come in three families, told apart by *what the network learns*:
#
# | family | learns | acts by | update from |
# |---|---|---|---|
# | **value-based** (DQN) | $Q_\theta(s, a)$ | $\arg\max_a Q_\theta(s, a)$ (eps-greedy while learning) | replayed old transitions: $y = r + \gamma \max_{a'} Q_{\text{target}}(s', a')$ |
# | **policy-based** (REINFORCE with a baseline) | $\pi_\theta(a \mid s)$ (and $V_\phi$ as a baseline only) | sampling $\pi_\theta$ | whole fresh episodes: $-\log \pi(a_t \mid s_t)\,(G_t - V(s_t))$ |
# | **actor-critic** (PPO) | $\pi_\theta(a \mid s)$ and a critic $V_\phi(s)$ | sampling $\pi_\theta$ | short fresh rollouts, advantages bootstrapped by the critic (GAE), clipped ratio |
#
# Here all three learn CartPole-v1 (balance a pole: +1 per step, at most 500 steps), through
# the same trainers `duetrl train` uses (`core/cli/rl.py` builds its settings with
# `make_settings`, `core/rl/session.py` steps a `PolicyGradientTrainer`; `duetrl train dqn`
# steps a `DQNTrainer`). Each family's core update is shown in PyTorch and in TensorFlow.

# %%
import inspect
import time

import numpy as np

from duetrl.core.interfaces.rl_settings import make_settings
from duetrl.core.plots import plot_curves
from duetrl.core.rl.dqn import DQNTrainer, make_dqn_settings
from duetrl.core.rl.replay import ReplayBuffer
from duetrl.core.rl.train import PolicyGradientTrainer
from duetrl.core.tutorial import figure_dir, quick_mode

QUICK = quick_mode()
ENV = "CartPole-v1"
STEPS = 12_000 if QUICK else 40_000  # environment steps per family
BACKENDS = ("torch",) if QUICK else ("torch", "tf")  # full mode trains in both frameworks
FAMILIES = {"dqn": "value-based: DQN", "reinforce_baseline": "policy-based: REINFORCE + baseline",
            "ppo": "actor-critic: PPO"}

# %% [markdown]
# ## 1. The core update of each family, in both frameworks
#
# **Value-based.** DQN regresses $Q_\theta(s, a)$ onto a target computed with a frozen copy of
# the network, $y = r^{(n)} + \gamma^n (1 - \text{term}) \max_{a'} Q_{\text{target}}(s', a')$.
# Nothing in $y$ depends on how the action $a$ was chosen, so any old transition will do:
# DQN keeps a replay buffer.

# %% tags=["torch"]
from duetrl.backends.torch import dqn as torch_dqn  # noqa: E402
from duetrl.backends.torch import ppo as torch_ppo  # noqa: E402
from duetrl.backends.torch import reinforce_baseline as torch_reinforce_baseline  # noqa: E402

print("# PyTorch, backends/torch/dqn.py\n" + inspect.getsource(torch_dqn.td_targets))

# %% tags=["tf"]
from duetrl.backends.tf import dqn as tf_dqn  # noqa: E402
from duetrl.backends.tf import ppo as tf_ppo  # noqa: E402
from duetrl.backends.tf import reinforce_baseline as tf_reinforce_baseline  # noqa: E402

print("# TensorFlow, backends/tf/dqn.py\n" + inspect.getsource(tf_dqn.td_targets))

# %% [markdown]
# **Policy-based.** REINFORCE pushes up $\log \pi_\theta(a_t \mid s_t)$ in proportion to how
# much better the episode's return-to-go $G_t$ was than a learned baseline $V(s_t)$. The
# gradient is an expectation under the *current* policy, so each update needs fresh,
# complete episodes and then throws them away.

# %% tags=["torch"]
print("# PyTorch, backends/torch/reinforce_baseline.py\n"
      + inspect.getsource(torch_reinforce_baseline.compute_loss))

# %% tags=["tf"]
print("# TensorFlow, backends/tf/reinforce_baseline.py\n"
      + inspect.getsource(tf_reinforce_baseline.compute_loss))

# %% [markdown]
# **Actor-critic.** PPO's critic $V_\phi$ turns the return into a low-variance advantage
# (GAE, bootstrapped from $V(s_{t+1})$, so a rollout need not end an episode), and the
# clipped ratio $\rho_t = \pi_\theta / \pi_{\text{old}}$ lets it take ten passes over each
# rollout without moving the policy too far from the one that collected it.

# %% tags=["torch"]
print("# PyTorch, backends/torch/ppo.py\n" + inspect.getsource(torch_ppo.ppo_clip_loss))

# %% tags=["tf"]
print("# TensorFlow, backends/tf/ppo.py\n" + inspect.getsource(tf_ppo.ppo_clip_loss))

# %% [markdown]
# ## 2. Side by side on CartPole-v1
#
# Each family with its default settings (tuned for CartPole, `core/interfaces/rl_settings.py` and
# `DQNSettings`), one seed, the same budget of environment steps. The learning curve is the
# mean return of the last 20 *training* episodes (DQN's are played eps-greedily, so they
# understate its greedy policy early on).


# %%
def make_trainer(family: str, backend: str, steps: int, seed: int = 0):
    """The trainer ``duetrl train <family>`` would build, with default settings."""
    if family == "dqn":
        return DQNTrainer(ENV, backend, make_dqn_settings(), seed=seed, total_steps=steps)
    return PolicyGradientTrainer(family, ENV, backend, make_settings(family), seed=seed,
                                 total_steps=steps)


def smoothed(episode_log, window: int = 20):
    """(env steps, mean return of the last ``window`` episodes) from ``(steps, return)`` pairs."""
    steps = np.array([s for s, _ in episode_log], float)
    returns = np.array([r for _, r in episode_log], float)
    cumulative = np.concatenate([[0.0], np.cumsum(returns)])
    counts = np.minimum(np.arange(1, len(returns) + 1), window)
    means = (cumulative[1:] - cumulative[np.arange(1, len(returns) + 1) - counts]) / counts
    return steps, means


trainers, curves = {}, {}
print(f"{'family':<38}{'backend':<8}{'updates':>8}{'episodes':>9}{'last 20':>9}{'wall s':>8}")
for backend in BACKENDS:
    for family, label in FAMILIES.items():
        start = time.perf_counter()
        trainer = make_trainer(family, backend, STEPS)
        while trainer.env_steps < STEPS:
            trainer.step()
        wall = time.perf_counter() - start
        x, y = smoothed(trainer.episode_log)
        curves[label if len(BACKENDS) == 1 else f"{label} ({backend})"] = (x, y)
        trainers.setdefault(family, trainer)
        print(f"{label:<38}{backend:<8}{trainer.updates:>8}{trainer.episodes:>9}{y[-1]:>9.1f}"
              f"{wall:>8.1f}")
        trainer.close()

path = plot_curves(curves, figure_dir() / "ch01_2_three_families.png", "environment steps",
                   "episode return (mean of the last 20)",
                   title=f"Three families of RL on {ENV}", hline=475)
print("figure:", path)

# %% [markdown]
# ```{figcaption}
# Three families of RL on CartPole-v1: the mean return of the last 20 training episodes of DQN
# (value-based), REINFORCE with a baseline (policy-based) and PPO (actor-critic) against
# environment steps, with the 475 of a solved task dashed.
# ```
#
# One seed on a small budget ranks the families noisily (`benchmarks/` runs many seeds), but
# the shapes are typical. DQN replays every transition many times (128 gradient steps per 256
# environment steps), so it gets far per environment step and spends the most computation
# per step (the `wall s` column); its training returns, played eps-greedily, lag its greedy
# policy. REINFORCE with a baseline makes one update per batch of 16 whole episodes, so its
# curve moves in a few large steps. PPO updates every 256 steps, ten epochs on each rollout,
# and keeps climbing to 500 on a longer budget.
#
# ## Exercises
#
# Each exercise is a function with one line marked `# your code here`, preset to an answer so
# that this notebook runs; replace it with your own and run the check below it, which prints
# ✓ or ✗ with what it expected.
#
# 1. **Which family needs a replay buffer, and why?** Return True for the families whose
#    update may use transitions collected by an *older* policy and that therefore keep a
#    replay buffer. The check looks for a `ReplayBuffer` inside each trainer above. (Why may
#    PPO reuse its rollout for ten epochs, but not for ten thousand?)
# 2. **DQN's TD target, in the framework of your choice.** In PyTorch *or* TensorFlow (both
#    are below, in float64: the check compares to $10^{-9}$): given one replayed n-step
#    transition (its summed reward $r^{(n)}$,
#    the discount $\gamma^n$, the termination flag and the target network's $Q(s', \cdot)$),
#    return $y$. The check draws transitions from the trained DQN's own buffer and compares
#    with the float64 oracle `duetrl.core.reference.dqn.td_targets`.
# 3. **The discounted return.** Return $G_0 = \sum_t \gamma^t r_t$ of one episode that
#    terminates after its last reward. The check compares with
#    `duetrl.core.reference.returns.discounted_returns`, on random episodes and on a CartPole
#    episode of 500 steps (what is its closed form?).

# %%
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402

from duetrl.core.coursework.compare import compare_calls  # noqa: E402
from duetrl.core.exercises import report  # noqa: E402
from duetrl.core.reference import dqn as reference_dqn  # noqa: E402
from duetrl.core.reference.returns import discounted_returns  # noqa: E402


def check_exercise_1(answer) -> bool:
    """``answer(family)`` must say whether that family's trainer keeps a replay buffer."""
    expected = {f: isinstance(getattr(trainers[f], "buffer", None), ReplayBuffer)
                for f in FAMILIES}
    try:
        got = {f: bool(answer(f)) for f in FAMILIES}
    except Exception as error:  # the student's code, whatever it raises
        return report(1, False, f"raised {type(error).__name__}: {error}")
    wrong = [f for f in FAMILIES if got[f] != expected[f]]
    return report(1, not wrong, "replay buffer: " + ", ".join(
        f"{f} {'yes' if expected[f] else 'no'}" for f in FAMILIES)
        + (f"; wrong for {wrong}" if wrong else ""))


def check_exercise_2(answer, samples: int = 32, seed: int = 0) -> bool:
    """``answer(reward, discount, terminated, q_next_target)`` against the float64 oracle."""
    dqn = trainers["dqn"]
    params = {k: np.asarray(v, np.float64) for k, v in dqn.params().items()}
    batch = dqn.buffer.sample(samples, np.random.default_rng(seed))
    batch["terminations"][: samples // 4] = True  # make sure some transitions terminate
    expected = reference_dqn.td_targets(params, batch)
    q_next_target, _ = reference_dqn.q_forward(params, "q_target", batch["next_states"])
    for i in range(samples):
        case = (float(batch["rewards"][i]), float(batch["discounts"][i]),
                bool(batch["terminations"][i]), q_next_target[i])
        try:
            got = float(answer(*case))
        except Exception as error:  # the student's code, whatever it raises
            return report(2, False, f"raised {type(error).__name__}: {error}")
        if not np.isclose(got, expected[i], rtol=1e-9, atol=1e-9):
            return report(2, False, f"for r={case[0]:.4f}, gamma^n={case[1]:.4f}, "
                                    f"term={case[2]}, Q_target(s',.)={np.round(case[3], 4)}: "
                                    f"expected y={expected[i]:.6f}, got {got:.6f}")
    return report(2, True, f"y matches the oracle on {samples} replayed transitions")


def check_exercise_3(answer, seed: int = 0) -> bool:
    """``answer(rewards, gamma)`` = G_0 of one terminated episode, against the oracle."""
    rng = np.random.default_rng(seed)
    cases = [(np.ones(500), 0.99), (np.ones(1), 0.5), (rng.normal(size=7), 0.0),
             (rng.normal(size=20), 1.0), (rng.normal(size=50), 0.9)]

    def reference(rewards, gamma):
        flags = np.zeros((len(rewards), 1))
        flags[-1] = 1.0  # the episode terminates after its last reward
        return discounted_returns(rewards[:, None], flags, np.zeros_like(flags), gamma)[0, 0]
    verdict = compare_calls(lambda rewards, gamma: float(answer(rewards, gamma)), reference,
                            cases, "G_0", atol=1e-9, rtol=1e-9)
    if not verdict:  # the comparator's message: which input, expected and got
        return report(3, False, verdict.message)
    return report(3, True, f"G_0 matches the oracle; 500 CartPole steps at gamma=0.99 give "
                           f"(1 - 0.99^500) / (1 - 0.99) = {(1 - 0.99**500) / 0.01:.4f}")


def needs_replay_buffer(family: str) -> bool:
    """True when the family learns off-policy, from transitions an older policy collected."""
    return family == "dqn"  # your code here


def discounted_return(rewards, gamma: float) -> float:
    """G_0 = sum_t gamma^t r_t of one terminated episode."""
    return float(np.sum(gamma ** np.arange(len(rewards)) * rewards))  # your code here


assert check_exercise_1(needs_replay_buffer)
assert check_exercise_3(discounted_return)

# %% tags=["torch"]
def td_target_torch(reward: float, discount: float, terminated: bool, q_next_target):
    """y = r^(n) + gamma^n (1 - term) max_a' Q_target(s', a'), in torch (float64)."""
    return (
        reward + discount * (1.0 - terminated) * torch.as_tensor(q_next_target).max()
    )  # your code here


assert check_exercise_2(td_target_torch)

# %% tags=["tf"]
def td_target_tf(reward: float, discount: float, terminated: bool, q_next_target):
    """y = r^(n) + gamma^n (1 - term) max_a' Q_target(s', a'), in tf (float64)."""
    return reward + discount * (1.0 - terminated) * tf.reduce_max(
        tf.constant(q_next_target, tf.float64)
    )  # your code here


assert check_exercise_2(td_target_tf)

# %% [markdown]
# A wrong answer gets a ✗ and the expected values. Here, forgetting that a terminal state has
# no future (bootstrapping through the end of an episode, the bug that makes Q grow past the
# largest achievable return):

# %%
assert not check_exercise_2(lambda r, discount, term, q: r + discount * np.max(q))
