"""``duetrl rlhf pretrain|train|sample`` and ``duetrl compare rlhf`` on tiny settings."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from duetrl.core.cli import main

SUMMARY_KEYS = {"mean_reward", "kl", "updates", "wall_s", "samples_per_s", "checkpoint", "log",
                "plot", "initial_reward", "entropy", "success_rate"}


def run_json(capsys, argv: list[str]) -> dict:
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rlhf_cli") / "reference.safetensors"
    assert main(["rlhf", "pretrain", "--task", "sort-digits", "--steps", "60", "--quiet",
                 "--out", str(path)]) == 0
    return path


def _log_rows(path: Path) -> list[dict]:
    with open(path) as f:
        return [{k: v for k, v in row.items() if k != "wall_s"} for row in csv.DictReader(f)]


def test_pretrain_json(tmp_path, capsys) -> None:
    out = tmp_path / "ref.safetensors"
    figures = run_json(capsys, ["rlhf", "pretrain", "--task", "format", "--steps", "20",
                                "--quiet", "--json", "--out", str(out)])
    assert {"val_loss", "reward", "success_rate", "stopped", "checkpoint", "seconds"} <= set(figures)
    assert out.is_file()


def test_train_json_and_resume_continues(tmp_path, capsys, reference) -> None:
    common = ["rlhf", "train", "--task", "sort-digits", "--algo", "rloo", "--backend", "torch",
              "--beta", "0.05", "--group-size", "4", "--prompts", "4", "--quiet", "--json",
              "--reference-checkpoint", str(reference)]
    first = run_json(capsys, [*common, "--updates", "3", "--out", str(tmp_path / "a")])
    assert SUMMARY_KEYS <= set(first) and first["updates"] == 3
    for key in ("checkpoint", "log", "plot"):
        assert Path(first[key]).is_file()
    resumed = run_json(capsys, [*common, "--updates", "5", "--out", str(tmp_path / "a"),
                                "--resume"])
    assert resumed["updates"] == 5 and len(_log_rows(Path(resumed["log"]))) == 5
    straight = run_json(capsys, [*common, "--updates", "5", "--out", str(tmp_path / "b")])
    # the resumed run is the uninterrupted one: same prompts, noise, weights and Adam state
    assert _log_rows(Path(resumed["log"])) == _log_rows(Path(straight["log"]))
    # another algorithm cannot resume this checkpoint
    args = [*common, "--updates", "6", "--out", str(tmp_path / "a"), "--resume"]
    args[args.index("rloo")] = "reinforce"
    assert main(args) == 2
    assert "algo" in capsys.readouterr().err


def test_uniform_reference_reports_the_exact_optimum(tmp_path, capsys) -> None:
    summary = run_json(capsys, ["rlhf", "train", "--reference", "uniform", "--beta", "0.1",
                                "--updates", "2", "--quiet", "--json", "--out", str(tmp_path)])
    assert summary["exact"]["mean_reward"] == pytest.approx(0.69656319, abs=1e-6)
    assert summary["initial_reward"] == pytest.approx(0.55, abs=0.08)


def test_sample_shows_completions_with_rewards(capsys, reference) -> None:
    result = run_json(capsys, ["rlhf", "sample", "--checkpoint", str(reference), "--num", "3",
                               "--json"])
    assert len(result["samples"]) == 3
    assert {"prompt", "completion", "reward", "success"} <= set(result["samples"][0])


def test_compare_runs_both_backends_in_lockstep(capsys, reference) -> None:
    result = run_json(capsys, ["compare", "rlhf", "--updates", "2", "--group-size", "4",
                               "--prompts", "2", "--json", "--reference-checkpoint",
                               str(reference)])
    assert result["same_tokens_updates"] == 2
    assert result["max_param_diff"] < 1e-3
    assert set(result["summary"]) == {"torch", "tf"}


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--algo", "grpo", "--group-size", "1"], "group_size: expected an int >= 2"),
        (["--beta", "-0.5"], "beta: expected a finite float >= 0"),
        (["--task", "poetry"], "task: expected one of"),
        (["--reference-checkpoint", "no/such/file.safetensors"], "--reference-checkpoint: no file"),
    ],
)
def test_bad_flags_give_one_clear_line(capsys, flags: list[str], message: str) -> None:
    assert main(["rlhf", "train", "--quiet", *flags]) == 2
    assert message in capsys.readouterr().err
