"""DQN (outline 9.2.2): the replay buffer's n-step returns, the float64 reference by hand and
by finite differences, torch vs tf vs reference in lockstep, and Q* on FrozenLake."""

from __future__ import annotations

import numpy as np
import pytest

from duetrl.core.initializers import cast_params
from duetrl.core.reference import dqn as ref
from duetrl.core.reference.dynamic_programming import tabular_mdp, value_iteration
from duetrl.core.rl.dqn import DQNTrainer, epsilon_greedy, linear_epsilon
from duetrl.core.rl.dqn_settings import make_dqn_settings
from duetrl.core.rl.replay import ReplayBuffer
from duetrl.core.tolerances import assert_close


def _agent(backends, name, double, dtype, params):
    module = __import__(f"duetrl.backends.{name}.dqn", fromlist=["DQNAgent"])
    agent = module.DQNAgent(4, 2, 16, double, None, dtype)
    backends[name].import_params(agent, cast_params(params, dtype))
    return agent


def _filled_buffer(n_step: int = 3, seed: int = 0) -> ReplayBuffer:
    rng = np.random.default_rng(seed)
    buffer = ReplayBuffer(40, 3, (4,), n_step=n_step, gamma=0.9, batch_size=8)
    for _ in range(60):  # wraps around the ring
        buffer.add(rng.normal(size=(3, 4)), rng.integers(0, 2, 3), rng.normal(size=3),
                   rng.normal(size=(3, 4)), rng.random(3) < 0.1, rng.random(3) < 0.1,
                   rng.random(3) < 0.9)
    return buffer


def test_n_step_returns_stop_at_terminations_and_bootstrap_at_truncations() -> None:
    gamma = 0.5
    buffer = ReplayBuffer(10, 1, (1,), n_step=3, gamma=gamma, batch_size=1)
    # one env: steps 0..4 with rewards 1, 2, 4, 8, 16; truncation at step 1, termination at 3
    flags = [(False, False), (False, True), (False, False), (True, False), (False, False)]
    for t, (term, trunc) in enumerate(flags):
        buffer.add(np.array([[t]]), np.array([0]), np.array([2.0**t]), np.array([[t + 0.5]]),
                   np.array([term]), np.array([trunc]), np.array([t != 2]))  # 2: a reset step
    buffer.rows = 5
    rng = np.random.default_rng(0)
    seen = {}
    while len(seen) < 4:
        batch = buffer.sample(1, rng)
        seen[float(batch["states"][0, 0])] = batch
    # from step 0: r0 + g r1, stopped by the truncation at 1: no termination, s' = s_2 (0.5 after 1)
    assert seen[0.0]["rewards"][0] == 1 + gamma * 2
    assert seen[0.0]["discounts"][0] == gamma**2 and not seen[0.0]["terminations"][0]
    assert seen[0.0]["next_states"][0, 0] == 1.5
    # from step 3: terminated at once: r3, term = 1
    assert seen[3.0]["rewards"][0] == 8 and seen[3.0]["terminations"][0]
    assert seen[3.0]["discounts"][0] == gamma
    # from step 4: the newest step, m = 1
    assert seen[4.0]["rewards"][0] == 16 and seen[4.0]["discounts"][0] == gamma
    assert 2.0 not in seen  # reset steps are never sampled


def _one_env_buffer(capacity: int, flags: list[tuple[bool, bool]]) -> ReplayBuffer:
    """Steps t = 0, 1, ... of one environment: state t, reward 3^t, next state t + 0.5,
    (terminated, truncated) = flags[t]; n = 3, gamma = 0.5."""
    buffer = ReplayBuffer(capacity, 1, (1,), n_step=3, gamma=0.5, batch_size=1)
    for t, (term, trunc) in enumerate(flags):
        buffer.add(np.array([[t]]), np.array([0]), np.array([3.0**t]), np.array([[t + 0.5]]),
                   np.array([term]), np.array([trunc]))
    return buffer


