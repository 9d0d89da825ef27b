"""The run loop on its own (core/run/loop.py), with a tiny NumPy trainer whose every number is
known: noisy gradient descent on f(w) = |w - 3|^2 / 2. What holds here holds for every trainer
the loop runs; tests/test_run_trainers.py checks the same contract on the real ones."""

from __future__ import annotations

import csv
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from duetrl.core.checkpoint import Checkpoint, CheckpointError
from duetrl.core.run import BASE_KEYS, Diverged, compare, max_param_difference, run
from duetrl.core.run.loop import read_log

KIND = "duetrl.test_toy"


class Toy:
    """w <- w - lr (w - 3 + noise_u), noise drawn from (seed, update): resumable exactly."""

    kind, x_key = KIND, "update"

    def __init__(self, total: int = 10, seed: int = 0, backend: str = "numpy",
                 lr: float = 0.3, explode_at: int | None = None, interrupt_at: int | None = None):
        self.total, self.seed, self.backend_name, self.lr = total, seed, backend, lr
        self.description = f"toy {backend}"
        self.explode_at, self.interrupt_at = explode_at, interrupt_at
        self.w = np.zeros(2)
        self.updates = 0

    def progress(self) -> tuple[int, int]:
        return self.updates, self.total

    def finished(self) -> bool:
        return self.updates >= self.total

    def step(self) -> dict:
        noise = np.random.default_rng((self.seed, self.updates)).normal(0, 0.1, 2)
        self.w = self.w - self.lr * (self.w - 3.0 + noise)
        self.updates += 1
        loss = float(0.5 * np.sum((self.w - 3.0) ** 2))
        if self.updates == self.explode_at:
            loss = float("nan")
        if self.updates == self.interrupt_at:
            os.kill(os.getpid(), signal.SIGINT)  # as a user's Ctrl-C during this update
        if not np.isfinite(loss):
            raise FloatingPointError(f"loss: became {loss} at update {self.updates}")
        return {"update": self.updates, "loss": loss, "w0": float(self.w[0])}

    def state(self) -> Checkpoint:
        return Checkpoint(KIND, {"params": {"w": self.w.copy()}}, {"updates": self.updates})

    def load_state(self, checkpoint: Checkpoint, source: str) -> None:
        if checkpoint.tensors["params"]["w"].shape != self.w.shape:
            raise CheckpointError(f"{source}: w has another shape")
        self.w = checkpoint.tensors["params"]["w"].copy()
        self.updates = int(checkpoint.metadata["updates"])

    def evaluate(self) -> dict:
        return {"final_w0": float(self.w[0])}

    def plot(self, run_dir: Path) -> Path | None:
        return None


def test_a_run_writes_its_folder_with_the_base_summary_keys(tmp_path) -> None:
    summary = run(Toy(total=5), tmp_path / "r", quiet=True)
    assert list(summary)[: len(BASE_KEYS)] == list(BASE_KEYS)
    assert summary["updates"] == 5 and summary["interrupted"] is False
    assert json.loads((tmp_path / "r" / "summary.json").read_text()) == summary
    rows = read_log(tmp_path / "r" / "log.csv")
    assert [int(r["update"]) for r in rows] == [1, 2, 3, 4, 5]
    assert (tmp_path / "r" / "checkpoint.safetensors").is_file()


def test_resume_equals_the_uninterrupted_run_and_logs_each_update_once(tmp_path) -> None:
    straight = Toy(total=8)
    run(straight, tmp_path / "a", quiet=True)
    first = Toy(total=8, interrupt_at=3)
    assert run(first, tmp_path / "b", quiet=True, checkpoint_every=2)["interrupted"] is True
    # a killed run may have logged past its last checkpoint: pretend update 4 was logged too
    with open(tmp_path / "b" / "log.csv", "a", newline="") as f:
        csv.writer(f).writerow([4, "0.5", "1.0"])
    resumed = Toy(total=8)
    summary = run(resumed, tmp_path / "b", resume=True, quiet=True)
    assert summary["updates"] == 8 and summary["interrupted"] is False
    np.testing.assert_array_equal(resumed.w, straight.w)
    assert read_log(tmp_path / "b" / "log.csv") == read_log(tmp_path / "a" / "log.csv")


