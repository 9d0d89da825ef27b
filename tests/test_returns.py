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


# Hand-computed cases, one per column, chosen so that a one-character change in the recurrence
# (a sign, a flag, an index, gamma for lambda) moves at least one number:
# rewards r = (1, 2, 4) and V(s_{t+1}) = (10, 20, 40) in every column;
# columns: no end | termination at step 0 | truncation at step 0 | termination at the last
# step | truncation at the last step | termination and truncation at step 1.
CASE_REWARDS = np.tile([[1.0], [2.0], [4.0]], (1, 6))
CASE_NEXT_VALUES = np.tile([[10.0], [20.0], [40.0]], (1, 6))
CASE_TERMINATIONS = np.zeros((3, 6), bool)
CASE_TRUNCATIONS = np.zeros((3, 6), bool)
CASE_TERMINATIONS[0, 1] = CASE_TRUNCATIONS[0, 2] = True
CASE_TERMINATIONS[2, 3] = CASE_TRUNCATIONS[2, 4] = True
CASE_TERMINATIONS[1, 5] = CASE_TRUNCATIONS[1, 5] = True
CASE_RETURNS = {  # G_t = r_t + gamma (1 - term_t) [c_t G_{t+1} + (1 - c_t) V(s_{t+1})]
    0.0: [[1, 1, 1, 1, 1, 1], [2, 2, 2, 2, 2, 2], [4, 4, 4, 4, 4, 4]],
    0.5: [[8, 1, 6, 3, 8, 2], [14, 14, 14, 4, 14, 2], [24, 24, 24, 4, 24, 24]],
    1.0: [[47, 1, 11, 7, 47, 3], [46, 46, 46, 6, 46, 2], [44, 44, 44, 4, 44, 44]],
}


@pytest.mark.parametrize("gamma", sorted(CASE_RETURNS))
def test_returns_by_hand_at_episode_edges(backends, gamma):
    args = (CASE_REWARDS, CASE_TERMINATIONS, CASE_TRUNCATIONS)
    expected = np.array(CASE_RETURNS[gamma], dtype=float)
    assert_close(discounted_returns(*args, gamma, CASE_NEXT_VALUES), expected, "float64",
                 "reference")
    for backend in backends.values():
        t = backend.as_tensor
        got = backend.compute_returns(*(t(a) for a in args), gamma, t(CASE_NEXT_VALUES))
        assert_close(got, expected, "float64", f"{backend.NAME} compute_returns")
    # without a critic (next_values=None) nothing is bootstrapped: a cut adds 0
    no_bootstrap = discounted_returns(*args, gamma)
    assert no_bootstrap[2, 0] == 4.0 and no_bootstrap[0, 2] == 1.0


def test_gae_by_hand_at_episode_edges(backends):
    """gamma = lambda = 0.5, V(s_t) = (3, 5, 7): delta = (3, 7, 17) inside an episode."""
    values = np.tile([[3.0], [5.0], [7.0]], (1, 6))
    args = (CASE_REWARDS, values, CASE_NEXT_VALUES, CASE_TERMINATIONS, CASE_TRUNCATIONS)
    # A_t = delta_t + gamma lambda c_t A_{t+1}; a termination drops gamma V(s_{t+1}) from delta
    expected = np.array([[5.8125, -2, 3, 4.5625, 5.8125, 2.25],
                         [11.25, 11.25, 11.25, 6.25, 11.25, -3],
                         [17, 17, 17, -3, 17, 17]])
    advantages, returns = gae(*args, 0.5, 0.5)
    assert_close(advantages, expected, "float64", "reference advantages")
    assert_close(returns, expected + values, "float64", "reference returns")
    lam_zero, _ = gae(*args, 0.5, 0.0)  # lambda = 0: the one-step TD error
    assert_close(lam_zero, [[3, -2, 3, 3, 3, 3], [7, 7, 7, 7, 7, -3], [17, 17, 17, -3, 17, 17]],
                 "float64", "lambda = 0")
    gamma_zero, _ = gae(*args, 0.0, 0.5)  # gamma = 0: r_t - V(s_t)
    assert_close(gamma_zero, CASE_REWARDS - values, "float64", "gamma = 0")
    for backend in backends.values():
        tensors = [backend.as_tensor(a) for a in args]
        for gamma, lam, want in ((0.5, 0.5, expected), (0.5, 0.0, lam_zero),
                                 (0.0, 0.5, gamma_zero)):
            got, got_returns = backend.compute_gae(*tensors, gamma, lam)
            assert_close(got, want, "float64", f"{backend.NAME} gamma={gamma} lam={lam}")
            assert_close(got_returns, want + values, "float64", f"{backend.NAME} returns")


