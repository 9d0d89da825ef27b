"""Returns, GAE and advantage normalisation: reference oracles and both backends' tensor code."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from duetrl.core.reference.returns import discounted_returns, gae, normalize_advantages
from duetrl.core.tolerances import assert_close


def naive_returns(rewards, terms, truncs, gamma, next_values):
    """An independent oracle: walk forward from each step to its episode's end."""
    steps, envs = rewards.shape
    out = np.zeros_like(rewards)
    for n in range(envs):
        for t in range(steps):
            total, discount, k = 0.0, 1.0, t
            while True:
                total += discount * rewards[k, n]
                if terms[k, n]:
                    break
                if truncs[k, n] or k == steps - 1:
                    total += discount * gamma * next_values[k, n]
                    break
                discount *= gamma
                k += 1
            out[t, n] = total
    return out


def test_gae_test_vector_from_design(backends):
    rewards = np.array([[0.0], [0.0], [1.0]])
    values = np.full((3, 1), 0.5)
    next_values = np.array([[0.5], [0.5], [0.0]])
    terms = np.zeros((3, 1), bool)
    truncs = np.zeros((3, 1), bool)
    advantages, returns = gae(rewards, values, next_values, terms, truncs, 1.0, 0.95)
    assert_close(advantages[:, 0], [0.45125, 0.475, 0.5], "float64", "advantages")
    assert_close(returns[:, 0], [0.95125, 0.975, 1.0], "float64", "returns")
    for backend in backends.values():
        t = backend.as_tensor
        adv, ret = backend.compute_gae(t(rewards), t(values), t(next_values), t(terms),
                                       t(truncs), 1.0, 0.95)
        assert_close(adv, advantages, "float64", f"{backend.NAME} advantages")
        assert_close(ret, returns, "float64", f"{backend.NAME} returns")


@st.composite
def trajectories(draw):
    steps = draw(st.integers(1, 12))
    envs = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**31 - 1))
    p_end = draw(st.sampled_from([0.0, 0.1, 0.3, 0.7]))
    rng = np.random.default_rng(seed)
    return dict(
        rewards=rng.normal(size=(steps, envs)),
        values=rng.normal(size=(steps, envs)),
        next_values=rng.normal(size=(steps, envs)),
        terminations=rng.random((steps, envs)) < p_end,
        truncations=rng.random((steps, envs)) < p_end,
        gamma=draw(st.floats(0.0, 1.0)),
        lam=draw(st.floats(0.0, 1.0)),
    )


@settings(max_examples=40, deadline=None)
@given(trajectories())
def test_returns_match_naive_oracle_and_both_backends(backends, traj):
    args = (traj["rewards"], traj["terminations"], traj["truncations"])
    expected = discounted_returns(*args, traj["gamma"], traj["next_values"])
    assert_close(expected, naive_returns(*args, traj["gamma"], traj["next_values"]), "float64")
    for backend in backends.values():
        tensors = [backend.as_tensor(a) for a in args]
        got = backend.compute_returns(*tensors, traj["gamma"],
                                      backend.as_tensor(traj["next_values"]))
        assert_close(got, expected, "float64", f"{backend.NAME} compute_returns")


@settings(max_examples=40, deadline=None)
@given(trajectories())
def test_gae_matches_reference_in_both_backends(backends, traj):
    names = ("rewards", "values", "next_values", "terminations", "truncations")
    expected = gae(*(traj[k] for k in names), traj["gamma"], traj["lam"])
    # lambda = 1: GAE is the bootstrapped reward-to-go minus the value, once next_values
    # agree with values inside an episode (V(s_{t+1}) is the next row's V(s_t))
    ends = traj["terminations"] | traj["truncations"]
    consistent = traj["next_values"].copy()
    inside = ~ends[:-1]
    consistent[:-1][inside] = traj["values"][1:][inside]
    full, _ = gae(traj["rewards"], traj["values"], consistent, traj["terminations"],
                  traj["truncations"], traj["gamma"], 1.0)
    rtg = discounted_returns(traj["rewards"], traj["terminations"], traj["truncations"],
                             traj["gamma"], consistent)
    assert_close(full, rtg - traj["values"], 1e-9, "GAE(lambda=1)")
    for backend in backends.values():
        got = backend.compute_gae(*(backend.as_tensor(traj[k]) for k in names), traj["gamma"],
                                  traj["lam"])
        assert_close(got[0], expected[0], "float64", f"{backend.NAME} advantages")
        assert_close(got[1], expected[1], "float64", f"{backend.NAME} returns")


