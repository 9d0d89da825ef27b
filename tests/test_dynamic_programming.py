"""Dynamic programming (outline 2.2.2, 4.2.2): V* and Q* two ways, agreeing to 1e-10, on
FrozenLake-v1 (slippery 4x4 and 8x8) and Taxi, read from the environments' transition tables."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from duetrl.core.envs import newest_env_id
from duetrl.core.reference.dynamic_programming import (
    bellman_optimality_residual,
    epsilon_greedy_q,
    evaluate_policy_iterative,
    evaluate_policy_linear,
    policy_iteration,
    q_from_v,
    tabular_mdp,
    value_iteration,
)
from duetrl.core.tolerances import assert_close

GAMMA = 0.99
CASES = {
    "frozenlake-4x4": ("FrozenLake-v1", {}),
    "frozenlake-8x8": ("FrozenLake-v1", {"map_name": "8x8"}),
    "taxi": (newest_env_id("Taxi"), {}),  # v4 on Gymnasium 1.4, v3 on 1.2
}


@pytest.fixture(scope="module", params=list(CASES))
def solved(request):
    env_id, kwargs = CASES[request.param]
    mdp = tabular_mdp(env_id, **kwargs)
    return request.param, mdp, value_iteration(mdp, GAMMA), policy_iteration(mdp, GAMMA)


def test_value_and_policy_iteration_agree_to_1e10(solved) -> None:
    name, mdp, vi, pi = solved
    assert_close(vi.value, pi.value, "float64", f"{name}: V* (value vs policy iteration)")
    assert_close(vi.q, pi.q, "float64", f"{name}: Q*")
    assert bellman_optimality_residual(mdp, vi.value, GAMMA) < 1e-10
    assert bellman_optimality_residual(mdp, pi.value, GAMMA) < 1e-10
    # both policies are optimal: the linear solve of V^pi for either gives V*
    for policy in (vi.policy, pi.policy):
        assert_close(evaluate_policy_linear(mdp, policy, GAMMA), vi.value, "float64", name)
        rows = np.arange(mdp.num_states)
        assert_close(vi.q[rows, policy], vi.value, "float64", f"{name}: Q*(s, pi*(s)) = V*(s)")
    if name.startswith("frozenlake"):  # no ties among optimal actions: the very same policy
        np.testing.assert_array_equal(vi.policy, pi.policy)


def test_iterative_and_linear_policy_evaluation_agree() -> None:
    mdp = tabular_mdp("FrozenLake-v1")
    uniform = np.full((16, 4), 0.25)
    v_linear = evaluate_policy_linear(mdp, uniform, GAMMA)
    assert_close(evaluate_policy_iterative(mdp, uniform, GAMMA), v_linear, "float64", "V^uniform")
    # V^pi satisfies its own Bellman equation: V = R_pi + gamma P_pi V
    q = q_from_v(mdp, v_linear, GAMMA)
    assert_close((uniform * q).sum(axis=1), v_linear, "float64", "Bellman expectation")


def test_known_values_at_the_start_state() -> None:
    """FrozenLake 4x4 slippery, gamma 0.99: V*(0) = 0.542026 (from the linear solve of the
    optimal policy, pinned here). Deterministic 4x4: the goal is 6 steps away, so gamma^5."""
    mdp = tabular_mdp("FrozenLake-v1")
    assert value_iteration(mdp, GAMMA).value[0] == pytest.approx(0.5420259320, abs=1e-9)
    exact = value_iteration(tabular_mdp("FrozenLake-v1", is_slippery=False), GAMMA)
    assert exact.value[0] == pytest.approx(GAMMA**5, abs=1e-12)
    assert value_iteration(tabular_mdp("FrozenLake-v1", map_name="8x8"), GAMMA).value[0] == \
        pytest.approx(0.4146403618, abs=1e-9)


def test_epsilon_greedy_fixed_point() -> None:
    mdp = tabular_mdp("FrozenLake-v1", is_slippery=False)
    q_star = value_iteration(mdp, 0.9).q
    assert_close(epsilon_greedy_q(mdp, 0.9, 0.0), q_star, "float64", "eps = 0 gives Q*")
    assert np.all(epsilon_greedy_q(mdp, 0.9, 0.3) <= q_star + 1e-12)  # exploring costs


def test_env_without_transition_table_is_named() -> None:
    with pytest.raises(ValueError, match=r"env: 'CartPole-v1' exposes no transition table env.unwrapped.P"):
        tabular_mdp("CartPole-v1")
    with pytest.raises(ValueError, match=r"env: .* exposes no transition table"):
        tabular_mdp(gym.make("MountainCar-v0"))
    mdp = tabular_mdp("FrozenLake-v1")
    with pytest.raises(ValueError, match=r"gamma: expected a number in \[0, 1\], got 1.5"):
        value_iteration(mdp, 1.5)
    with pytest.raises(ValueError, match=r"policy: expected \(S,\) actions or \(S, A\)"):
        evaluate_policy_linear(mdp, np.ones((16, 4)), 0.9)