def _starting_at(buffer: ReplayBuffer, state: float) -> dict:
    """The sampled n-step transition that starts at the step whose state is ``state``."""
    rng = np.random.default_rng(0)
    while True:  # a few rows: each comes up within a few batches
        batch = buffer.sample(len(buffer), rng)
        found = np.flatnonzero(batch["states"][:, 0] == state)
        if found.size:
            return {key: value[found[0]] for key, value in batch.items()}


@pytest.mark.parametrize("end", [0, 1, 2, None])
@pytest.mark.parametrize("flag", ["terminated", "truncated"])
def test_n_step_window_that_ends_at_every_position(end, flag) -> None:
    """n = 3 from step 0, gamma = 0.5, rewards 1, 3, 9: the episode ends at window position
    ``end`` (None: not inside the window). m = end + 1 steps: R = 1, 2.5, 4.75 (1 + 1.5 + 2.25),
    gamma^m = 0.5, 0.25, 0.125, s' = s_{m-1} + 0.5; term only for a termination."""
    flags = [(False, False)] * 5
    if end is not None:
        flags[end] = (flag == "terminated", flag == "truncated")
    m = 3 if end is None else end + 1
    got = _starting_at(_one_env_buffer(10, flags), 0.0)
    assert got["rewards"] == [1.0, 2.5, 4.75][m - 1]
    assert got["discounts"] == 0.5**m
    assert got["next_states"][0] == m - 1 + 0.5
    assert got["terminations"] == (end is not None and flag == "terminated")
    assert got["actions"] == 0


def test_n_step_window_wraps_around_the_ring_and_stops_at_the_newest_step() -> None:
    """capacity 4, six steps: steps 4, 5 overwrite rows 0, 1; windows from steps 2..5."""
    buffer = _one_env_buffer(4, [(False, False)] * 6)
    assert (buffer.position, buffer.rows, len(buffer)) == (2, 4, 4)
    expected = {  # state: (R, gamma^m, s') with R = sum_k 0.5^k 3^(t+k)
        2.0: (9 + 0.5 * 27 + 0.25 * 81, 0.125, 4.5),
        3.0: (27 + 0.5 * 81 + 0.25 * 243, 0.125, 5.5),  # rows 3, 0, 1: across the seam
        4.0: (81 + 0.5 * 243, 0.25, 5.5),               # only one newer step
        5.0: (243.0, 0.5, 5.5),                         # the newest step: m = 1
    }
    batch = buffer.sample_many(64, 4, np.random.default_rng(1))
    assert set(batch["states"][..., 0].ravel()) == set(expected)  # steps 0 and 1 are gone
    for state, (reward, discount, next_state) in expected.items():
        got = _starting_at(buffer, state)
        assert (got["rewards"], got["discounts"], got["next_states"][0]) == (
            reward, discount, next_state), state


def test_n_step_walk_stays_in_its_environment() -> None:
    """Two environments side by side, rewards 1 and 100: a window never mixes them, and the
    other environment's termination does not stop it."""
    buffer = ReplayBuffer(8, 2, (1,), n_step=2, gamma=0.5, batch_size=1)
    for t in range(3):
        buffer.add(np.array([[t], [10 + t]]), np.array([0, 1]), np.array([1.0, 100.0]),
                   np.array([[t + 0.5], [10 + t + 0.5]]), np.array([False, t == 0]),
                   np.array([False, False]))
    batch = {k: v.reshape(-1, *v.shape[2:])
             for k, v in buffer.sample_many(64, 6, np.random.default_rng(2)).items()}
    first = {float(s): i for i, s in enumerate(batch["states"][:, 0])}
    env0, env1 = first[0.0], first[10.0]
    assert (batch["rewards"][env0], batch["discounts"][env0]) == (1.5, 0.25)
    assert (batch["rewards"][env1], batch["discounts"][env1]) == (100.0, 0.5)
    assert batch["terminations"][env1] and not batch["terminations"][env0]
    assert (batch["actions"][env0], batch["actions"][env1]) == (0, 1)
    assert batch["next_states"][env0, 0] == 1.5