@pytest.mark.parametrize("gamma", [0.5, 0.9, 0.99])
def test_constant_reward_oracle(gamma):
    steps = 4000
    rewards = np.ones((steps, 1))
    never = np.zeros((steps, 1), bool)
    returns = discounted_returns(rewards, never, never, gamma)
    assert returns[0, 0] == pytest.approx(1.0 / (1.0 - gamma), rel=1e-9)  # the limit
    # bootstrapping with the true value 1 / (1 - gamma) makes every return exactly that value
    bootstrap = np.full((steps, 1), 1.0 / (1.0 - gamma))
    exact = discounted_returns(rewards[:50], never[:50], never[:50], gamma, bootstrap[:50])
    assert_close(exact, np.full((50, 1), 1.0 / (1.0 - gamma)), 1e-9, "constant returns")


def test_truncation_bootstraps_termination_does_not(backends):
    rewards = np.array([[1.0, 1.0], [1.0, 1.0]])
    terms = np.array([[False, False], [True, False]])
    truncs = np.array([[False, False], [False, True]])
    next_values = np.full((2, 2), 10.0)
    returns = discounted_returns(rewards, terms, truncs, 0.5, next_values)
    assert_close(returns, [[1.5, 4.0], [1.0, 6.0]], "float64")
    for backend in backends.values():
        t = backend.as_tensor
        got = backend.compute_returns(t(rewards), t(terms), t(truncs), 0.5, t(next_values))
        assert_close(got, returns, "float64", backend.NAME)


def test_normalize_advantages_matches_reference(backends):
    rng = np.random.default_rng(3)
    adv, mask = rng.normal(size=(6, 3)), (rng.random((6, 3)) < 0.7).astype(float)
    expected = normalize_advantages(adv, mask)
    kept = adv[mask == 1]
    assert_close(expected[mask == 1], (kept - kept.mean()) / (kept.std() + 1e-8), "float64")
    for backend in backends.values():
        got = backend.normalize_advantages(backend.as_tensor(adv), backend.as_tensor(mask))
        assert_close(got, expected, "float64", backend.NAME)


@pytest.mark.parametrize("name,value", [("gamma", 1.5), ("gamma", -0.1), ("lam", 2.0),
                                        ("gamma", float("nan"))])
def test_discount_outside_unit_interval_is_refused(backends, name, value):
    x = np.zeros((3, 1))
    gamma, lam = (value, 0.9) if name == "gamma" else (0.9, value)
    message = f"{name}: expected a number in [0, 1], got {value!r}"
    with pytest.raises(ValueError, match=rf"^{name}: expected a number in \[0, 1\]"):
        gae(x, x, x, x, x, gamma, lam)
    for backend in backends.values():
        t = backend.as_tensor(x)
        with pytest.raises(ValueError) as error:
            backend.compute_gae(t, t, t, t, t, gamma, lam)
        assert str(error.value) == message


def test_mismatched_shapes_name_the_argument(backends):
    for backend in backends.values():
        with pytest.raises(ValueError, match=r"^terminations: expected shape \(3, 2\)"):
            t = backend.as_tensor
            backend.compute_returns(t(np.zeros((3, 2))), t(np.zeros((3, 1))),
                                    t(np.zeros((3, 2))), 0.9)
