"""Tabular TD control (outline 4.2.2) against dynamic programming's exact answers.

FrozenLake-v1 4x4, gamma 0.9, exploring starts (every non-terminal state equally likely to
start an episode, so every pair gets visits). Why these tolerances:

* Deterministic lake, Q-learning / expected SARSA, constant alpha = 0.5: the target is a
  deterministic function of the table, so there is no noise floor. A pair next to the goal has
  an exact target, and its error shrinks by (1 - alpha) per visit; a pair k steps back waits
  for its successors. With >= 50 visits per pair, 0.5^50 ~ 1e-15: 1e-6 leaves a wide margin.
* Deterministic lake, SARSA: the target r + gamma Q(s', a') is noisy through a' ~ eps-greedy.
  Its standard deviation is at most gamma * spread of Q(s', .) / 2 <= 0.9 * 0.6 / 2 ~ 0.27;
  with alpha_n = 0.5 / n^0.6 (Robbins-Monro: sum alpha = inf, sum alpha^2 < inf) and n ~ 200
  visits, alpha_n ~ 0.02, and the table's spread around its fixed point is about
  sigma sqrt(alpha_n / 2) ~ 0.03; tolerance 0.1 is three such spreads.
* Slippery lake, Q-learning, alpha_n = 1 / n^0.8: the next state is random, the target's std
  is at most 0.5 (values in [0, 1]); n ~ 230 visits give alpha_n ~ 0.013, spread ~ 0.04;
  tolerance 0.1.
"""

from __future__ import annotations

import inspect

import gymnasium as gym
import numpy as np
import pytest

from duetrl.core.reference.dynamic_programming import epsilon_greedy_q, tabular_mdp
from duetrl.core.tabular import (
    check_epsilon,
    epsilon_greedy_action,
    epsilon_greedy_probabilities,
    expected_sarsa,
    q_learning,
    sarsa,
    td_control,
)
from duetrl.core.tolerances import assert_close

GAMMA = 0.9


def _setup(slippery: bool):
    mdp = tabular_mdp("FrozenLake-v1", is_slippery=slippery)
    nonterminal = np.flatnonzero(mdp.P.sum(axis=(1, 2)) > 0)  # holes and goal have no future
    return gym.make("FrozenLake-v1", is_slippery=slippery), mdp, nonterminal


@pytest.mark.parametrize("learn, eps, alpha, omega, steps, atol, slippery", [
    (q_learning, 0.0, 0.5, 0.0, 10_000, 1e-6, False),
    (expected_sarsa, 0.5, 0.5, 0.0, 10_000, 1e-6, False),
    (sarsa, 0.5, 0.5, 0.6, 40_000, 0.1, False),
    (q_learning, 0.0, 1.0, 0.8, 30_000, 0.1, True),
], ids=["q-learning", "expected-sarsa", "sarsa", "q-learning-slippery"])
def test_td_control_meets_dynamic_programming(learn, eps, alpha, omega, steps, atol,
                                              slippery) -> None:
    env, mdp, nonterminal = _setup(slippery)
    # Q-learning learns Q* from an eps = 0.5 behaviour; the SARSAs learn their own policy's Q
    behaviour = 0.5
    result = learn(env, num_steps=steps, alpha=alpha, omega=omega, gamma=GAMMA,
                   epsilon=behaviour, seed=0, exploring_starts=nonterminal)
    target = epsilon_greedy_q(mdp, GAMMA, eps if learn is not q_learning else 0.0)
    assert result.visits[nonterminal].min() >= 50
    assert_close(result.q[nonterminal], target[nonterminal], atol, f"{learn.__name__} Q")
    assert np.all(result.q[np.setdiff1d(np.arange(16), nonterminal)] == 0.0)


def test_same_seed_same_table_and_episodes_are_logged() -> None:
    env, _, _ = _setup(True)
    a = td_control(env, "sarsa", num_steps=2000, seed=3)
    b = td_control(env, "sarsa", num_steps=2000, seed=3)
    np.testing.assert_array_equal(a.q, b.q)
    assert a.episodes and a.episodes == b.episodes


def test_epsilon_greedy_probabilities_share_ties() -> None:
    np.testing.assert_allclose(epsilon_greedy_probabilities(np.array([1.0, 1.0, 0.0]), 0.3),
                               [0.1 + 0.35, 0.1 + 0.35, 0.1])