def test_buffer_smaller_than_a_batch_is_named() -> None:
    with pytest.raises(ValueError, match=r"buffer_size: the replay buffer holds 10 steps x 2 envs = 20 transitions, fewer than one batch of 64"):
        ReplayBuffer(10, 2, (4,), batch_size=64)
    with pytest.raises(ValueError, match=r"buffer_size: 10 steps x 4 envs = 40 transitions is smaller than a batch of 64"):
        make_dqn_settings(buffer_size=10)
    buffer = ReplayBuffer(100, 1, (4,), batch_size=8)
    with pytest.raises(ValueError, match=r"batch_size: the replay buffer holds 0 transitions"):
        buffer.sample(8, np.random.default_rng(0))


@pytest.mark.parametrize("kwargs, message", [
    ({"epsilon_final": 1.5}, r"epsilon_final: expected an exploration rate in \[0, 1\], got 1.5"),
    ({"epsilon_start": -0.5}, r"epsilon_start: expected an exploration rate in \[0, 1\]"),
    ({"n_step": 0}, r"n_step: expected a positive int, got 0"),
    ({"learning_rate": 0.0}, r"learning_rate: expected a positive number"),
])
def test_bad_settings_are_named(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        make_dqn_settings(**kwargs)


def test_continuous_action_space_is_refused() -> None:
    with pytest.raises(ValueError, match=r"env: DQN needs a discrete action space .*Box.*use PPO"):
        DQNTrainer("Pendulum-v1", "torch", make_dqn_settings(), total_steps=100)


def test_epsilon_schedule_and_selection() -> None:
    assert linear_epsilon(0, 1.0, 0.1, 100) == 1.0
    assert linear_epsilon(50, 1.0, 0.1, 100) == pytest.approx(0.55)
    assert linear_epsilon(500, 1.0, 0.1, 100) == pytest.approx(0.1)
    q = np.array([[0.0, 1.0, 0.5]] * 1000)
    greedy = epsilon_greedy(q, 0.0, np.random.default_rng(0))
    assert np.all(greedy == 1)
    explored = epsilon_greedy(q, 0.3, np.random.default_rng(0))
    assert np.mean(explored != 1) == pytest.approx(0.2, abs=0.04)  # eps (A - 1) / A


def test_reference_gradient_matches_finite_differences() -> None:
    params = ref.init_q_params(4, 8, 2, seed=0)
    params["q.fc1.bias"] = np.full(8, 0.1)  # away from ReLU kinks
    batch = _filled_buffer().sample(8, np.random.default_rng(1))
    _, grads, _ = ref.dqn_loss_and_grads(params, batch, double=True)
    for name in ("q.fc1.kernel", "q.fc3.bias"):
        numeric = np.zeros_like(params[name])
        for index in np.ndindex(params[name].shape):
            for sign in (1, -1):
                shifted = {**params, name: params[name].copy()}
                shifted[name][index] += sign * 1e-6
                numeric[index] += sign * ref.dqn_loss_and_grads(shifted, batch, True)[0] / 2e-6
        assert_close(grads[name], numeric, 1e-7, f"dL/d{name}")  # central differences, h = 1e-6


def test_huber_and_targets_by_hand() -> None:
    np.testing.assert_allclose(ref.huber(np.array([0.5, -2.0, 3.0])), [0.125, 1.5, 2.5])
    params = ref.init_q_params(1, 2, 2, seed=0)
    for key in list(params):
        params[key] = np.zeros_like(params[key])
    params["q_target.fc3.bias"] = np.array([1.0, 3.0])   # Q_target(s', .) = (1, 3)
    params["q.fc3.bias"] = np.array([2.0, 0.0])          # Q(s', .) = (2, 0)
    batch = {"next_states": np.zeros((2, 1)), "rewards": np.array([1.0, 1.0]),
             "terminations": np.array([False, True]), "discounts": np.array([0.9, 0.9])}
    np.testing.assert_allclose(ref.td_targets(params, batch, double=False), [1 + 0.9 * 3, 1.0])
    np.testing.assert_allclose(ref.td_targets(params, batch, double=True), [1 + 0.9 * 1, 1.0])


@pytest.mark.parametrize("double", [False, True], ids=["dqn", "double-dqn"])
def test_torch_and_tf_match_the_reference_in_lockstep(backends, dtype, double) -> None:
    params = ref.init_q_params(4, 16, 2, seed=1)
    agents = {name: _agent(backends, name, double, dtype, params) for name in ("torch", "tf")}
    buffer, rng, state = _filled_buffer(), np.random.default_rng(5), {}
    tol = "float64" if dtype == "float64" else "float32_model"
    for step in range(6):
        batch = buffer.sample(8, rng)
        params, state, metrics = ref.dqn_update(params, state, batch, 1e-2, double)
        losses = {name: agent.update(batch, 1e-2)["loss"] for name, agent in agents.items()}
        if step == 2:
            params = ref.sync_target(params)
            for agent in agents.values():
                agent.sync_target()
        for name, agent in agents.items():
            layer_tol = tol if dtype == "float64" else "float32_layer"
            assert_close(losses[name], metrics["loss"], layer_tol, f"{name} loss at step {step}")
            exported = backends[name].export_params(agent)
            for key in params:
                assert_close(exported[key], params[key], tol, f"{name} {key} at step {step}")
        assert_close(agents["torch"].q_values(batch["states"]),
                     agents["tf"].q_values(batch["states"]), tol, "Q torch vs tf")


@pytest.mark.parametrize("name", ["torch", "tf"])
def test_dqn_meets_q_star_on_frozenlake(name) -> None:
    """One-hot states, the deterministic 4x4 lake (the slippery one needs far more samples to
    average its noise), gamma 0.9, uniform behaviour (eps = 1: off-policy, every pair seen).
    Q from the network within 0.05 of Q* from value iteration, for every non-terminal pair."""
    mdp = tabular_mdp("FrozenLake-v1", is_slippery=False)
    q_star = value_iteration(mdp, 0.9).q
    nonterminal = np.flatnonzero(mdp.P.sum(axis=(1, 2)) > 0)
    settings = make_dqn_settings(
        num_envs=8, hidden_dim=64, learning_rate=1e-3, gamma=0.9, batch_size=64,
        buffer_size=2000, learning_starts=500, train_freq=16, gradient_steps=32,
        target_update_interval=64, epsilon_start=1.0, epsilon_final=1.0, max_grad_norm=0.0,
        n_step=1)  # n-step returns of a uniform behaviour policy are not Q*'s (no correction)
    trainer = DQNTrainer("FrozenLake-v1", name, settings, seed=0, total_steps=10_000,
                         env_kwargs={"is_slippery": False})
    while trainer.env_steps < 9_000:
        trainer.step()
    q = trainer.agent.q_values(np.eye(16))
    assert_close(q[nonterminal], q_star[nonterminal], 0.05, f"{name} DQN Q vs Q*")
    trainer.close()


# ---- hand cases from mutation testing (MUTATION.md): defaults, the size check, sampling ----


def test_default_buffer_is_one_step_at_gamma_099_with_batches_of_one() -> None:
    """Left to its defaults a buffer gives plain 1-step DQN transitions: r_t, gamma = 0.99,
    s' = s_{t+1}; one transition already fills a batch of the default size 1."""
    ReplayBuffer(1, 1, (1,))  # 1 step x 1 env = 1 transition: one batch of 1
    buffer = ReplayBuffer(4, 1, (1,))
    for t in range(2):
        buffer.add(np.array([[t]]), np.array([0]), np.array([1.0 + t]), np.array([[t + 0.5]]),
                   np.array([False]), np.array([False]))
    got = _starting_at(buffer, 0.0)
    assert (got["rewards"], got["discounts"], got["next_states"][0]) == (1.0, 0.99, 0.5)
    assert got["states"].dtype == np.float64


def test_a_buffer_exactly_one_batch_large_is_accepted() -> None:
    """capacity x num_envs transitions against the batch: 4 x 2 = 8 holds a batch of 8 (the
    boundary), not one of 9."""
    ReplayBuffer(4, 2, (1,), batch_size=8)
    with pytest.raises(ValueError, match=r"holds 4 steps x 2 envs = 8 transitions, fewer than "
                                         r"one batch of 9"):
        ReplayBuffer(4, 2, (1,), batch_size=9)


def test_a_young_buffer_walks_only_over_the_steps_written() -> None:
    """n = 2, gamma = 0.5 in a ring of 4 with one step written: the window stops at that step
    (R = 3, gamma^1, s' = 0.5); a second step (reward 5) extends it: R = 3 + 2.5, gamma^2, and
    the newest step is a 1-step transition."""
    buffer = ReplayBuffer(4, 1, (1,), n_step=2, gamma=0.5, batch_size=1)
    buffer.add(np.array([[0]]), np.array([0]), np.array([3.0]), np.array([[0.5]]),
               np.array([False]), np.array([False]))
    got = buffer.sample(1, np.random.default_rng(0))
    assert (got["rewards"][0], got["discounts"][0], got["next_states"][0, 0]) == (3.0, 0.5, 0.5)
    buffer.add(np.array([[1]]), np.array([0]), np.array([5.0]), np.array([[1.5]]),
               np.array([False]), np.array([False]))
    assert (buffer.position, buffer.rows, len(buffer)) == (2, 2, 2)
    first, newest = _starting_at(buffer, 0.0), _starting_at(buffer, 1.0)
    assert (first["rewards"], first["discounts"], first["next_states"][0]) == (5.5, 0.25, 1.5)
    assert (newest["rewards"], newest["discounts"], newest["next_states"][0]) == (5.0, 0.5, 1.5)


def test_buffer_samples_uniformly_over_the_transitions_held() -> None:
    """A full ring of 3 steps x 2 envs (state 10 t + e) whose steps (1, 0) and (2, 1) are reset
    steps: the 4 transitions held come up a quarter of the time each, and never a reset step."""
    buffer = ReplayBuffer(3, 2, (1,), n_step=1, gamma=0.5, batch_size=4)
    for t in range(3):
        buffer.add(np.array([[10 * t], [10 * t + 1]]), np.zeros(2, np.int64), np.ones(2),
                   np.zeros((2, 1)), np.zeros(2, bool), np.zeros(2, bool),
                   np.array([t != 1, t != 2]))
    assert (buffer.position, buffer.rows, len(buffer)) == (0, 3, 4)
    many = buffer.sample_many(1000, 4, np.random.default_rng(3))
    assert many["states"].shape == (1000, 4, 1) and many["discounts"].shape == (1000, 4)
    values, counts = np.unique(many["states"], return_counts=True)
    assert values.tolist() == [0.0, 1.0, 11.0, 20.0]
    assert np.all(np.abs(counts / 4000 - 0.25) < 0.03), counts
    assert buffer.sample_many(1, 4, np.random.default_rng(0))["rewards"].shape == (1, 4)


def test_buffer_draws_of_a_batch_are_independent() -> None:
    """200 steps x 2 envs, env 0 a reset step at odd steps and env 1 at even ones (200
    transitions): a reset step is redrawn on its own, so a batch of 50 repeats as few states as
    50 independent uniform draws from 200 do (50 - 200 (1 - (199/200)^50) = 5.65 on average),
    and its count of env 0 varies as Binomial(50, 1/2) (standard deviation 3.54)."""
    buffer = ReplayBuffer(200, 2, (1,), n_step=1, gamma=0.5, batch_size=50)
    for t in range(200):
        buffer.add(np.array([[2 * t], [2 * t + 1]]), np.zeros(2, np.int64), np.ones(2),
                   np.zeros((2, 1)), np.zeros(2, bool), np.zeros(2, bool),
                   np.array([t % 2 == 0, t % 2 == 1]))
    states = buffer.sample_many(400, 50, np.random.default_rng(4))["states"][..., 0]
    repeats = [50 - np.unique(batch).size for batch in states]
    assert abs(np.mean(repeats) - 5.65) < 0.5, np.mean(repeats)
    env0 = (states % 2 == 0).sum(axis=1)
    assert abs(env0.mean() - 25) < 0.5 and abs(env0.std() - 3.54) < 0.5, (env0.mean(), env0.std())
