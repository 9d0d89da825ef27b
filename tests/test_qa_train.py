"""The QA run (core/cases/qa/train.py, ``duetrl qa``): the CLI's train, resume and eval with
their JSON, bad input named. Tiny sizes; the two backends in lockstep and learning:
tests/test_qa_learning.py; the accuracy headline: benchmarks/qa.py and the tutorial's full mode."""

from __future__ import annotations

import json

import pytest

from duetrl.core.cases.qa.settings import QASettings
from duetrl.core.cli import main
from duetrl.core.run.loop import read_log

TINY = ["--warmup-steps", "20", "--warmup-documents", "300", "--n-layer", "1", "--n-embd",
        "16", "--prompts", "2", "--group-size", "2", "--held-out", "4", "--eval-every", "2",
        "--quiet", "--json"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("qa") / "run"
    return out


def test_cli_train_resume_and_eval(tiny_run, capsys):
    out = str(tiny_run)
    assert main(["qa", "train", "--out", out, "--updates", "3", *TINY]) == 0
    first = json.loads(capsys.readouterr().out)
    for key in ("heldout_accuracy", "heldout_greedy_accuracy", "format_rate", "warmup_accuracy",
                "warmup_greedy_accuracy", "accuracy_gain", "samples_per_s", "examples"):
        assert key in first, key
    assert first["updates"] == 3 and first["held_out_questions"] == 4
    assert 0.0 <= first["heldout_accuracy"] <= 1.0 and (tiny_run / "qa_curves.png").is_file()
    assert (tiny_run / "warmup.safetensors").is_file()
    assert main(["qa", "train", "--out", out, "--updates", "5", "--resume", *TINY]) == 0
    resumed = json.loads(capsys.readouterr().out)
    rows = read_log(tiny_run / "log.csv")
    assert resumed["updates"] == 5 and [int(float(r["update"])) for r in rows] == [1, 2, 3, 4, 5]
    assert [r["heldout_accuracy"] != "nan" for r in rows] == [False, True, True, True, True]
    assert resumed["warmup_accuracy"] == first["warmup_accuracy"]  # the same warm-up, reused

    assert main(["qa", "eval", "--checkpoint", str(tiny_run / "checkpoint.safetensors"),
                 "--held-out", "4", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["task"] == "qa-arithmetic" and figures["questions"] == 4
    assert figures["accuracy"] == pytest.approx(resumed["heldout_accuracy"])
    assert main(["qa", "eval", "--checkpoint", str(tiny_run / "warmup.safetensors"),
                 "--question", "what is 2 plus 3?", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["split"] == "given"


def test_cli_bad_input_is_one_clear_line(tiny_run, capsys):
    checkpoint = str(tiny_run / "checkpoint.safetensors")
    if not (tiny_run / "checkpoint.safetensors").is_file():  # pytest-xdist ran the test above
        assert main(["qa", "train", "--out", str(tiny_run), "--updates", "3", *TINY]) == 0
        capsys.readouterr()  # elsewhere: this test needs a run of its own
    assert main(["qa", "eval", "--checkpoint", checkpoint, "--question", "  "]) == 2
    assert "question: expected a question, got an empty one" in capsys.readouterr().err
    assert main(["qa", "train", "--out", str(tiny_run), "--updates", "6", "--resume",
                 "--seed", "1", *TINY]) == 2
    assert "was written with another held-out evaluation" in capsys.readouterr().err
    assert main(["qa", "train", "--out", str(tiny_run), "--updates", "6", "--resume",
                 "--beta", "0.5", *TINY]) == 2
    assert "was written with other settings" in capsys.readouterr().err
    assert main(["qa", "score", "--question", "what is 2 plus 3?", "--completion",
                 "<t>é</t><a>5</a>"]) == 2
    assert "outside the task's vocabulary" in capsys.readouterr().err
    assert main(["qa", "train", "--family", "poetry", *TINY]) == 2
    assert "family: expected one of" in capsys.readouterr().err
    with pytest.raises(ValueError, match="algo: expected a policy-gradient objective"):
        QASettings(algo="dpo")