def test_ctrl_c_finishes_the_update_saves_and_stops(tmp_path) -> None:
    summary = run(Toy(total=50, interrupt_at=4), tmp_path, quiet=True, checkpoint_every=100)
    assert summary["interrupted"] is True and summary["updates"] == 4
    again = Toy(total=50)
    run(again, tmp_path, resume=True, quiet=True)
    assert again.updates == 50  # the checkpoint written on Ctrl-C was a usable one


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path) -> None:
    with pytest.raises(Diverged, match=r"update 5.*update 4\) is kept"):
        run(Toy(total=10, explode_at=5), tmp_path, quiet=True, checkpoint_every=2)
    assert issubclass(Diverged, ValueError) and issubclass(Diverged, FloatingPointError)
    kept = Toy()
    run(kept, tmp_path, resume=True, quiet=True)
    assert kept.updates == 10  # went on from update 4's checkpoint


def test_nan_before_any_checkpoint_says_none_was_written(tmp_path) -> None:
    with pytest.raises(Diverged, match="no checkpoint was written yet"):
        run(Toy(total=10, explode_at=1), tmp_path, quiet=True, checkpoint_every=3)


def test_checkpoint_cadence_is_every_n_updates(tmp_path, monkeypatch) -> None:
    saved = []
    import duetrl.core.run.loop as loop

    real = loop.save_checkpoint
    monkeypatch.setattr(loop, "save_checkpoint",
                        lambda path, ckpt: saved.append(ckpt.metadata["updates"]) or real(path, ckpt))
    run(Toy(total=7), tmp_path, quiet=True, checkpoint_every=3)
    assert saved == [3, 6, 7]  # every 3 updates, then the end


def test_resume_without_a_checkpoint_and_bad_cadence_are_clear_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="resume: no checkpoint at"):
        run(Toy(), tmp_path / "none", resume=True, quiet=True)
    with pytest.raises(ValueError, match="checkpoint_every: expected an int >= 0, got -1"):
        run(Toy(), tmp_path, checkpoint_every=-1, quiet=True)


def test_a_checkpoint_of_another_kind_is_refused(tmp_path) -> None:
    run(Toy(total=2), tmp_path, quiet=True)
    other = Toy()
    other.kind = "duetrl.other"
    with pytest.raises(CheckpointError, match="expected 'duetrl.other'"):
        run(other, tmp_path, resume=True, quiet=True)


def test_tensorboard_gets_each_update_once_across_a_resume(tmp_path) -> None:
    from duetrl.core.tensorboard import read_scalars

    run(Toy(total=6, interrupt_at=2), tmp_path, quiet=True, tensorboard=True)
    run(Toy(total=6), tmp_path, resume=True, quiet=True, tensorboard=True)
    steps = [step for step, _ in read_scalars(tmp_path)["losses/loss"]]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_compare_steps_both_and_measures_their_difference() -> None:
    same = compare({"torch": Toy(total=4, backend="torch"), "tf": Toy(total=4, backend="tf")},
                   lambda t: {"w": t.w}, tolerance=1e-12, quiet=True)
    assert same["max_param_diff"] == 0.0 and same["updates_within_tolerance"] == 4
    assert [r["update"] for r in same["rows"]] == [1, 2, 3, 4]
    assert same["backends"]["tf"]["final_w0"] == same["backends"]["torch"]["final_w0"]
    apart = compare({"torch": Toy(total=4, backend="torch"), "tf": Toy(total=4, seed=1)},
                    lambda t: {"w": t.w}, tolerance=1e-12, quiet=True)
    assert apart["max_param_diff"] > 0 and apart["updates_within_tolerance"] == 0


def test_max_param_difference_names_a_mismatch() -> None:
    assert max_param_difference({"a": np.array([1.0, 2.0])}, {"a": np.array([1.0, 2.5])}) == 0.5
    with pytest.raises(ValueError, match=r"\['b'\]"):
        max_param_difference({"a": np.zeros(1)}, {"a": np.zeros(1), "b": np.zeros(1)})
