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


# ---- the RLHF pipeline from the command line (core/cli/rlhf_sft.py) -------------------------


def test_sft_then_reward_model_then_rl_from_the_sft_checkpoint(tmp_path, capsys,
                                                                reference) -> None:
    """pretrain -> sft -> reward-model --sft-checkpoint -> train --sft-checkpoint --reward
    learned: each stage reads the one before, and RL's KL reference is the SFT model."""
    import numpy as np

    from duetrl.core.checkpoint import read_file

    sft = tmp_path / "sft.safetensors"
    summary = run_json(capsys, ["rlhf", "sft", "--reference-checkpoint", str(reference),
                                "--steps", "10", "--quiet", "--json", "--out", str(sft)])
    assert {"val_loss", "true_reward", "success", "checkpoint"} <= set(summary) and sft.is_file()
    rm = tmp_path / "rm.safetensors"
    figures = run_json(capsys, ["rlhf", "reward-model", "--sft-checkpoint", str(sft),
                                "--sft-pairs", "16", "--steps", "5", "--pairs", "32",
                                "--held-out", "32", "--quiet", "--json", "--out", str(rm)])
    assert figures["pairs"] > 32  # the SFT model's own pairs joined the 32 reference pairs
    rl = run_json(capsys, ["rlhf", "train", "--sft-checkpoint", str(sft), "--reward", "learned",
                           "--reward-model", str(rm), "--updates", "2", "--group-size", "4",
                           "--prompts", "2", "--quiet", "--json", "--out", str(tmp_path / "rl")])
    assert rl["updates"] == 2 and "mean_true_reward" in rl
    run_arrays, _ = read_file(rl["checkpoint"])
    sft_arrays, _ = read_file(sft)
    for key, value in sft_arrays.items():
        if key.startswith("params."):
            assert np.array_equal(run_arrays["reference." + key[len("params."):]], value)


def test_pipeline_command_prints_the_table(tmp_path, capsys) -> None:
    result = run_json(capsys, ["rlhf", "pipeline", "--pretrain-steps", "20", "--sft-steps",
                               "10", "--reward-steps", "5", "--reward-pairs", "32",
                               "--policy-pairs", "8", "--rl-updates", "2", "--eval-prompts",
                               "8", "--no-contrast", "--quiet", "--json", "--out",
                               str(tmp_path)])
    assert [r["stage"] for r in result["rows"]] == ["pretrained", "sft", "rl_learned"]
    assert Path(result["plot"]).is_file() and Path(result["checkpoints"]["sft"]).is_file()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--sft-checkpoint", "no/such.safetensors"], "--sft-checkpoint: no file"),
        (["train", "--sft-checkpoint", "REF"], "is no SFT checkpoint"),
        (["train", "--sft-checkpoint", "REF", "--reference-checkpoint", "REF"], "not both"),
        (["reward-model", "--sft-checkpoint", "BAD"], "--sft-checkpoint: checkpoint"),
        (["sft", "--task", "poetry"], "task: expected one of"),
        (["sft", "--reference-checkpoint", "no/such.safetensors"],
         "--reference-checkpoint: no file"),
        (["sft", "--reference-checkpoint", "BAD"], "--reference-checkpoint: checkpoint"),
        (["sft", "--task", "arithmetic", "--reference-checkpoint", "REF"],
         "--reference-checkpoint: reference: "),
        (["sft", "--steps", "0"], "steps: expected a positive int"),
        (["pipeline", "--algo", "dpo"], "algo: expected a reward-maximising"),
    ],
)
def test_bad_sft_flags_give_one_clear_line(tmp_path, capsys, reference, argv: list[str],
                                           message: str) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_text("not a checkpoint")
    argv = [{"REF": str(reference), "BAD": str(bad)}.get(a, a) for a in argv]
    assert main(["rlhf", *argv, "--quiet"]) == 2
    assert message in capsys.readouterr().err


def test_train_names_a_collapse_where_the_student_sees_it(tmp_path, monkeypatch, capsys):
    """`rlhf train` reads its own log and prints one warning line per sign of trouble (the
    stop token lost, a KL jump, the reward collapsed: core/rlhf/diagnostics.py), and none for a
    healthy run. The training itself is stood in for: the logs are the first defaults' grpo
    collapse on sort-digits and a healthy run."""
    import duetrl.core.cli.rlhf as cli
    import duetrl.core.rlhf.train as train_module

    collapsed = [(0.567, 0.04, 0.97), (0.545, 4.69, 0.03), (0.045, 21.61, 0.22)]
    healthy = [(0.56, 0.0, 0.97), (0.60, 0.3, 0.97), (0.70, 0.9, 0.98)]
    monkeypatch.setattr(cli, "reference_for", lambda *args: (None, None))
    for rows, expected in ((collapsed, ["update 2: only 3%", "update 3: KL jumped",
                                        "update 3: the reward collapsed"]), (healthy, [])):
        log = tmp_path / f"log_{len(expected)}.csv"
        with log.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["update", "reward", "kl", "stopped"])
            writer.writerows([(i + 1, *row) for i, row in enumerate(rows)])
        summary = {"log": str(log), "updates": 3}
        monkeypatch.setattr(train_module, "train", lambda *args, summary=summary: summary)
        assert main(["rlhf", "train", "--updates", "3", "--json", "--quiet"]) == 0
        err = capsys.readouterr().err
        warnings = [line for line in err.splitlines() if line.startswith("duetrl: warning:")]
        assert [w.split(": ", 2)[2][:len(e)] for w, e in zip(warnings, expected)] == expected
        assert len(warnings) == len(expected), err
