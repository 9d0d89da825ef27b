"""Stored results a tutorial reads instead of training (the full build's budget,
``docs/FULL_BUILD.md``): ``tools/store_sweep_runs.py`` writes a sweep's per-run summaries,
``duetrl.core.tutorial.read_sweep_runs`` reads them back, and ch09_3's own reading and claim
cells run on them, in full mode:

* on the stored files themselves (``tutorials/results/``, the real sweeps): every figure the
  text quotes holds, and each file was made from the sweep file now in ``sweeps/`` (its
  SHA-256), so editing a sweep without rerunning it fails here;
* on a FIXTURE sweep folder with made-up numbers: the tool's writing and reading, and a sweep
  that disagrees with the text stops the page.

Cheap: no model runs (about 10 s of CPU, most of it importing the statistics and matplotlib)."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from duetrl.core.tutorial import (
    SWEEP_RUNS_FORMAT,
    ClaimError,
    claim,
    read_sweep_runs,
    results_dir,
    retrain,
    sweep_runs_by,
)

REPO = Path(__file__).resolve().parents[1]
TUTORIAL = REPO / "tutorials" / "ch09_3_what_the_lm_contributes.py"
STORED_NAME = "ch09_3_lm_agent_sweep.json"
STORED = {"ch09_3_lm_agent_sweep.json": "lm_agent.toml",  # stored file -> its sweep file
          "ch09_3_mlp_tuning_sweep.json": "lm_agent_mlp_tuning.toml"}

# made-up scores per policy and metric, 10 seeds each (see the module's docstring)
FIXTURE = {
    "lm": {"sampled_success_rate": [0.85] * 10, "heldout_sampled_success_rate": [0.85] * 10,
           "success_rate": [0.69] * 10, "heldout_success_rate": [0.74] * 10},
    "lm-scratch": {"sampled_success_rate": [0, 0, 0, 0, 0, 0, 0, 0, 0.1, 0.2],
                   "heldout_sampled_success_rate": [0.01] * 10,
                   "success_rate": [0.0] * 10, "heldout_success_rate": [0.0] * 10},
    "mlp": {"sampled_success_rate": [0, 0.05, *[0.12] * 6, 0.2, 0.25],
            "heldout_sampled_success_rate": [0.12] * 10,
            "success_rate": [0.0] * 10, "heldout_success_rate": [0.0] * 10},
}


def _store_tool():
    spec = importlib.util.spec_from_file_location("store_sweep_runs",
                                                  REPO / "tools" / "store_sweep_runs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_sweep_folder(root: Path, fixture: dict = FIXTURE, failed: int = 0) -> Path:
    """A folder shaped like ``duetrl sweep``'s: results.csv and runs/<id>/log.csv."""
    metrics = list(next(iter(fixture.values())))
    columns = ["run_id", "command", "algorithm", "backend", "seed", "env", "status", "attempts",
               *metrics, "env_steps", "setting.env", "setting.policy", "setting.updates",
               "run_dir"]
    rows = []
    for policy, scores in fixture.items():
        for seed in range(len(scores[metrics[0]])):
            run_id = f"{policy}-torch-s{seed}"
            row = {"run_id": run_id, "command": "agent train", "algorithm": "", "backend":
                   "torch", "seed": seed, "env": "duetrl/KeyDoor-v0", "status": "done",
                   "attempts": 1, "env_steps": 1600, "setting.env": "duetrl/KeyDoor-v0",
                   "setting.policy": policy, "setting.updates": 3,
                   "run_dir": f"/elsewhere/runs/{run_id}"}
            row.update({m: scores[m][seed] for m in metrics})
            rows.append(row)
            log = root / "runs" / run_id / "log.csv"
            log.parent.mkdir(parents=True)
            log.write_text("update,env_steps,success_rate\n1,8,0.0\n2,16,0.25\n3,24,0.5\n")
    for i in range(failed):
        rows.append({**rows[0], "run_id": f"lm-torch-s{90 + i}", "seed": 90 + i,
                     "status": "timeout", **{m: "" for m in metrics}})
    with open(root / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)
    (root / "sweep.toml").write_text("[sweep]\nseeds = 10\n")
    return root


