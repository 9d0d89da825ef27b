"""``duetrl lm train``, ``lm sample``, ``compare lm``: they run, resume, fine-tune, and turn
bad input into one line and exit status 2."""

from __future__ import annotations

import json

import pytest

from duetrl.core.cli import main

TINY = [
    "--n-layer",
    "1",
    "--n-head",
    "2",
    "--n-embd",
    "16",
    "--block-size",
    "16",
    "--batch-size",
    "4",
    "--eval-every",
    "5",
    "--warmup",
    "2",
    "--threads",
    "1",
    "--num-chars",
    "3000",
    "--no-progress",
    "--json",
]


def run_json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_train_sample_finetune(tmp_path, capsys, backend, monkeypatch):
    """Train, resume, fine-tune from the checkpoint and sample, through the command line. The
    three TensorFlow trainers' steps run as plain graphs here, not XLA (~10 s of CPU each to
    compile): the commands' files and flow are checked; XLA's numbers are checked in
    tests/test_lm_train.py (test_one_adamw_step_matches_reference)."""
    monkeypatch.setattr("duetrl.backends.tf.training.XLA_TRAIN_STEP", False)
    out = tmp_path / "pre"
    figures = run_json(
        capsys,
        [
            "lm",
            "train",
            "--backend",
            backend,
            "--corpus",
            "templates",
            "--steps",
            "6",
            "--out",
            str(out),
            *TINY,
        ],
    )
    assert figures["val_loss"] > 0 and (out / "model.safetensors").is_file()
    assert (out / "loss.png").is_file()
    # resume to 8 steps, then fine-tune on another corpus from the checkpoint
    run_json(
        capsys,
        ["lm", "train", "--backend", backend, "--steps", "8", "--resume", "--out", str(out), *TINY],
    )
    fine = run_json(
        capsys,
        [
            "lm",
            "train",
            "--backend",
            backend,
            "--corpus",
            "digits",
            "--init-from",
            str(out / "model.safetensors"),
            "--steps",
            "4",
            "--out",
            str(tmp_path / "fine"),
            *TINY,
        ],
    )
    assert fine["parameters"] == figures["parameters"]
    sample = run_json(
        capsys,
        [
            "lm",
            "sample",
            "--backend",
            backend,
            "--checkpoint",
            str(tmp_path / "fine" / "model.safetensors"),
            "--prompt",
            "12+",
            "--max-new-tokens",
            "5",
            "--json",
        ],
    )
    assert sample["text"].startswith("12+") and len(sample["log_probs"]) == 5


def test_bad_input_gives_one_line_and_status_2(tmp_path, capsys):
    out = tmp_path / "m"
    run_json(
        capsys, ["lm", "train", "--corpus", "templates", "--steps", "2", "--out", str(out), *TINY]
    )
    checkpoint = str(out / "model.safetensors")
    cases = [
        (["lm", "sample", "--checkpoint", checkpoint, "--prompt", ""], "--prompt"),
        (["lm", "sample", "--checkpoint", checkpoint, "--max-new-tokens", "40"], "block_size=16"),
        (["lm", "sample", "--checkpoint", checkpoint, "--prompt", "héllo"], "'é'"),
        (["lm", "sample", "--checkpoint", str(tmp_path / "nope.safetensors")], "no file"),
        (
            ["lm", "train", "--resume", "--n-layer", "2", *TINY[2:], "--out", str(out)],
            "another config",
        ),
        (["lm", "train", "--corpus", "nowhere.txt", "--out", str(out)], "--corpus"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("duetrl: error:") and message in err and "\n" not in err, err


def test_compare_lm(capsys):
    figures = run_json(
        capsys,
        [
            "compare",
            "lm",
            "--n-layer",
            "1",
            "--n-embd",
            "16",
            "--n-head",
            "2",
            "--block-size",
            "16",
            "--vocab-size",
            "20",
            "--train-steps",
            "2",
            "--new-tokens",
            "4",
            "--threads",
            "1",
            "--json",
        ],
    )
    assert figures["logits_max_abs"]["torch_vs_tf"] < 1e-4
    assert figures["same_tokens"] is True
    assert figures["speed"]["tf"]["generate_tokens_per_second_cached"] > 0


def test_lm_benchmark_runs_on_tiny_shapes(capsys, monkeypatch):
    """The benchmark's every part on tiny shapes. TensorFlow's one-token step is compiled with
    XLA from the first token (``--tf-xla-decode on``): the default would first warm every
    framework up past ``XLA_DECODE_AFTER`` (1000) tokens, 250 generations of 4 tokens each, to
    reach the same XLA step."""
    import importlib.util
    from pathlib import Path

    from duetrl.backends.tf import generation as tf_generation

    # the benchmark sets the module's switch for its run; the tests after this one keep theirs
    monkeypatch.setattr(tf_generation, "XLA_DECODE_AFTER", tf_generation.XLA_DECODE_AFTER)
    path = Path(__file__).parent.parent / "benchmarks" / "lm.py"
    spec = importlib.util.spec_from_file_location("bench_lm", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = module.main(
        [
            "--n-layer",
            "1",
            "--n-embd",
            "16",
            "--n-head",
            "2",
            "--context",
            "8",
            "--vocab-size",
            "20",
            "--batch-size",
            "2",
            "--new-tokens",
            "4",
            "--repeats",
            "1",
            "--threads",
            "1",
            "--tf-xla-decode",
            "on",
            "--json",
        ]
    )
    assert results["torch"]["train_tokens_per_second"] > 0
    assert results["tf"]["generate_tokens_per_second_cached"] > 0
    assert results["tf_xla_decode_after"] == 0  # the XLA step was the one timed


MLM_TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "32",
            "--num-chars", "4000", "--steps", "4", "--eval-every", "2", "--batch-size", "8"]


def test_lm_mlm_trains_saves_and_fills_every_blank(tmp_path, capsys):
    from duetrl.core.checkpoint import load_checkpoint
    from duetrl.core.lm.mlm import MLM_KIND

    out = tmp_path / "mlm"
    assert main(["lm", "mlm", *MLM_TINY, "--out", str(out), "--json",
                 "--fill", "the _eacher f_nds", "--fill", "a red ba__."]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 4 and 0.0 <= summary["accuracy"] <= 1.0
    filled = summary["filled"]
    assert [len(f) for f in filled] == [len("the _eacher f_nds"), len("a red ba__.")]
    assert "_" not in "".join(filled)
    assert filled[0][:4] == "the " and filled[0][5:12] == "eacher " and filled[1][-1] == "."
    saved = load_checkpoint(out / "model.safetensors", MLM_KIND)
    assert saved.metadata["config"]["n_embd"] == 16 and len(saved.metadata["history"]["loss"]) == 4
    assert (out / "loss.png").stat().st_size > 0


@pytest.mark.parametrize(("fill", "message"), [
    ("no blank here", "at least one _"),
    ("_" * 40, "at most --block-size=32"),
    ("the _eacher \u00e9", "not in the corpus"),
])
def test_lm_mlm_refuses_a_bad_fill_before_training(tmp_path, capsys, fill, message):
    assert main(["lm", "mlm", *MLM_TINY, "--out", str(tmp_path), "--fill", fill]) == 2
    err = capsys.readouterr().err
    assert "--fill" in err and message in err
    assert not (tmp_path / "model.safetensors").exists()  # refused before any training
