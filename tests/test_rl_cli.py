"""``duetrl train`` / ``compare`` end to end, and every kind of bad input gets one clear line."""

from __future__ import annotations

import json
import re

import gymnasium as gym
import numpy as np
import pytest

from duetrl.core.cli import main
from duetrl.core.envs import IdentityEnv


class NaNRewardEnv(IdentityEnv):
    """The identity task, except that the 40th step pays NaN."""

    def reset(self, *, seed=None, options=None):
        self.steps = getattr(self, "steps", 0)
        return super().reset(seed=seed, options=options)

    def step(self, action):
        self.steps += 1
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, (float("nan") if self.steps == 40 else reward), terminated, truncated, info


class MultiBinaryEnv(IdentityEnv):
    def __init__(self):
        super().__init__()
        self.action_space = gym.spaces.MultiBinary(2)


for env_id, entry in [("duetrl-test/NaNReward-v0", NaNRewardEnv),
                      ("duetrl-test/MultiBinary-v0", MultiBinaryEnv)]:
    if env_id not in gym.registry:
        gym.register(env_id, entry_point=entry, max_episode_steps=16)

FAST = ["--num-envs", "2", "--hidden-dim", "8", "--quiet"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_train_writes_log_curve_checkpoint_and_json(tmp_path, capsys, backend):
    out = tmp_path / "run"
    code, stdout, _ = run(capsys, "train", "ppo", "--env", "duetrl/Identity-v0", "--backend",
                          backend.NAME, "--total-steps", "640", "--num-steps", "16",
                          "--out", str(out), "--json", *FAST)
    assert code == 0
    summary = json.loads(stdout)
    assert summary["env_steps"] == 640 and summary["backend"] == backend.NAME
    assert {"solved", "episodes", "wall_s", "final_mean_return"} <= set(summary)
    for name in ("log.csv", "curve.png", "checkpoint.safetensors", "summary.json"):
        assert (out / name).is_file(), name
    # --resume continues from the checkpoint: the step counter goes on from 640
    code, stdout, _ = run(capsys, "train", "ppo", "--env", "duetrl/Identity-v0", "--backend",
                          backend.NAME, "--total-steps", "960", "--num-steps", "16", "--out",
                          str(out), "--resume", "--json", *FAST)
    assert code == 0 and json.loads(stdout)["env_steps"] == 960
    assert len((out / "log.csv").read_text().strip().splitlines()) == 1 + 960 // 32


def test_checkpoint_from_another_algorithm_or_shape_is_refused(tmp_path, capsys):
    out = str(tmp_path / "run")
    base = ["--env", "duetrl/Identity-v0", "--total-steps", "64", "--out", out]
    assert run(capsys, "train", "reinforce", *base, *FAST)[0] == 0
    code, _, err = run(capsys, "train", "ppo", *base, "--resume", *FAST)
    assert code == 2 and "written by algorithm 'reinforce', expected 'ppo'" in err
    code, _, err = run(capsys, "train", "reinforce", *base, "--resume", "--num-envs", "2",
                       "--hidden-dim", "16", "--quiet")
    assert code == 2 and "parameter 'policy.fc1.kernel' has shape (4, 8), expected (4, 16)" in err


@pytest.mark.parametrize("argv,message", [
    (["--env", "NoSuchEnv-v9"], "env: unknown environment id 'NoSuchEnv-v9'"),
    (["--env", "duetrl-test/MultiBinary-v0"], "env: ppo handles Discrete or 1-D Box action"),
    (["--gamma", "1.5"], "gamma: expected a number in [0, 1], got 1.5"),
    (["--gae-lambda", "-0.5"], "gae_lambda: expected a number in [0, 1], got -0.5"),
])
def test_bad_input_is_one_clear_line(tmp_path, capsys, argv, message):
    code, _, err = run(capsys, "train", "ppo", "--out", str(tmp_path), *FAST, *argv)
    assert code == 2
    assert err.startswith("duetrl: error: ") and message in err and err.count("\n") == 1


@pytest.mark.parametrize("command", [["train", "ppo"], ["train", "dqn"], ["compare", "ppo"]])
def test_an_unknown_backend_is_refused_by_the_shared_flag(tmp_path, capsys, command):
    """--backend is cli/flags.add_run_flags' (choices torch, tf): argparse names the choices."""
    argv = [*command, "--backend", "jax", "--out", str(tmp_path), "--quiet"]
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2
    if command[0] == "train":
        assert "argument --backend: invalid choice: 'jax'" in err and "torch" in err
    else:  # compare runs both backends: it has no --backend
        assert "unrecognized arguments: --backend jax" in err


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = run(capsys, "train", "ppo", "--env", "duetrl-test/NaNReward-v0",
                       "--num-steps", "8", "--checkpoint-every", "1", "--out", str(out), *FAST)
    assert code == 2
    failed = int(re.search(r"loss: became nan at update (\d+) \(env step \d+\)", err).group(1))
    assert f"(update {failed - 1}) is kept" in err
    from duetrl.core.checkpoint import read_file

    tensors, metadata = read_file(out / "checkpoint.safetensors")
    assert metadata["updates"] == failed - 1
    assert all(np.all(np.isfinite(v)) for v in tensors.values())


def test_compare_prints_both_backends_and_saves_one_plot(tmp_path, capsys):
    code, stdout, _ = run(capsys, "compare", "reinforce", "--env", "duetrl/Identity-v0",
                          "--total-steps", "320", "--out", str(tmp_path), "--json", *FAST)
    assert code == 0
    results = json.loads(stdout)
    assert set(results["backends"]) == {"torch", "tf"}
    assert results["max_param_diff"] < 1e-4  # same start, same noise, a few float32 updates
    assert results["backends"]["torch"]["env_steps"] == results["backends"]["tf"]["env_steps"]
    assert (tmp_path / "compare-reinforce-duetrl_Identity-v0.png").is_file()


def test_ctrl_c_stops_after_the_update_and_leaves_a_usable_checkpoint(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    command = [sys.executable, "-m", "duetrl", "train", "ppo", "--env", "CartPole-v1",
               "--total-steps", "100000000", "--out", str(out), "--quiet", "--num-envs", "2"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env={**os.environ, "DUETRL_QUICK": "1"})
    deadline = time.time() + 90
    while time.time() < deadline and process.poll() is None:  # until a few updates are logged
        log = out / "log.csv"
        if log.is_file() and len(log.read_text().splitlines()) > 3:
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    from duetrl.core.checkpoint import read_file

    tensors, metadata = read_file(out / "checkpoint.safetensors")
    assert metadata["updates"] >= 3 and metadata["algorithm"] == "ppo"
    assert json.loads((out / "summary.json").read_text())["interrupted"] is True
