"""One update of each algorithm vs the float64 reference, and N lockstep updates torch vs tf."""

from __future__ import annotations

import numpy as np
import pytest

from duetrl.core.initializers import cast_params
from duetrl.core.interfaces.rl_settings import make_settings
from duetrl.core.reference import algorithms as ref
from duetrl.core.reference.policy import init_agent_params
from duetrl.core.rl.train import PolicyGradientTrainer
from duetrl.core.tolerances import assert_close

ALGORITHMS = ["reinforce", "reinforce_baseline", "ppo"]
T, N, STATE, ACTIONS = 6, 3, 4, 2


def random_rollout(continuous: bool, rng: np.random.Generator) -> dict:
    actions = rng.normal(size=(T, N, ACTIONS)) if continuous else rng.integers(0, ACTIONS, (T, N))
    return {
        "states": rng.normal(size=(T, N, STATE)), "next_states": rng.normal(size=(T, N, STATE)),
        "actions": actions, "rewards": rng.normal(size=(T, N)),
        "terminations": rng.random((T, N)) < 0.2, "truncations": rng.random((T, N)) < 0.2,
        "mask": (rng.random((T, N)) < 0.9).astype(float),
        "log_probs": rng.normal(size=(T, N)) * 0.1 - 0.7, "learning_rate": 0.01,
        "permutations": np.stack([rng.permutation(T * N).reshape(3, -1) for _ in range(2)]),
    }


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("continuous", [False, True], ids=["categorical", "gaussian"])
def test_one_update_matches_reference(backend, dtype, algorithm, continuous):
    rng = np.random.default_rng(ALGORITHMS.index(algorithm))
    extra = {} if algorithm == "reinforce" else {"ent_coef": 0.01}
    settings = make_settings(algorithm, hidden_dim=16, **extra)
    params = init_agent_params(algorithm, STATE, 16, ACTIONS, continuous, seed=1)
    rollout = random_rollout(continuous, rng)
    expected, _, expected_metrics = ref.update(algorithm, params, {}, rollout, settings,
                                               continuous)
    agent = backend.Agent(algorithm, STATE, ACTIONS, continuous, settings, dtype)
    backend.import_params(agent, cast_params(params, dtype))
    metrics = agent.update(rollout)
    atol = "float64" if dtype == "float64" else "float32_model"
    got = backend.export_params(agent)
    for name in expected:
        assert_close(got[name], expected[name], atol, f"{backend.NAME} {name}")
    for name, value in expected_metrics.items():
        assert_close(metrics[name], value, atol, name)


def run_lockstep(backends, algorithm: str, dtype: str, updates: int, env_id: str,
                 **overrides) -> None:
    settings = make_settings(algorithm, **overrides)
    trainers = {name: PolicyGradientTrainer(algorithm, env_id, name, settings, seed=3, total_steps=10**6,
                              dtype=dtype) for name in backends}
    atol = "float64" if dtype == "float64" else "float32_model"
    for _ in range(updates):
        rollouts = {name: t.collect() for name, t in trainers.items()}
        np.testing.assert_array_equal(rollouts["torch"]["actions"], rollouts["tf"]["actions"]) \
            if not trainers["torch"].info.continuous else assert_close(
                rollouts["torch"]["actions"], rollouts["tf"]["actions"], atol, "actions")
        losses = {name: t.agent.update(rollouts[name])["loss"] for name, t in trainers.items()}
        assert_close(losses["torch"], losses["tf"], atol, "loss")
    params = {name: t.params() for name, t in trainers.items()}
    for name in params["torch"]:
        assert_close(params["torch"][name], params["tf"][name], atol, f"{algorithm} {name}")
    assert trainers["torch"].episode_log == trainers["tf"].episode_log


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_lockstep_float64(backends, algorithm):
    small = {"num_envs": 4, "hidden_dim": 16}
    if algorithm == "ppo":
        small.update(num_steps=32, update_epochs=4, num_minibatches=2)
    run_lockstep(backends, algorithm, "float64", 6, "CartPole-v1", **small)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_lockstep_float32(backends, algorithm):
    small = {"num_envs": 4, "hidden_dim": 16}
    if algorithm == "ppo":
        small.update(num_steps=32, update_epochs=4, num_minibatches=2)
    run_lockstep(backends, algorithm, "float32", 3, "CartPole-v1", **small)


def test_lockstep_gaussian_ppo_float64(backends):
    run_lockstep(backends, "ppo", "float64", 3, "duetrl/IdentityContinuous-v0", num_envs=4,
                 hidden_dim=16, num_steps=16, update_epochs=2, num_minibatches=2)