def test_the_tool_stores_each_finished_run_and_reads_back(tmp_path) -> None:
    sweep = make_sweep_folder(tmp_path / "lm_agent", failed=1)
    out = tmp_path / "results" / STORED_NAME
    assert _store_tool().main([str(sweep), "--out", str(out)]) == 0
    stored = read_sweep_runs(out)
    assert stored["format"] == SWEEP_RUNS_FORMAT
    assert len(stored["runs"]) == 30
    assert stored["excluded"] == [{"run_id": "lm-torch-s90", "status": "timeout"}]
    first = stored["runs"][0]
    assert first["settings"] == {"env": "duetrl/KeyDoor-v0", "policy": "lm", "updates": 3}
    assert first["curve"] == [0.0, 0.25, 0.5] and first["env_steps"] == 1600.0
    assert len(stored["source"]["sweep_toml_sha256"]) == 64
    groups = sweep_runs_by(stored, "policy")
    assert list(groups) == ["lm", "lm-scratch", "mlp"]
    assert [r["seed"] for r in groups["mlp"]] == list(range(10))
    assert [r["sampled_success_rate"] for r in groups["mlp"]] == FIXTURE["mlp"][
        "sampled_success_rate"]


def test_missing_wrong_or_empty_files_say_what_to_do(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"made by: duetrl sweep x\); or set "
                                                r"DUETRL_RETRAIN=1"):
        read_sweep_runs(tmp_path / "none.json", "duetrl sweep x")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "other/1", "runs": []}))
    with pytest.raises(ValueError, match="expected format 'duetrl-sweep-runs/1', got 'other/1'"):
        read_sweep_runs(bad)
    bad.write_text(json.dumps({"format": SWEEP_RUNS_FORMAT, "runs": []}))
    with pytest.raises(ValueError, match="non-empty list 'runs'"):
        read_sweep_runs(bad)
    bad.write_text(json.dumps({"format": SWEEP_RUNS_FORMAT, "runs": [{"run_id": "a"}]}))
    with pytest.raises(ValueError, match=r"runs\[0\] has no seed, settings"):
        read_sweep_runs(bad)
    bad.write_text(json.dumps({"format": SWEEP_RUNS_FORMAT, "runs": ["a"]}))
    with pytest.raises(ValueError, match=r"runs\[0\] should be an object, got str"):
        read_sweep_runs(bad)
    bad.write_text('{"format": "duetrl-sweep-runs/1", "runs": [')  # cut short
    with pytest.raises(ValueError, match=r"bad\.json: not JSON .*tools/store_sweep_runs\.py"):
        read_sweep_runs(bad)
    with pytest.raises(FileNotFoundError, match="not a sweep folder"):
        _store_tool().sweep_runs(tmp_path)
    sweep = make_sweep_folder(tmp_path / "s")
    with pytest.raises(ValueError, match=r"no column \['greedy'\]"):
        _store_tool().sweep_runs(sweep, ("greedy",))


def test_retrain_and_results_dir_follow_the_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("DUETRL_RETRAIN", raising=False)
    monkeypatch.delenv("DUETRL_RESULTS", raising=False)
    assert not retrain() and results_dir() == REPO / "tutorials" / "results"
    monkeypatch.setenv("DUETRL_RETRAIN", "1")
    monkeypatch.setenv("DUETRL_RESULTS", str(tmp_path))
    assert retrain() and results_dir() == tmp_path


def _cells(path: Path) -> list[str]:
    return re.split(r"(?m)^# %%.*$", path.read_text())


def _tutorial_cell(marker: str) -> str:
    found = [cell for cell in _cells(TUTORIAL) if marker in cell]
    assert len(found) == 1, marker
    return found[0]


def _run_reading_and_claims(monkeypatch, results: Path, tuning: bool = False,
                            claims: bool = True) -> dict:
    """ch09_3's own cells that read the stored sweep and check the text's claims, in full mode
    (DUETRL_QUICK unset, DUETRL_RETRAIN unset), on the stored file in ``results``; with
    ``tuning`` also the cell that reads the MLP's tuning sweep; ``claims=False``: the reading
    cell alone."""
    from duetrl.core.plots import pyplot, save_figure
    from duetrl.core.scale.statistics import aggregate_statistics, improvement_with_ci
    from duetrl.core.tutorial import figure_dir

    monkeypatch.delenv("DUETRL_QUICK", raising=False)
    monkeypatch.setenv("DUETRL_FIGURES", str(results / "figures"))
    monkeypatch.delenv("DUETRL_RETRAIN", raising=False)
    monkeypatch.setenv("DUETRL_RESULTS", str(results))
    namespace = {"np": np, "QUICK": False, "retrain": retrain, "results_dir": results_dir,
                 "read_sweep_runs": read_sweep_runs, "sweep_runs_by": sweep_runs_by,
                 "claim": claim, "aggregate_statistics": aggregate_statistics,
                 "improvement_with_ci": improvement_with_ci, "REPS": 200, "plt": pyplot(),
                 "save_figure": save_figure, "figure_dir": figure_dir,
                 "POLICIES": {"pretrained LM": {}, "LM from random weights": {},
                              "MLP on a bag of words": {}}}
    exec(_tutorial_cell("read_sweep_runs(STORED"), namespace)  # noqa: S102
    if claims:
        exec(_tutorial_cell("TEXT_IQM ="), namespace)  # noqa: S102
    if tuning:
        exec(_tutorial_cell("TUNING = "), namespace)  # noqa: S102
    return namespace


