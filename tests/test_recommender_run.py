"""The recommender's run (issue 19 part 1, outline 6.2): the evaluation's figures by hand, the
settings' checks, a warm-up shared by branches, the run loop (--json, --resume equal to the
run never interrupted, a checkpoint refused with other settings) and ``duetrl recommend``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from duetrl.core.cases.recommender.evaluate import (
    expected_clicks,
    offline_figures,
    top_k_items,
    top_k_reward,
)
from duetrl.core.cases.recommender.train import RecommenderRun, RecommenderSettings, load_run
from duetrl.core.checkpoint import CheckpointError
from duetrl.core.cli import main
from duetrl.core.run import BASE_KEYS, run

TINY = dict(
    sessions=200,
    eval_users=60,
    pretrain_steps=4,
    updates=4,
    eval_every=4,
    n_embd=16,
    n_layer=1,
    batch_size=16,
    history=4,
)


# ---- the figures ------------------------------------------------------------------------------
def test_top_k_reward_and_expected_clicks_by_hand():
    pi = np.array([[0.5, 0.3, 0.2, 0.0], [0.1, 0.1, 0.1, 0.7]])
    p = np.array([[0.9, 0.1, 0.5, 1.0], [0.2, 0.4, 0.6, 0.8]])
    assert top_k_items(pi, 2).tolist() == [[0, 1], [3, 0]]  # a tie goes to the lower id
    assert abs(top_k_reward(pi, p, 2) - ((0.9 + 0.1) / 2 + (0.8 + 0.2) / 2) / 2) < 1e-12
    assert abs(top_k_reward(pi, p, 1) - (0.9 + 0.8) / 2) < 1e-12
    alpha = 1 - (1 - pi) ** 3
    assert abs(expected_clicks(pi, p, 3) - (alpha * p).sum(1).mean()) < 1e-12
    with pytest.raises(ValueError, match=r"k: expected an int in \[1, 4\], got 5"):
        top_k_reward(pi, p, 5)


def test_offline_estimates_of_the_logging_policy_itself_are_the_mean_reward():
    rng = np.random.default_rng(0)
    beta = rng.dirichlet(np.ones(5), size=(30, 2))  # pi = beta: every weight is 1
    actions = np.array([[rng.choice(5, p=b) for b in row] for row in beta])
    chosen = np.take_along_axis(beta, actions[..., None], -1)[..., 0]
    rewards = rng.random((30, 2))
    f = offline_figures(beta, actions, rewards, chosen, rng.random((30, 5)), 1)
    assert abs(f["ips"] - rewards.mean()) < 1e-12 and abs(f["snips"] - rewards.mean()) < 1e-12
    assert f["max_weight"] == pytest.approx(1.0)
    assert abs(f["ips_expected_clicks"] - rewards.mean()) < 1e-12  # K = 1: alpha = pi


# ---- settings, branches, the run loop ---------------------------------------------------------
def test_settings_refuse_bad_values():
    for bad, match in (
        ({"method": "ips"}, "method: expected one of"),
        ({"propensity": "true"}, "propensity: expected one of"),
        ({"k": 0}, "k: expected an int >= 1"),
        ({"k": 49}, "k: expected <= the catalogue's 48 items, got 49"),
        ({"first_event": 9}, r"first_event: expected <= history \(8\)"),
        ({"cap": 0.0}, "cap: expected > 0"),
        ({"pretrain_steps": 0, "updates": 0}, "at least one update"),
    ):
        with pytest.raises(ValueError, match=match):
            RecommenderSettings(**bad)


def test_branches_share_the_warm_up(backends):
    b = backends["torch"]
    warm = RecommenderRun(b, RecommenderSettings(method="supervised", **TINY))
    for _ in range(4):
        warm.step()
    top_k = warm.branch("top_k")
    params = b.export_params(top_k.policy)
    assert all(np.array_equal(v, params[k]) for k, v in b.export_params(warm.policy).items())
    assert top_k.updates == 4 and top_k.learner.method == "top_k"
    top_k.step()
    with pytest.raises(ValueError, match=r"branch: expected a run still in its warm-up"):
        top_k.branch("reinforce")


def test_resume_equals_the_uninterrupted_run(backends, tmp_path):
    b = backends["torch"]
    whole = run(RecommenderRun(b, RecommenderSettings(**TINY)), tmp_path / "whole", quiet=True)
    assert list(whole)[: len(BASE_KEYS)] == list(BASE_KEYS)
    half = RecommenderSettings(**{**TINY, "updates": 2})
    run(RecommenderRun(b, half), tmp_path / "parts", quiet=True)
    resumed = run(
        RecommenderRun(b, RecommenderSettings(**TINY)), tmp_path / "parts", resume=True, quiet=True
    )
    assert resumed["updates"] == 8 and resumed["top_k_reward"] == whole["top_k_reward"]
    assert resumed["ips"] == whole["ips"]
    loaded = load_run(b, tmp_path / "parts" / "checkpoint.safetensors")
    assert loaded.evaluate()["top_k_reward"] == whole["top_k_reward"]
    with pytest.raises(CheckpointError, match="other settings.*'k'"):
        run(
            RecommenderRun(b, RecommenderSettings(**{**TINY, "k": 2})),
            tmp_path / "parts",
            resume=True,
            quiet=True,
        )


def test_cli_train_json_eval_and_compare(tmp_path, capsys):
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]
    assert (
        main(
            [
                "recommend",
                "train",
                "--backend",
                "torch",
                "--out",
                str(tmp_path / "r"),
                "--json",
                "--quiet",
                "--method",
                "off_policy",
                *flags,
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    for key in (
        "top_k_reward",
        "expected_clicks",
        "ips",
        "snips",
        "true_click_rate",
        "oracle_top_k_reward",
        "behaviour_head_error",
    ):
        assert np.isfinite(summary[key]), key
    assert summary["method"] == "off_policy" and (tmp_path / "r" / "recommender.png").is_file()
    assert (
        main(["recommend", "eval", str(tmp_path / "r" / "checkpoint.safetensors"), "--json"]) == 0
    )
    assert json.loads(capsys.readouterr().out)["top_k_reward"] == summary["top_k_reward"]
    assert (
        main(
            [
                "recommend",
                "compare",
                "--backend",
                "torch",
                "--out",
                str(tmp_path / "c"),
                "--json",
                "--methods",
                "reinforce",
                "top_k",
                "--seeds",
                "0",
                "1",
                "--reps",
                "200",
                *flags,
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    stats = result["statistics"]["top_k_reward"]
    assert set(stats["methods"]) == {"reinforce", "top_k"} and len(result["runs"]) == 4
    assert stats["methods"]["top_k"]["iqm_ci"] is not None
    assert 0 <= stats["p_top_k_better"]["reinforce"]["p"] <= 1
    paired = stats["top_k_minus"]["reinforce"]
    by_seed = {(r["method"], r["seed"]): r["top_k_reward"] for r in result["runs"]}
    expected = np.mean([by_seed["top_k", s] - by_seed["reinforce", s] for s in (0, 1)])
    assert abs(paired["mean"] - expected) < 1e-12 and paired["seeds"] == 2
    assert (tmp_path / "c" / "comparison.png").is_file()


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    assert (
        main(
            [
                "recommend",
                "train",
                "--backend",
                "torch",
                "--out",
                str(tmp_path),
                "--method",
                "top_k",
                "--k",
                "0",
            ]
        )
        == 2
    )
    assert "k: expected an int >= 1" in capsys.readouterr().err


def test_paired_difference_by_hand():
    from duetrl.core.cases.recommender.evaluate import paired_difference

    d = paired_difference(np.array([0.5, 0.6, 0.7]), np.array([0.4, 0.65, 0.5]), reps=500)
    assert abs(d["mean"] - (0.1 - 0.05 + 0.2) / 3) < 1e-12 and d["wins"] == 2
    assert d["ci"][0] <= d["mean"] <= d["ci"][1] and d["ci"][0] >= -0.05 - 1e-12
    assert paired_difference(np.array([1.0]), np.array([0.5]))["ci"] is None


def test_benchmark_script_runs_on_tiny_settings(capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parent.parent / "benchmarks" / "recommender.py"
    spec = importlib.util.spec_from_file_location("bench_recommender", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.main(["--quick", "--seeds", "0", "1", "--backends", "torch", "--json"])
    torch = result["torch"]
    assert len(torch["top_k"]) == len(torch["reinforce"]) == len(torch["effect"]) == 2
    assert torch["effect"][1] == torch["top_k"][1] - torch["reinforce"][1]
    assert torch["wall_s"] > 0 and torch["cpu_s"] > 0 and torch["updates_per_s"] > 0
    assert json.loads(capsys.readouterr().out)["seeds"] == [0, 1]


def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_checkpoint(backends, tmp_path):
    from duetrl.core.run import Diverged

    trainer = RecommenderRun(backends["torch"], RecommenderSettings(**TINY))
    update = trainer.learner.update

    def diverging(*args):  # the method's first update returns a NaN loss
        return {**update(*args), "loss": float("nan")}

    trainer.learner.update = diverging
    with pytest.raises(Diverged, match="training diverged at update 5"):
        run(trainer, tmp_path, quiet=True, checkpoint_every=2)
    assert trainer.updates == 4 and (tmp_path / "checkpoint.safetensors").is_file()