@pytest.mark.parametrize("kwargs, message", [
    ({"epsilon": 1.5}, r"epsilon: expected an exploration rate in \[0, 1\], got 1.5"),
    ({"rule": "td"}, r"rule: expected one of \['q_learning', 'sarsa', 'expected_sarsa'\]"),
    ({"alpha": 0.0}, r"alpha: expected a step size in \(0, 1\], got 0.0"),
    ({"alpha": 1.5}, r"alpha: expected a step size in \(0, 1\], got 1.5"),
    ({"gamma": -0.1}, r"gamma: expected a number in \[0, 1\]"),
])
def test_bad_input_is_named(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        td_control(gym.make("FrozenLake-v1"), num_steps=10, **kwargs)


def test_continuous_observations_are_refused() -> None:
    with pytest.raises(ValueError, match=r"env: tabular methods need Discrete observations"):
        td_control(gym.make("CartPole-v1"), num_steps=10)


# ---- hand cases: each pins one piece of the update at its boundary --------------------------
class Scripted(gym.Env):
    """A tiny MDP written out: from state s, action a goes to ``moves[s][a]``, pays
    ``rewards[s][a]`` and terminates when ``ends[s][a]``; episodes start in state 0."""

    def __init__(self, moves, rewards, ends) -> None:
        self.moves, self.rewards, self.ends = moves, rewards, ends
        self.observation_space = gym.spaces.Discrete(len(moves) + 1)
        self.action_space = gym.spaces.Discrete(len(moves[0]))
        self.s = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.s = 0
        return 0, {}

    def step(self, action):
        s, self.s = self.s, self.moves[self.s][action]
        return self.s, float(self.rewards[s][action]), bool(self.ends[s][action]), False, {}


def one_step_env(terminates: bool, time_limit: int | None = None) -> gym.Env:
    """State 0 -> state 1 whatever the action, reward 1; terminal or not, maybe time-limited."""
    env = Scripted([[1, 1]], [[1.0, 1.0]], [[terminates, terminates]])
    return gym.wrappers.TimeLimit(env, time_limit) if time_limit else env


# Q(0, .) = [0, -1]: the greedy first action is 0. Q(1, .) = [2, 4]: the next state's values.
Q_INIT = np.array([[0.0, -1.0], [2.0, 4.0]])


@pytest.mark.parametrize("rule, epsilon, bootstrap", [
    ("q_learning", 0.0, 4.0),                         # max_a' Q(1, a') = 4
    ("sarsa", 0.0, 4.0),                              # a' = greedy = 1: Q(1, 1) = 4
    ("expected_sarsa", 0.5, 0.25 * 2.0 + 0.75 * 4.0),  # pi(.|1) = [0.25, 0.75]: 3.5
])
@pytest.mark.parametrize("terminates", [False, True], ids=["truncated", "terminated"])
def test_first_step_target_bootstraps_at_a_truncation_not_at_a_termination(
        rule, epsilon, bootstrap, terminates) -> None:
    """alpha = 1 writes the target itself: y = r + gamma (1 - term) bootstrap, gamma = 0.5."""
    env = one_step_env(terminates, time_limit=None if terminates else 1)
    result = td_control(env, rule, num_steps=1, alpha=1.0, gamma=0.5, epsilon=epsilon,
                        q_init=Q_INIT)
    (state, action), = np.argwhere(result.visits == 1)  # the one pair updated
    expected = 1.0 if terminates else 1.0 + 0.5 * bootstrap
    assert (state, result.q[state, action]) == (0, expected)
    np.testing.assert_array_equal(result.q[1], Q_INIT[1])  # the next state is not touched
    assert result.episodes == [(1, 1.0)]


def test_a_truncation_on_the_last_step_is_an_update_and_a_logged_episode() -> None:
    """A chain 0 -> 1 -> 2 -> 3 paying 1, 2, 4, cut by a time limit of 3 steps, run for exactly
    3 steps, then 4, then 6: every step updates once, the episode (step 3, return 7) is logged
    at its last step, and the 4th step starts a new episode from state 0."""
    chain = Scripted([[1], [2], [3]], [[1.0], [2.0], [4.0]], [[False], [False], [False]])
    env = gym.wrappers.TimeLimit(chain, 3)
    q_init = np.zeros((4, 1))
    q_init[3] = 8.0  # what the cut episode would have earned after the limit
    three = td_control(env, "q_learning", num_steps=3, alpha=1.0, gamma=0.5, epsilon=0.0,
                       q_init=q_init)
    # backwards is not how the updates run: each sees the table of its own time (zeros ahead)
    np.testing.assert_array_equal(three.q[:, 0], [1.0, 2.0, 4.0 + 0.5 * 8.0, 8.0])
    assert three.visits.dtype.kind == "i" and three.visits[:, 0].tolist() == [1, 1, 1, 0]
    assert three.episodes == [(3, 7.0)]
    four = td_control(env, "q_learning", num_steps=4, alpha=1.0, gamma=0.5, epsilon=0.0,
                      q_init=q_init)
    assert four.visits[:, 0].tolist() == [2, 1, 1, 0] and four.episodes == [(3, 7.0)]
    assert four.q[0, 0] == 1.0 + 0.5 * 2.0  # the second visit sees Q(1) = 2
    six = td_control(env, "q_learning", num_steps=6, alpha=1.0, gamma=0.5, epsilon=0.0,
                     q_init=q_init)
    assert six.episodes == [(3, 7.0), (6, 7.0)]  # the second return counts from 0 again


@pytest.mark.parametrize("omega, expected", [
    (0.0, [0.5, 1.25, 2.125, 3.0625]),                 # constant alpha = 0.5
    (1.0, [0.5, 0.875, 1.2291666666666665, 1.5755208333333333]),  # 0.5 / n
    (0.5, [0.5, 1.0303300858899105, 1.598924813452994, 2.1991936100897456]),  # 0.5 / sqrt(n)
])
def test_step_size_decays_with_the_visits_of_the_pair(omega, expected) -> None:
    """One state, one action, terminal at once, paying 1, 2, 3, 4: Q <- Q + alpha_n (r - Q),
    alpha_n = 0.5 / n^omega (worked by hand: 0.5, 0.5 + 0.5/sqrt(2) * 1.5, ...)."""

    class Counting(Scripted):
        def step(self, action):
            self.count = getattr(self, "count", 0) + 1
            return 1, float(self.count), True, False, {}

    env = Counting([[1]], [[0.0]], [[True]])
    seen = []
    for steps in range(1, 5):
        env.count = 0
        result = td_control(env, "q_learning", num_steps=steps, alpha=0.5, omega=omega,
                            epsilon=0.0)
        seen.append(result.q[0, 0])
        assert result.visits[0, 0] == steps
    np.testing.assert_allclose(seen, expected, rtol=1e-15)


def test_ties_are_broken_uniformly_and_epsilon_explores_uniformly() -> None:
    rng = np.random.default_rng(0)
    two_ties = [epsilon_greedy_action(np.array([1.0, 1.0, 0.0]), 0.0, rng) for _ in range(4000)]
    np.testing.assert_allclose(np.bincount(two_ties, minlength=3) / 4000, [0.5, 0.5, 0.0],
                               atol=0.03)  # 4 sigma of a fair coin over 4000 draws
    unique = [epsilon_greedy_action(np.array([0.0, 2.0, 1.0]), 0.0, rng) for _ in range(50)]
    assert set(unique) == {1}
    uniform = [epsilon_greedy_action(np.array([0.0, 2.0, 1.0]), 1.0, rng) for _ in range(3000)]
    np.testing.assert_allclose(np.bincount(uniform, minlength=3) / 3000, [1 / 3] * 3, atol=0.03)
    # a unique greedy action costs one draw (the coin), no tie-break: seeded runs stay put
    ours, coins = np.random.default_rng(5), np.random.default_rng(5)
    epsilon_greedy_action(np.array([0.0, 2.0, 1.0]), 0.0, ours)
    coins.random()
    assert ours.random() == coins.random()


def test_documented_defaults_and_the_checked_epsilon() -> None:
    defaults = {name: p.default for name, p in inspect.signature(td_control).parameters.items()
                if p.default is not inspect.Parameter.empty}
    assert defaults == {"rule": "q_learning", "num_steps": 50_000, "alpha": 0.5, "omega": 0.0,
                        "gamma": 0.99, "epsilon": 0.1, "seed": 0, "q_init": None,
                        "exploring_starts": None}
    assert check_epsilon(1) == 1.0 and isinstance(check_epsilon(1), float)
    assert check_epsilon(0.0) == 0.0