def test_long_rollouts_scale_in_both_backends(backends):
    """T = 4096 steps of N = 64 environments in float32 (the (T, T, N) matrix of the old code
    would need 4 GB per copy); the scan must match the float64 reference."""
    steps, envs = 4096, 64
    rng = np.random.default_rng(7)
    rewards = rng.normal(size=(steps, envs))
    values, next_values = rng.normal(size=(steps, envs)), rng.normal(size=(steps, envs))
    terminations = rng.random((steps, envs)) < 0.01
    truncations = rng.random((steps, envs)) < 0.005
    expected_returns = discounted_returns(rewards, terminations, truncations, 0.99, next_values)
    expected_advantages, _ = gae(rewards, values, next_values, terminations, truncations, 0.99,
                                 0.95)
    # float32_model (1e-4), not float32_layer: each return sums ~100 float32 steps of an episode
    # (values near 20), and rounding accumulates along the recurrence as it does through layers
    for backend in backends.values():
        t = lambda x, b=backend: b.as_tensor(x, "float32" if x.dtype.kind == "f" else None)
        got = backend.compute_returns(t(rewards), t(terminations), t(truncations), 0.99,
                                      t(next_values))
        assert_close(got, expected_returns, "float32_model", f"{backend.NAME} returns")
        got_advantages, _ = backend.compute_gae(t(rewards), t(values), t(next_values),
                                                t(terminations), t(truncations), 0.99, 0.95)
        assert_close(got_advantages, expected_advantages, "float32_model",
                     f"{backend.NAME} advantages")


def test_returns_benchmark_runs_on_tiny_shapes() -> None:
    """benchmarks/returns.py still runs (speed itself is never asserted in tests)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parent.parent / "benchmarks" / "returns.py"
    spec = importlib.util.spec_from_file_location("bench_returns", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = module.main(["--sizes", "8x2", "--repeats", "1", "--json"])
    assert set(results["8x2"]) == {"torch", "tf"}
    assert all(r["scan"] > 0 and r["matrix"] > 0 for r in results["8x2"].values())


@pytest.mark.parametrize("truncated", [False, True])
def test_listing_returns_by_hand(backends, truncated):
    """Listing 5.2's compute_returns, repaired, in both frameworks: rewards 1, 2, 4, 8 and
    gamma 0.5 give G = 4, 6, 8, 8 (each r_t + 0.5 G_{t+1}, the episode ending at its last
    step, nowhere before); a cut episode gives the same (no critic to bootstrap from)."""
    for name, backend in backends.items():
        returns = np.asarray(backend.compute_returns_listing([1.0, 2.0, 4.0, 8.0], 0.5,
                                                             truncated))
        assert returns.dtype == np.float32 and returns.shape == (4,), name
        np.testing.assert_array_equal(returns, [4.0, 6.0, 8.0, 8.0], err_msg=name)
        single = np.asarray(backend.compute_returns_listing([3.0], 0.9, truncated))
        np.testing.assert_array_equal(single, [3.0], err_msg=name)
        undiscounted = np.asarray(backend.compute_returns_listing([1.0, 1.0, 1.0], 1.0,
                                                                  truncated))
        np.testing.assert_array_equal(undiscounted, [3.0, 2.0, 1.0], err_msg=name)
