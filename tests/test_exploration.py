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
    first_left = right.copy()
    first_left[1] = [1.0, 0.0]  # the walk starts in cell 1: one step left ends it at once
    assert ex.greedy_chain_return(first_left) == pytest.approx(ex.NEAR_REWARD)
    back_before_the_end = right.copy()
    back_before_the_end[n - 2] = [1.0, 0.0]  # n-3 -> n-2 -> n-3 -> ...: the end is n - 1
    assert ex.greedy_chain_return(back_before_the_end) == 0.0
    left_ends = right[:, ::-1].copy()
    left_ends[0] = [0.0, 1.0]  # cell 0 is an end: its scores are never read
    assert ex.greedy_chain_return(left_ends) == pytest.approx(ex.NEAR_REWARD)
    far_end_left = right.copy()
    far_end_left[n - 1] = [1.0, 0.0]  # the far end is an end: its scores are never read
    assert ex.greedy_chain_return(far_end_left) == 1.0
    seven = np.tile([0.0, 1.0], (7, 1))
    assert ex.greedy_chain_return(seven, n=7) == 1.0  # another length: its own far end
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


# ---- the runners' wiring, with stand-in trainers (fast: no network is trained) --------------

EPISODES = [(10, np.float32(0.1)), (30, np.float32(1.0)), (41, np.float32(0.0)),
            (60, np.float32(1.0))]  # near end, far end, cut, far end: float32 sums
# their mean return (0.1 + 1 + 0 + 1) / 4 = 0.525, taken in float64 (float32's 0.1 is
# 0.10000000149..., so 0.5250000003725...; a float32 mean would give 0.5249999762); 2 of 4 far
MEAN_RETURN = (float(np.float32(0.1)) + 2.0) / 4


class _StandIn:
    """Records how a trainer was made; each step is one env step; ends with EPISODES."""

    made: list = []

    def __init__(self, *args, seed=None, total_steps=None) -> None:
        self.args, self.seed, self.total_steps = args, seed, total_steps
        self.env_steps, self.episode_log = 0, list(EPISODES)
        type(self).made.append(self)

    def step(self) -> None:
        self.env_steps += 1


def test_dqn_rows_come_from_a_trainer_per_schedule_and_seed(monkeypatch) -> None:
    import duetrl.core.rl.dqn as dqn

    class Agent:
        def q_values(self, states):
            assert np.array_equal(states, np.eye(ex.CHAIN_LENGTH))  # one row per cell
            return np.tile([0.0, 1.0], (ex.CHAIN_LENGTH, 1))  # right everywhere: the far end

    class Trainer(_StandIn):
        made: list = []
        agent = Agent()

    monkeypatch.setattr(dqn, "DQNTrainer", Trainer)
    rows = ex.run_dqn_epsilon("torch", ["1.0 -> 0.05", "0 (greedy)"], [3, 4], 7)
    assert [(r["setting"], r["seed"]) for r in rows] == [
        ("1.0 -> 0.05", 3), ("1.0 -> 0.05", 4), ("0 (greedy)", 3), ("0 (greedy)", 4)]
    assert rows[0] == {"setting": "1.0 -> 0.05", "seed": 3,
                       "train_return": pytest.approx(MEAN_RETURN, rel=1e-12),
                       "far_end_share": 0.5, "episodes": 4, "greedy_return": 1.0}
    first = Trainer.made[0]
    assert first.args[:2] == (ex.CHAIN_ID, "torch") and (first.seed, first.total_steps) == (3, 7)
    assert first.args[2].epsilon_final == 0.05 and Trainer.made[2].args[2].epsilon_start == 0.0
    assert [t.env_steps for t in Trainer.made] == [7] * 4  # stepped until 7 env steps, no more
    ex.run_dqn_epsilon("torch", ["fixed 1.0"], [0])
    assert Trainer.made[-1].total_steps == 3000 == Trainer.made[-1].env_steps  # the default


