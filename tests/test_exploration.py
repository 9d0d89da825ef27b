"""core/rl/exploration.py: the corridor, the greedy walk, the runners' rows and their CIs."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from duetrl.core.rl import exploration as ex


def test_the_corridor_pays_near_and_far_and_keeps_its_cell() -> None:
    env = ex.SparseChain(n=5)
    observation, _ = env.reset(seed=0)
    assert observation.tolist() == [0, 1, 0, 0, 0] and env.observation_space.contains(observation)
    assert env.step(0)[1:4] == (0.1, True, False)  # one step left: the near end
    env.reset()
    for _ in range(2):  # right, right: cells 2, 3, nothing yet
        observation, reward, terminated, truncated, _ = env.step(1)
        assert (reward, terminated, truncated) == (0.0, False, False)
    assert observation.tolist() == [0, 0, 0, 1, 0]
    assert env.step(1)[1:3] == (1.0, True)  # cell 4 = n - 1: the far end
    env.reset()
    env.step(1)
    assert env.step(0)[0].tolist() == [0, 1, 0, 0, 0]  # back left, not terminated
    with pytest.raises(ValueError, match="n: expected a corridor of at least 3"):
        ex.SparseChain(n=2)


def test_the_corridor_is_registered_with_its_time_limit() -> None:
    from gymnasium.utils.env_checker import check_env

    check_env(gym.make(ex.CHAIN_ID).unwrapped)  # Gymnasium's API checks (seeding, spaces)
    env = gym.make(ex.CHAIN_ID)
    env.reset(seed=0)
    env.step(1)
    steps = 1
    truncated = terminated = False
    while not (truncated or terminated):  # right, left, right, ...: never ends by itself
        _, _, terminated, truncated, _ = env.step(steps % 2 == 0)
        steps += 1
    assert truncated and not terminated and steps == ex.CHAIN_STEPS


def test_greedy_chain_return_walks_the_argmax() -> None:
    n = ex.CHAIN_LENGTH
    right = np.tile([0.0, 1.0], (n, 1))
    assert ex.greedy_chain_return(right) == 1.0
    assert ex.greedy_chain_return(right[:, ::-1]) == pytest.approx(ex.NEAR_REWARD)
    loop = right.copy()
    loop[3] = [1.0, 0.0]  # cell 2 -> 3 -> back to 2 -> ...: never ends
    assert ex.greedy_chain_return(loop) == 0.0
    tie = np.zeros((n, 2))  # a tie goes left (the first action, as argmax)
    assert ex.greedy_chain_return(tie) == pytest.approx(ex.NEAR_REWARD)
    with pytest.raises(ValueError, match=r"q_or_logits: expected scores of shape"):
        ex.greedy_chain_return(np.zeros((n, 3)))


def test_bad_settings_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="schedules: expected names"):
        ex.run_dqn_epsilon("torch", ["fixed 2.0"], [0], 10)
    with pytest.raises(ValueError, match="schedules: expected names"):
        ex.run_dqn_epsilon("torch", [], [0], 10)
    with pytest.raises(ValueError, match="seeds: expected at least one"):
        ex.run_dqn_epsilon("torch", ["fixed 1.0"], [], 10)
    with pytest.raises(ValueError, match="coefficients: expected entropy weights >= 0"):
        ex.run_ppo_entropy("torch", [-0.01], [0], 10)
    with pytest.raises(ValueError, match="temperature: expected a number > 0"):
        ex.SampleAtTemperature(object(), 0.0)
    with pytest.raises(ValueError, match="temperatures: expected at least one"):
        ex.run_lm_temperature(object(), [], [0])


def test_epsilon_schedules_are_the_dqn_settings_they_name() -> None:
    from duetrl.core.rl.dqn import linear_epsilon, make_dqn_settings

    at = {}
    for name, fields in ex.EPSILON_SCHEDULES.items():
        s = make_dqn_settings(**ex.DQN_CHAIN, **fields)
        decay = int(s.exploration_fraction * 1000)
        at[name] = [linear_epsilon(t, s.epsilon_start, s.epsilon_final, decay)
                    for t in (0, 250, 999)]
    assert at == {"fixed 1.0": [1.0, 1.0, 1.0],
                  "1.0 -> 0.05": pytest.approx([1.0, 0.525, 0.05]),
                  "fixed 0.05": [0.05, 0.05, 0.05], "0 (greedy)": [0.0, 0.0, 0.0]}


def test_sample_at_temperature_changes_only_generate() -> None:
    calls = []

    class Backend:
        NAME = "fake"

        def generate(self, model, prompt, n, **sampling):
            calls.append(sampling)
            return "generated"

    tempered = ex.SampleAtTemperature(Backend(), 1.5)
    assert tempered.NAME == "fake"
    assert tempered.generate(None, np.zeros((1, 2)), 3, seed=7) == "generated"
    assert calls == [{"temperature": 1.5, "seed": 7}]


def test_summarise_groups_by_setting_in_order_with_cis() -> None:
    rows = [{"setting": "b", "seed": s, "x": float(s)} for s in range(4)]
    rows += [{"setting": "a", "seed": 0, "x": 5.0}]
    stats = ex.summarise(rows, "x", reps=200)
    assert list(stats) == ["b", "a"]
    assert stats["b"]["runs"] == 4 and stats["b"]["mean"] == pytest.approx(1.5)
    low, high = stats["b"]["mean_ci"]
    assert 0.0 <= low < 1.5 < high <= 3.0
    assert stats["a"]["mean"] == 5.0 and stats["a"]["mean_ci"] is None  # one run: no CI
    with pytest.raises(ValueError, match="metric: expected a key of every row"):
        ex.summarise(rows, "y")


def test_dqn_learns_the_far_end_only_when_it_explores() -> None:
    # a learning test, seeded: 2000 env steps on seed 0 (measured: the far end for eps = 1 on
    # seeds 0 and 4 of 0-4 at this budget; never for eps = 0)
    rows = ex.run_dqn_epsilon("torch", ["fixed 1.0", "0 (greedy)"], [0], 2000)
    assert [(r["setting"], r["seed"]) for r in rows] == [("fixed 1.0", 0), ("0 (greedy)", 0)]
    explorer, greedy = rows
    assert explorer["greedy_return"] == 1.0  # off-policy: learnt from a random walk
    assert 0.0 < explorer["far_end_share"] < 0.1 and explorer["train_return"] < 0.2
    # never exploring from these initial weights: no episode reaches the far end (each ends
    # at the near end, or is cut while the greedy walk loops: return 0)
    assert greedy["greedy_return"] == pytest.approx(ex.NEAR_REWARD)
    assert greedy["far_end_share"] == 0.0 and greedy["train_return"] <= ex.NEAR_REWARD
    assert explorer["episodes"] < greedy["episodes"]  # random walks are longer


def test_ppo_with_raw_advantages_finds_the_far_end_only_with_an_entropy_bonus() -> None:
    # a learning test, seeded: seed 0, 8192 env steps, advantages not normalised (measured:
    # c_H = 0 ends at the near end on seeds 0, 3 and 4; c_H = 0.1 at the far end on 0 and 3)
    rows = ex.run_ppo_entropy("torch", [0.0, 0.1], [0], 8192, normalize_advantages=False)
    assert [(r["setting"], r["seed"]) for r in rows] == [(0.0, 0), (0.1, 0)]
    assert rows[0]["greedy_return"] == pytest.approx(ex.NEAR_REWARD)
    assert rows[1]["greedy_return"] == 1.0
    assert rows[0]["far_end_share"] < rows[1]["far_end_share"]
    with pytest.raises(ValueError, match="settings: ppo has no setting"):
        ex.run_ppo_entropy("torch", [0.0], [0], 64, normalise_advantages=False)


def test_lm_rows_one_per_temperature_and_seed() -> None:
    from duetrl.core.backend import load_backend

    rows = ex.run_lm_temperature(load_backend("torch"), [0.5, 2.0], [1], updates=1)
    assert [(r["setting"], r["seed"]) for r in rows] == [(0.5, 1), (2.0, 1)]
    for row in rows:
        assert 0.0 <= row["reward"] <= 1.0 and 0.0 <= row["train_reward"] <= 1.0
        assert 0.0 < row["distinct"] <= 1.0 and 0.0 <= row["success"] <= 1.0