@pytest.mark.parametrize("name", list(STORED))
def test_each_stored_file_comes_from_the_sweep_file_in_the_repository(name: str) -> None:
    stored = read_sweep_runs(REPO / "tutorials" / "results" / name)
    sweep_file = REPO / "sweeps" / STORED[name]
    assert stored["source"]["sweep_toml_sha256"] == hashlib.sha256(
        sweep_file.read_bytes()).hexdigest(), f"{sweep_file} changed since {name} was stored"
    assert stored["excluded"] == []


def test_ch09_3_text_holds_on_the_stored_sweeps(monkeypatch, tmp_path, capsys) -> None:
    results = tmp_path / "results"
    results.mkdir()
    for name in STORED:  # the real files, read from a copy (the figures go beside them)
        shutil.copy(REPO / "tutorials" / "results" / name, results / name)
    namespace = _run_reading_and_claims(monkeypatch, results, tuning=True)  # every claim()
    out = capsys.readouterr().out
    assert "30 runs read from ch09_3_lm_agent_sweep.json" in out
    assert "best sampled IQM 0.53 at lr 0.01, c_H 0.03, clip 0.1" in out
    assert namespace["table"]["heldout_greedy"]["pretrained LM"]["iqm"] == pytest.approx(0.7417,
                                                                                      abs=1e-4)
    assert [len(found) for found in namespace["runs"].values()] == [10, 10, 10]
    assert len(namespace["points"]) == 12 and {len(f) for f in namespace["points"].values()} == {3}
    assert all(len(r["curve"]) == 100 for found in namespace["runs"].values() for r in found)
    assert (results / "figures" / "ch09_3_iqm.png").is_file()


def test_ch09_3_reads_a_stored_sweep_through_the_tool(monkeypatch, tmp_path, capsys) -> None:
    sweep = make_sweep_folder(tmp_path / "lm_agent")
    assert _store_tool().main([str(sweep), "--out", str(tmp_path / STORED_NAME)]) == 0
    namespace = _run_reading_and_claims(monkeypatch, tmp_path, claims=False)
    assert "30 runs read from ch09_3_lm_agent_sweep.json" in capsys.readouterr().out
    found = namespace["runs"]
    assert [r["heldout_greedy"] for r in found["pretrained LM"]] == [0.74] * 10
    assert [r["success"] for r in found["MLP on a bag of words"]] == FIXTURE["mlp"][
        "sampled_success_rate"]
    assert found["pretrained LM"][0]["curve"].tolist() == [0.0, 0.25, 0.5]


def test_ch09_3_stops_on_a_stored_sweep_that_disagrees_with_its_text(monkeypatch,
                                                                     tmp_path) -> None:
    off = json.loads(json.dumps(FIXTURE))
    off["lm"]["heldout_sampled_success_rate"] = [0.70] * 10  # the text says 0.85
    sweep = make_sweep_folder(tmp_path / "lm_agent", off)
    assert _store_tool().main([str(sweep), "--out", str(tmp_path / STORED_NAME)]) == 0
    with pytest.raises(ClaimError, match="pretrained LM's IQM, sampled, held-out worlds = 0.85"):
        _run_reading_and_claims(monkeypatch, tmp_path)


def test_ch09_3_without_its_stored_sweep_names_the_command(monkeypatch, tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"duetrl sweep sweeps/lm_agent.toml --sequential"
                                                r".*tools/store_sweep_runs.py"):
        _run_reading_and_claims(monkeypatch, tmp_path)