def test_ppo_rows_come_from_a_trainer_per_coefficient_and_seed(monkeypatch) -> None:
    import duetrl.core.rl.train as rl_train
    from duetrl.core.reference.policy import init_agent_params

    params = init_agent_params("ppo", ex.CHAIN_LENGTH, 8, 2, False, 0)  # policy.fc1, ...
    for key in ("policy.fc2.kernel", "policy.fc2.bias"):
        params[key] = np.zeros_like(params[key])
    params["policy.fc2.bias"][0] = 1.0  # left everywhere: the near end

    class Backend:
        def export_params(self, agent):
            return params

    class Trainer(_StandIn):
        made: list = []
        backend, agent = Backend(), None

    monkeypatch.setattr(rl_train, "PolicyGradientTrainer", Trainer)
    rows = ex.run_ppo_entropy("tf", [0.0, 0.05], [1], 5, update_epochs=2)
    assert rows == [{"setting": c, "seed": 1, "train_return": pytest.approx(MEAN_RETURN),
                     "far_end_share": 0.5,
                     "episodes": 4, "greedy_return": pytest.approx(ex.NEAR_REWARD)}
                    for c in (0.0, 0.05)]
    settings = [t.args[3] for t in Trainer.made]
    assert [s.ent_coef for s in settings] == [0.0, 0.05] and settings[1].update_epochs == 2
    assert Trainer.made[1].args[:3] == ("ppo", ex.CHAIN_ID, "tf")
    assert [(t.seed, t.total_steps, t.env_steps) for t in Trainer.made] == [(1, 5, 5)] * 2
    ex.run_ppo_entropy("tf", [0.0], [0])
    assert Trainer.made[-1].total_steps == 8192 == Trainer.made[-1].env_steps  # the default
    with pytest.raises(ValueError, match="coefficients: expected entropy weights >= 0"):
        ex.run_ppo_entropy("tf", [], [0])
    with pytest.raises(ValueError, match="coefficients: expected entropy weights >= 0"):
        ex.run_ppo_entropy("tf", [0.1, float("nan")], [0])  # not >= 0 either


def test_episode_stats_with_no_episode_or_one() -> None:
    class Log:
        def __init__(self, episode_log) -> None:
            self.episode_log = episode_log

    assert ex._episode_stats(Log([])) == {"train_return": 0.0, "far_end_share": 0.0,
                                          "episodes": 0}
    assert ex._episode_stats(Log([(9, 1.0)])) == {"train_return": 1.0, "far_end_share": 1.0,
                                                  "episodes": 1}


def test_lm_rows_by_hand_with_a_stand_in_run(monkeypatch) -> None:
    import duetrl.core.rlhf.train as rlhf_train

    class Fresh:
        rewards = np.array([0.5, 1.0, 0.0, 0.5])
        completions = ["12", "12", "3", "45"]  # 3 distinct of 4
        success = np.array([True, True, False, False])

    class Run:
        made: list = []

        def __init__(self, backend, settings) -> None:
            self.backend, self.settings, self.sampled = backend, settings, None
            Run.made.append(self)

        def update(self, u):
            return {"reward": float(u)}, None  # update u pays u

        def sample(self, update, stream=0):
            self.sampled = (update, stream, self.backend)
            return Fresh()

    monkeypatch.setattr(rlhf_train, "RLHFRun", Run)
    backend = object()
    rows = ex.run_lm_temperature(backend, [0.5], [2], updates=12, beta=0.1)
    # the last 10 training rewards: 2, ..., 11, mean 6.5; the fresh batch: mean reward 0.5
    assert rows == [{"setting": 0.5, "seed": 2, "reward": 0.5, "train_reward": 6.5,
                     "distinct": 0.75, "success": 0.5}]
    run = Run.made[0]
    assert isinstance(run.backend, ex.SampleAtTemperature) is False  # handed back after training
    assert run.sampled == (12, 1, backend)  # a fresh batch: update 12, stream 1, temperature 1
    s = run.settings
    assert (s.beta, s.updates, s.seed, s.algo, s.prompts) == (0.1, 12, 2, "rloo", 8)
    ex.run_lm_temperature(backend, [2.0], [0])
    assert (Run.made[-1].settings.updates, Run.made[-1].settings.beta) == (60, 0.0)  # defaults


def test_summarise_by_its_defaults() -> None:
    from duetrl.core.scale.statistics import aggregate_statistics

    x = np.random.default_rng(3).normal(size=12)  # 12 distinct scores: every CI moves with
    rows = [{"setting": 1, "seed": s, "x": float(v)} for s, v in enumerate(x)]  # reps and seed
    expected = aggregate_statistics({"1": x}, 2000, 0)
    assert ex.summarise(rows, "x") == {1: expected["1"]}  # reps 2000, seed 0
    assert ex.summarise(rows, "x", reps=2001) != {1: expected["1"]}  # (the check can fail)
    with pytest.raises(ValueError, match=r"metric: expected a key of every row, one of \[\]"):
        ex.summarise([], "x")
    odd = [rows[0], {"setting": 1, "seed": 9, "y": 1.0}, {"setting": 1, "seed": 8, "z": 1.0}]
    with pytest.raises(ValueError, match=r"one of \['seed', 'setting', 'x'\], got 'x'"):
        ex.summarise(odd, "x")  # the keys named are the first row's
