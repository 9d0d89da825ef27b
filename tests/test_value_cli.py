"""``duetrl solve``, ``duetrl bandit``, ``duetrl train dqn`` and ``duetrl compare dqn``."""

from __future__ import annotations

import json

import pytest

from duetrl.core.cli import main


def test_solve_prints_the_grid_and_saves_arrows(tmp_path, capsys) -> None:
    assert main(["solve", "value-iteration", "--env", "FrozenLake-v1", "--map-size", "8",
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "V*:" in out and "pi*:" in out and "Bellman residual" in out
    assert list(tmp_path.glob("value-iteration-FrozenLake-v1-8x8.png"))
    assert main(["solve", "policy-iteration", "--env", "FrozenLake-v1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["value"][0] == pytest.approx(0.5420259320)


def test_bandit_saves_the_regret_plot(tmp_path, capsys) -> None:
    assert main(["bandit", "--horizon", "200", "--runs", "20", "--out", str(tmp_path),
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["regret"]) >= {"UCB1", "Thompson", "eps-greedy 0.1"}
    assert (tmp_path / "bandit-bernoulli.png").is_file()


@pytest.mark.parametrize("argv, message", [
    (["solve", "value-iteration", "--env", "CartPole-v1"], "env: 'CartPole-v1' exposes no transition table"),
    (["bandit", "--epsilon", "1.5"], r"epsilon: expected a number in [0, 1], got 1.5"),
    (["bandit", "--means", "0.5"], "means: expected k >= 2 arm means"),
    (["train", "dqn", "--env", "Pendulum-v1"], "env: DQN needs a discrete action space"),
    (["train", "dqn", "--buffer-size", "4", "--batch-size", "64"], "buffer_size: 4 steps x 4 envs"),
    (["train", "dqn", "--epsilon-final", "2"], "epsilon_final: expected an exploration rate in [0, 1]"),
])
def test_bad_input_is_one_clear_line(argv, message, capsys, tmp_path) -> None:
    assert main(argv + (["--out", str(tmp_path)] if argv[0] == "train" else [])) == 2
    assert message in capsys.readouterr().err


def test_train_dqn_writes_a_run_and_resumes(tmp_path, capsys) -> None:
    argv = ["train", "dqn", "--env", "CartPole-v1", "--total-steps", "600", "--quiet", "--json",
            "--learning-starts", "256", "--gradient-steps", "4", "--hidden-dim", "16",
            "--out", str(tmp_path), "--checkpoint-every", "1"]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    for key in ("log", "plot", "checkpoint"):
        assert (tmp_path / first[key].split("/")[-1]).is_file()
    assert main(argv[:5] + ["1200"] + argv[6:] + ["--resume"]) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert resumed["env_steps"] > first["env_steps"] and resumed["gradient_steps"] > first["gradient_steps"]


def test_compare_dqn_runs_both_backends(tmp_path, capsys) -> None:
    assert main(["compare", "dqn", "--total-steps", "600", "--quiet", "--json",
                 "--learning-starts", "256", "--gradient-steps", "4", "--hidden-dim", "16",
                 "--dtype", "float64", "--out", str(tmp_path)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["backends"]) == {"torch", "tf"}
    assert result["max_param_diff"] < 1e-10  # float64, same weights, coins and samples
