"""DQN's data pipeline on a real CartPole: what the trainer stores, when eps decays, when the
target syncs. Each test names the mistake it guards against (every one breaks DQN on CartPole
while the update itself still equals the float64 reference)."""

from __future__ import annotations

import numpy as np
import pytest

from duetrl.core.rl.dqn import DQNTrainer
from duetrl.core.rl.dqn_settings import make_dqn_settings

TAU = 0.02  # CartPole's Euler step: x' = x + tau x_dot, theta' = theta + tau theta_dot


def _collecting(backend: str = "torch", **overrides) -> DQNTrainer:
    """A trainer that only collects (no updates), eps = 1, on CartPole-v1."""
    settings = make_dqn_settings(**{"num_envs": 4, "hidden_dim": 8, "learning_starts": 10**9,
                                    "train_freq": 64, "buffer_size": 1000, **overrides})
    return DQNTrainer("CartPole-v1", backend, settings, seed=3, total_steps=10**6,
                      env_kwargs={"max_episode_steps": 10})


def _stored(trainer: DQNTrainer) -> dict[str, np.ndarray]:
    b, rows = trainer.buffer, trainer.buffer.rows
    return {k: getattr(b, k)[:rows] for k in ("states", "next_states", "actions",
                                              "terminations", "truncations", "valid")}


def test_no_transition_crosses_an_autoreset() -> None:
    """Gymnasium's NEXT_STEP autoreset: the step after an episode's end returns the reset
    observation and ignores the action. Storing it as a transition (final state -> reset state)
    teaches Q a jump that never happens; every stored (s, s') must follow CartPole's physics."""
    trainer = _collecting()
    for _ in range(3):
        trainer.step()
    stored = _stored(trainer)
    valid = stored["valid"]
    s, s2 = stored["states"], stored["next_states"]
    euler = np.abs(s2[..., 0] - s[..., 0] - TAU * s[..., 1]) < 1e-5
    assert euler[valid].all(), "a stored transition does not follow the dynamics"
    assert not euler[~valid].any()  # the reset steps are exactly the non-physical ones
    ended = stored["terminations"] | stored["truncations"]
    assert ended.sum() >= 8
    # the step after every episode end is a reset step, and only those are invalid
    assert valid[0].all()
    np.testing.assert_array_equal(~valid[1:], (ended & valid)[:-1])
    assert trainer.env_steps == int(valid.sum()) and len(trainer.buffer) == trainer.env_steps
    trainer.close()


def test_time_limit_is_a_truncation_that_bootstraps_from_the_final_state() -> None:
    """CleanRL's bug: a time-limit truncation stored as a termination. With a 10-step limit the
    sampled transitions that end an episode by the clock carry term = 0 and s' = the true final
    observation (not the reset one)."""
    trainer = _collecting(n_step=1)
    for _ in range(2):
        trainer.step()
    stored = _stored(trainer)
    # truncated by the clock alone (a pole falling at the limit is terminated too: term wins)
    truncated = stored["truncations"] & ~stored["terminations"] & stored["valid"]
    assert truncated.any()
    s, s2 = stored["states"][truncated], stored["next_states"][truncated]
    np.testing.assert_allclose(s2[:, 2], s[:, 2] + TAU * s[:, 3], atol=1e-5)
    batch = trainer.buffer.sample(len(trainer.buffer), np.random.default_rng(0))
    at_limit = np.isin(batch["next_states"][:, 0], s2[:, 0])
    assert at_limit.any() and not batch["terminations"][at_limit].any()
    assert np.all(batch["discounts"][at_limit] == trainer.settings.gamma)
    trainer.close()


def test_epsilon_decays_over_env_steps_as_a_share_of_the_budget() -> None:
    """eps falls linearly with env steps (all environments counted) over exploration_fraction
    of total_steps, then stays at epsilon_final."""
    settings = make_dqn_settings(num_envs=4, hidden_dim=8, exploration_fraction=0.1,
                                 epsilon_start=1.0, epsilon_final=0.05)
    trainer = DQNTrainer("CartPole-v1", "torch", settings, seed=0, total_steps=20_000)
    for steps, expected in ((0, 1.0), (1000, 0.525), (2000, 0.05), (15_000, 0.05)):
        trainer.env_steps = steps
        assert trainer.epsilon() == pytest.approx(expected)
    trainer.close()


def test_target_syncs_every_target_update_interval_gradient_steps() -> None:
    """theta_target <- theta after every ``target_update_interval`` gradient steps, counted
    across training phases: never more often, never less."""
    trainer = _collecting(learning_starts=32, batch_size=32, train_freq=16, gradient_steps=3,
                          target_update_interval=4)
    synced_at = []
    for _ in range(6):
        trainer.step()
        params = trainer.params()
        same = all(np.array_equal(params[k], params["q_target." + k[2:]])
                   for k in params if k.startswith("q."))
        synced_at.append((trainer.gradient_steps, same))
    # 3 gradient steps per phase: syncs after steps 4, 8, 12, 16 land inside phases, so the
    # target equals the online net at a phase's end only when the count is a multiple of 4
    assert synced_at == [(g, g % 4 == 0) for g, _ in synced_at]
    assert [g for g, _ in synced_at] == [3, 6, 9, 12, 15, 18]
    trainer.close()


@pytest.mark.parametrize("name", ["torch", "tf"])
def test_update_many_equals_one_update_per_batch(backends, name) -> None:
    """The trainer's chunked update (one backend call for G gradient steps) is G updates."""
    from duetrl.core.initializers import cast_params
    from duetrl.core.reference.dqn import init_q_params
    from duetrl.core.rl.replay import ReplayBuffer
    from duetrl.core.tolerances import assert_close

    module = __import__(f"duetrl.backends.{name}.dqn", fromlist=["DQNAgent"])
    params = cast_params(init_q_params(4, 16, 2, seed=2), "float64")
    agents = [module.DQNAgent(4, 2, 16, True, 10.0, "float64") for _ in range(2)]
    for agent in agents:
        backends[name].import_params(agent, params)
    rng = np.random.default_rng(0)
    buffer = ReplayBuffer(50, 2, (4,), n_step=2, gamma=0.9, batch_size=8)
    for _ in range(50):
        buffer.add(rng.normal(size=(2, 4)), rng.integers(0, 2, 2), rng.normal(size=2),
                   rng.normal(size=(2, 4)), rng.random(2) < 0.1, rng.random(2) < 0.1)
    batches = buffer.sample_many(5, 8, np.random.default_rng(1))
    assert batches["states"].shape == (5, 8, 4)
    many = agents[0].update_many(batches, 1e-2)
    for i in range(5):
        one = agents[1].update({k: v[i] for k, v in batches.items()}, 1e-2)
    assert_close(many["loss"], one["loss"], "float64", f"{name} last loss")
    exported = [backends[name].export_params(agent) for agent in agents]
    for key in exported[0]:
        assert_close(exported[0][key], exported[1][key], "float64", f"{name} {key}")
