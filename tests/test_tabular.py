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

import gymnasium as gym
import numpy as np
import pytest

from duetrl.core.reference.dynamic_programming import epsilon_greedy_q, tabular_mdp
from duetrl.core.tabular import (
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
    ({"gamma": -0.1}, r"gamma: expected a number in \[0, 1\]"),
])
def test_bad_input_is_named(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        td_control(gym.make("FrozenLake-v1"), num_steps=10, **kwargs)


def test_continuous_observations_are_refused() -> None:
    with pytest.raises(ValueError, match=r"env: tabular methods need Discrete observations"):
        td_control(gym.make("CartPole-v1"), num_steps=10)