def test_the_stored_world_lm_is_the_pretraining_defaults_model() -> None:
    """ch09_3's full build reads the world LM the stored sweep used instead of pretraining it:
    a GPT checkpoint with its word tokeniser, the size ``duetrl agent pretrain`` makes."""
    from duetrl.core.agents.pretrain import PretrainSettings
    from duetrl.core.agents.train import load_pretrained

    config, params, tokenizer = load_pretrained(REPO / "tutorials" / "results"
                                                / "ch09_3_world_lm.safetensors")
    defaults = PretrainSettings()
    assert (config.n_layer, config.n_embd) == (defaults.n_layer, defaults.n_embd)
    assert config.vocab_size == tokenizer.vocab_size
    assert sum(v.size for v in params.values()) == 33056  # what the sweep's pretraining printed
    assert all(np.isfinite(v).all() for v in params.values())


def test_tutorial_world_lm_reads_the_stored_defaults_model_or_pretrains(monkeypatch,
                                                                         tmp_path) -> None:
    """The full build reads the stored world LM, whose own record says it was made with
    ``PretrainSettings``' defaults; quick mode pretrains its small settings; DUETRL_RETRAIN=1
    pretrains the defaults; no stored file names the command that makes it."""
    from duetrl.core.agents import pretrain as pretraining
    from duetrl.core.backend import load_backends
    from duetrl.core.checkpoint import read_file

    torch_backend = load_backends(["torch"])["torch"]
    monkeypatch.delenv("DUETRL_RETRAIN", raising=False)
    monkeypatch.delenv("DUETRL_RESULTS", raising=False)
    path, record = pretraining.tutorial_world_lm(torch_backend, None, tmp_path / "unused")
    assert path == REPO / "tutorials" / "results" / pretraining.STORED_WORLD_LM
    assert record["corpus_tokens"] == 94133 and record["steps"] == 4000
    assert record["val_loss"] == pytest.approx(0.3669, abs=1e-4)
    assert not (tmp_path / "unused").exists()
    saved, defaults = read_file(path)[1], pretraining.PretrainSettings()
    assert saved["corpus"] == {"kind": "world sentences + prompt-format facts", "seed": 0,
                               "sentences": defaults.sentences, "tokens": 94133,
                               "prompt_fraction": defaults.prompt_fraction,
                               "match_fraction": defaults.match_fraction,
                               "hall_facts": defaults.hall_facts}
    train_config = saved["train_config"]
    assert (train_config["steps"], train_config["batch_size"], train_config["learning_rate"]) \
        == (defaults.steps, defaults.batch_size, defaults.learning_rate)

    small = pretraining.PretrainSettings(sentences=40, steps=3)
    path, record = pretraining.tutorial_world_lm(torch_backend, small, tmp_path / "quick")
    assert path == tmp_path / "quick" / "world_lm.safetensors" and path.is_file()
    assert record["steps"] == 3 and np.isfinite(record["val_loss"])
    assert read_file(path)[1]["corpus"]["sentences"] == 40

    pretrained_with = []
    monkeypatch.setattr(pretraining, "pretrain", lambda backend, settings, out, progress:
                        pretrained_with.append(settings) or {"corpus_tokens": 1, "val_loss": 2.0})
    monkeypatch.setenv("DUETRL_RETRAIN", "1")
    path, record = pretraining.tutorial_world_lm(torch_backend, None, tmp_path / "retrain")
    assert pretrained_with == [defaults] and record == {"corpus_tokens": 1, "steps": 4000,
                                                        "val_loss": 2.0}
    assert path == tmp_path / "retrain" / "world_lm.safetensors"

    monkeypatch.delenv("DUETRL_RETRAIN")
    monkeypatch.setenv("DUETRL_RESULTS", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match=r"made by: duetrl agent pretrain --out .*"
                                                r"ch09_3_world_lm.safetensors\); or set "
                                                r"DUETRL_RETRAIN=1"):
        pretraining.tutorial_world_lm(torch_backend, None, tmp_path / "x")


