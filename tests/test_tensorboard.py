"""``--tensorboard``: the same tags at the same steps for both backends, equal to log.csv, and a
resumed run that TensorBoard shows without a doubled or missing point."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from duetrl.core.cli import main
from duetrl.core.rlhf.train import RLHFSettings, train
from duetrl.core.tensorboard import ScalarWriter, read_scalars, scalar_tag


def read_log(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "log.csv", newline="") as file:
        return list(csv.DictReader(file))


def test_tags_follow_cleanrl_layout() -> None:
    assert scalar_tag("loss") == "losses/loss"
    assert scalar_tag("value_loss") == "losses/value_loss"
    assert scalar_tag("kl") == "losses/kl"
    assert scalar_tag("my_new_loss") == "losses/my_new_loss"  # the suffix rule
    assert scalar_tag("update_ms") == "perf/update_ms"
    assert scalar_tag("tokens_ms") == "perf/tokens_ms"
    assert scalar_tag("mean_return") == "charts/mean_return"
    assert scalar_tag("losses") == "charts/losses"  # only whole names or suffixes count


def test_writer_skips_nan_and_text_and_names_a_missing_step(tmp_path: Path) -> None:
    with ScalarWriter(tmp_path, "env_steps") as writer:
        writer.write({"env_steps": 8, "mean_return": float("nan"), "loss": 0.5, "note": "x",
                      "episodes": 0})
        with pytest.raises(ValueError, match=r"'env_steps' entry .* got keys \['loss'\]"):
            writer.write({"loss": 1.0})
    assert read_scalars(tmp_path) == {"losses/loss": [(8, 0.5)], "charts/episodes": [(8, 0.0)]}


def test_disabled_writer_writes_no_file(tmp_path: Path) -> None:
    with ScalarWriter(tmp_path / "run", "update", enabled=False) as writer:
        writer.write({"update": 1, "loss": 1.0})
    assert not (tmp_path / "run").exists()
    with pytest.raises(FileNotFoundError, match="--tensorboard"):
        read_scalars(tmp_path)


def test_resume_hides_the_interrupted_tail_and_keeps_the_checkpoint_point(tmp_path) -> None:
    with ScalarWriter(tmp_path, "update") as first:
        for update in range(1, 6):  # the crashed run logged 1..5; its checkpoint covers 1..3
            first.write({"update": update, "loss": float(update)})
    with ScalarWriter(tmp_path, "update", resume_step=4) as resumed:
        for update in range(4, 7):
            resumed.write({"update": update, "loss": 10.0 * update})
    assert read_scalars(tmp_path)["losses/loss"] == [
        (1, 1.0), (2, 2.0), (3, 3.0), (4, 40.0), (5, 50.0), (6, 60.0)]


def train_ppo(run_dir: Path, backend: str, total_steps: int, resume: bool = False) -> None:
    argv = ["train", "ppo", "--env", "CartPole-v1", "--backend", backend, "--seed", "3",
            "--total-steps", str(total_steps), "--num-envs", "2", "--num-steps", "16",
            "--num-minibatches", "2", "--checkpoint-every", "1", "--out", str(run_dir),
            "--quiet", "--tensorboard"]
    assert main(argv + (["--resume"] if resume else [])) == 0


def test_torch_and_tf_log_the_same_tags_at_the_same_steps_as_log_csv(tmp_path: Path) -> None:
    scalars = {}
    for backend in ("torch", "tf"):
        train_ppo(tmp_path / backend, backend, total_steps=96)
        scalars[backend] = read_scalars(tmp_path / backend)
        rows = read_log(tmp_path / backend)
        assert len(rows) == 3  # 96 steps / (2 envs x 16 steps)
        for key in ("loss", "entropy", "learning_rate", "update"):
            points = scalars[backend][scalar_tag(key)]
            assert [step for step, _ in points] == [int(row["env_steps"]) for row in rows]
            for (_, value), row in zip(points, rows):
                assert math.isclose(value, float(row[key]), rel_tol=1e-6, abs_tol=1e-7)
    assert sorted(scalars["torch"]) == sorted(scalars["tf"])
    for tag in scalars["torch"]:
        assert [s for s, _ in scalars["torch"][tag]] == [s for s, _ in scalars["tf"][tag]], tag


def test_resumed_training_run_has_each_step_once(tmp_path: Path) -> None:
    train_ppo(tmp_path, "torch", total_steps=64)
    train_ppo(tmp_path, "torch", total_steps=128, resume=True)
    rows = read_log(tmp_path)
    losses = read_scalars(tmp_path)["losses/loss"]
    assert [step for step, _ in losses] == [int(row["env_steps"]) for row in rows] \
        == [32, 64, 96, 128]


def test_dqn_run_and_its_resume_log_each_step_once(tmp_path: Path) -> None:
    argv = ["train", "dqn", "--env", "CartPole-v1", "--seed", "0", "--checkpoint-every", "1",
            "--out", str(tmp_path), "--quiet", "--tensorboard"]
    assert main(argv + ["--total-steps", "600"]) == 0
    assert main(argv + ["--total-steps", "1200", "--resume"]) == 0
    rows = read_log(tmp_path)
    steps = [step for step, _ in read_scalars(tmp_path)["charts/epsilon"]]
    assert steps == [int(row["env_steps"]) for row in rows]
    assert len(set(steps)) == len(steps) and steps[-1] >= 1200


def test_rlhf_train_and_its_resume_log_each_update_once(tmp_path: Path, backends) -> None:
    settings = RLHFSettings(algo="rloo", reference="uniform", updates=2, seed=0, beta=0.01,
                            checkpoint_every=1)
    train(backends["torch"], settings, tmp_path, progress=False, tensorboard=True)
    settings = RLHFSettings(algo="rloo", reference="uniform", updates=4, seed=0, beta=0.01,
                            checkpoint_every=1)
    train(backends["torch"], settings, tmp_path, resume=True, progress=False, tensorboard=True)
    scalars = read_scalars(tmp_path)
    assert [step for step, _ in scalars["charts/reward"]] == [1, 2, 3, 4]
    assert {"losses/loss", "losses/kl", "losses/entropy"} <= set(scalars)


def test_tensorboard_itself_reads_what_read_scalars_reads(tmp_path: Path) -> None:
    """The viewer's own loader (with its purge rule) agrees with read_scalars point for point."""
    accumulator_module = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator")
    with ScalarWriter(tmp_path, "update") as first:
        for update in range(1, 5):
            first.write({"update": update, "loss": float(update), "reward": -1.0})
    with ScalarWriter(tmp_path, "update", resume_step=3) as resumed:
        resumed.write({"update": 3, "loss": 30.0, "reward": 1.0})
    accumulator = accumulator_module.EventAccumulator(str(tmp_path))
    accumulator.Reload()
    for tag, points in read_scalars(tmp_path).items():
        seen = [(event.step, event.value) for event in accumulator.Scalars(tag)]
        assert seen == points, tag
    assert sorted(accumulator.Tags()["scalars"]) == ["charts/reward", "losses/loss"]