def test_the_stored_qa_warm_up_is_the_default_settings_warm_up(tmp_path) -> None:
    """ch06_3's full build reads the warm-up its DUETRL_RETRAIN=1 run stored: it loads, it is
    QASettings()' warm-up (steps, batch, learning rate, seed, task), and a warm-up of other
    settings or no file is refused with a message that says what to do."""
    from duetrl.core.cases.qa.settings import QASettings
    from duetrl.core.cases.qa.train import stored_warm_up

    path = REPO / "tutorials" / "results" / "ch06_3_qa_warmup.safetensors"
    (config, params), val_loss = stored_warm_up(path, QASettings())
    assert sum(v.size for v in params.values()) == 29280  # what the warm-up printed
    assert config.n_layer == QASettings().n_layer and 0.1 < val_loss < 0.5
    with pytest.raises(ValueError, match=r"a warm-up of \(steps, .*\(2000, .*expected "
                                         r"\(10, .*DUETRL_RETRAIN=1"):
        stored_warm_up(path, QASettings(warmup_steps=10))
    with pytest.raises(ValueError, match=r"expected \(2000, .*, 3, "):
        stored_warm_up(path, QASettings(seed=3))
    with pytest.raises(FileNotFoundError, match=r"made by: DUETRL_RETRAIN=1 python tutorials/"
                                                r"ch06_3_.*; or set DUETRL_RETRAIN=1"):
        stored_warm_up(tmp_path / "none.safetensors", QASettings())


def test_stored_results_round_trip_and_refuse_what_is_not_numbers(tmp_path) -> None:
    from duetrl.core.tutorial import read_stored_results, write_stored_results

    path = tmp_path / "seeds.json"
    assert write_stored_results(path, "x-seeds/1", {"1": [0.5, 1, 0.25]}) == path
    assert read_stored_results(path, "x-seeds/1") == {"1": [0.5, 1.0, 0.25]}
    with pytest.raises(ValueError, match="expected format 'y/1', got 'x-seeds/1'"):
        read_stored_results(path, "y/1")
    for bad in ({}, {"1": [0.5, float("nan")]}, {"1": "0.5"}, {"1": [True]}):
        with pytest.raises(ValueError, match="results"):
            write_stored_results(tmp_path / "bad.json", "x-seeds/1", bad)
    assert not (tmp_path / "bad.json").exists()  # nothing written when refused
    path.write_text('{"format": "x-seeds/1", "results": {"1": [0.5, null]}}')
    with pytest.raises(ValueError, match=r"results\['1'\] should be a list of finite numbers"):
        read_stored_results(path, "x-seeds/1")
    with pytest.raises(FileNotFoundError, match=r"made by: run me\); or set DUETRL_RETRAIN=1"):
        read_stored_results(tmp_path / "none.json", "x-seeds/1", "run me")
    from duetrl.core.tutorial import stored_path

    assert stored_path(str(path), "run me") == path  # any stored file: a checkpoint too
    with pytest.raises(FileNotFoundError, match=r"none\.safetensors: no stored results \(made "
                                                r"by: run me\); or set DUETRL_RETRAIN=1"):
        stored_path(tmp_path / "none.safetensors", "run me")


QA = REPO / "tutorials" / "ch06_3_question_answering_with_verifiable_rewards.py"


def test_qa_text_holds_on_its_stored_seeds(monkeypatch, capsys) -> None:
    """ch06_3's seeds 1 and 2 (a minute of training each) are read in the full build: run the
    tutorial's reading cell, in full mode, on the stored file, with its claims."""
    from duetrl.core.tutorial import read_stored_results, write_stored_results

    cells = re.split(r"(?m)^# %%.*$", QA.read_text())
    quoted = next(cell for cell in cells if "QUOTED = " in cell)
    quoted = quoted[quoted.index("QUOTED = "):quoted.index("claim_seed(SETTINGS.seed")]
    reading = next(cell for cell in cells if "STORED_SEEDS = " in cell)
    monkeypatch.delenv("DUETRL_QUICK", raising=False)
    monkeypatch.delenv("DUETRL_RETRAIN", raising=False)
    monkeypatch.delenv("DUETRL_RESULTS", raising=False)
    namespace = {"QUICK": False, "claim": claim, "retrain": retrain, "results_dir": results_dir,
                 "read_stored_results": read_stored_results,
                 "write_stored_results": write_stored_results,
                 "seed_figures": None, "QASettings": None, "warm_up": None, "QARun": None}
    exec(quoted, namespace)  # noqa: S102
    exec(reading, namespace)  # noqa: S102  (every claim of seeds 1 and 2)
    assert sorted(namespace["seeds"]) == [1, 2]
    out = capsys.readouterr().out
    assert "seed 1: pass@1 0.656 -> 0.831, greedy 0.725 -> 0.985" in out
