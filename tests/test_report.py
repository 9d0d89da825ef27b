"""``duetrl report``: statistics over seeds against float64 hand computations, on synthetic sweeps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from duetrl.core.scale import report as rp
from duetrl.core.scale import statistics as st

REPS = 200  # small: these tests check the plumbing and the definitions, not coverage


def write_sweep(root: Path, rows: list[dict], curves: dict[str, tuple] | None = None) -> Path:
    """A sweep folder by the contract: sweep.toml, results.csv, runs/<run_id>/log.csv."""
    import pandas as pd

    root.mkdir(parents=True, exist_ok=True)
    (root / "sweep.toml").write_text("# synthetic sweep for tests\n")
    full = []
    for row in rows:
        row = {"command": "train " + row["algorithm"], "env": "CartPole-v1", "status": "done",
               "attempts": 1, "wall_s": 1.0, "error": "", **row}
        row.setdefault("run_dir", f"runs/{row['run_id']}")
        full.append(row)
        x, y = (curves or {}).get(row["run_id"], ([100, 200, 300], [10.0, 20.0, 30.0]))
        run = root / row["run_dir"]
        run.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"update": np.arange(1, len(x) + 1), "env_steps": x,
                      "mean_return": y}).to_csv(run / "log.csv", index=False)
    pd.DataFrame(full).to_csv(root / "results.csv", index=False)
    return root


def run_row(algorithm: str, backend: str, seed: int, score: float, **settings) -> dict:
    name = "-".join([algorithm, backend, f"s{seed}", *(f"{k}{v}" for k, v in settings.items())])
    return {"run_id": name, "algorithm": algorithm, "backend": backend, "seed": seed,
            "final_mean_return": score, **{f"setting.{k}": v for k, v in settings.items()}}


# --- the statistics, against float64 hand computations -----------------------------------


@pytest.mark.parametrize("n", [4, 5, 6, 7, 8, 9, 11])
def test_iqm_is_trim_mean_and_the_middle_half_by_hand(n: int) -> None:
    x = np.random.default_rng(n).normal(size=n) ** 3  # heavy tails: trimming matters
    cut = n // 4  # scipy trims int(0.25 n) from each end: n=6, 7 cut 1 (rounding would cut 2)
    by_hand = np.sort(x)[cut:n - cut].mean()
    assert st.interquartile_mean(x) == pytest.approx(by_hand, abs=1e-12)
    assert st.interquartile_mean(x) == pytest.approx(scipy.stats.trim_mean(x, 0.25), abs=1e-12)


def test_iqm_where_the_quartile_boundary_matters() -> None:
    # n = 6: one run cut from each end, so the middle four: (1 + 2 + 3 + 4) / 4
    assert st.interquartile_mean(np.array([100.0, 3, 0, 2, 4, 1])) == pytest.approx(2.5, abs=1e-12)


def brute_force_improvement(x: np.ndarray, y: np.ndarray) -> float:
    total = 0.0
    for xi in x:
        for yj in y:
            total += 1.0 if xi > yj else 0.5 if xi == yj else 0.0
    return total / (len(x) * len(y))


def test_probability_of_improvement_counts_ties_as_a_half() -> None:
    x, y = np.array([1.0, 2.0, 2.0, 3.0]), np.array([2.0, 2.0, 0.0])
    assert st.probability_of_improvement(x, y) == pytest.approx(brute_force_improvement(x, y),
                                                                abs=1e-12)
    assert brute_force_improvement(x, y) == pytest.approx(8 / 12)  # 1 + 2 + 2 + 3 = 8 of 12
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 4, 7).astype(float), rng.integers(0, 4, 5).astype(float)
    assert st.probability_of_improvement(a, b) == pytest.approx(brute_force_improvement(a, b))
    assert (st.probability_of_improvement(a, b) + st.probability_of_improvement(b, a)
            == pytest.approx(1.0, abs=1e-12))
    assert st.probability_of_improvement(a, a) == 0.5
    for first, second in ((x, y), (a, b), (b, a)):  # the bootstrap's vectorised twin
        assert st._improvement(first[:, None], second[:, None]) == pytest.approx(
            st.probability_of_improvement(first, second), abs=1e-12)


def test_performance_profile_counts_scores_strictly_above_tau() -> None:
    scores = np.array([0.2, 0.5, 0.5, 0.9])
    taus = np.array([0.0, 0.2, 0.5, 0.9, 1.0])
    profile = st.performance_profiles({"m": scores}, taus, REPS)["m"]["profile"]
    direct = [np.mean(scores > tau) for tau in taus]  # at tau = 0.5: 1/4, not 3/4 (>=)
    np.testing.assert_allclose(profile, direct, atol=1e-12)
    assert profile[2] == 0.25
    library, _ = st._rliable()
    np.testing.assert_allclose(st._fraction_above(scores[:, None], taus),
                               library.score_distributions(scores[:, None], taus), atol=1e-12)


def test_median_is_over_runs_not_rlibables_median_of_task_means() -> None:
    scores = np.array([0.0, 0.0, 0.0, 1.0])  # mean 0.25, median 0
    stats = st.aggregate_statistics({"m": scores}, REPS)["m"]
    assert stats["median"] == 0.0
    assert stats["mean"] == pytest.approx(0.25, abs=1e-12)
    assert stats["optimality_gap"] == pytest.approx(0.75, abs=1e-12)  # 1 - mean(min(x, 1))


def test_bootstrap_intervals_contain_the_estimate_and_shrink_with_more_runs() -> None:
    rng = np.random.default_rng(1)
    few, many = rng.normal(0.5, 0.2, 5), rng.normal(0.5, 0.2, 80)
    stats = st.aggregate_statistics({"few": few, "many": many}, REPS, seed=3)
    for label in ("few", "many"):
        for name in ("mean", "iqm", "median"):
            low, high = stats[label][f"{name}_ci"]
            assert low <= stats[label][name] <= high, (label, name)
    width = {k: stats[k]["iqm_ci"][1] - stats[k]["iqm_ci"][0] for k in stats}
    assert width["many"] < 0.5 * width["few"]
    again = st.aggregate_statistics({"few": few, "many": many}, REPS, seed=3)
    assert again == stats  # the bootstrap is seeded


def test_one_run_has_no_interval_and_does_not_crash() -> None:
    stats = st.aggregate_statistics({"alone": np.array([0.7])}, REPS)["alone"]
    assert stats["mean"] == 0.7 and stats["mean_ci"] is None and stats["iqm_ci"] is None
    p, ci = st.improvement_with_ci(np.array([0.7]), np.array([0.1, 0.9]), REPS)
    assert p == 0.5 and ci is None


def test_improvement_interval_contains_the_estimate() -> None:
    x, y = np.array([0.9, 0.8, 0.95, 0.4, 0.85]), np.array([0.5, 0.6, 0.9, 0.3])
    p, (low, high) = st.improvement_with_ci(x, y, REPS)
    assert p == pytest.approx(brute_force_improvement(x, y))
    assert 0 <= low <= p <= high <= 1


def test_curves_on_grid_interpolate_and_hold_the_last_value() -> None:
    short = (np.array([100.0, 200.0]), np.array([0.0, 10.0]))  # solved early, stopped
    long = (np.array([50.0, 150.0, 400.0]), np.array([1.0, 3.0, 8.0]))
    grid, values = st.curves_on_grid([short, long], points=4)
    np.testing.assert_allclose(grid, [100.0, 200.0, 300.0, 400.0])  # from the latest start
    np.testing.assert_allclose(values[0], [0.0, 10.0, 10.0, 10.0])
    np.testing.assert_allclose(values[1], [2.0, 3.0 + 5 * 50 / 250, 3.0 + 5 * 150 / 250, 8.0])


def test_learning_curve_band_is_the_iqm_at_each_point() -> None:
    values = np.random.default_rng(2).normal(size=(6, 5))
    iqm, low, high = st.learning_curve_band(values, REPS)
    by_hand = np.sort(values, axis=0)[1:5].mean(axis=0)  # n = 6: cut 1 at each end
    np.testing.assert_allclose(iqm, by_hand, atol=1e-12)
    assert np.all(low <= iqm + 1e-12) and np.all(iqm <= high + 1e-12)
    assert st.learning_curve_band(values[:1], REPS)[1] is None


# --- reading a sweep ------------------------------------------------------------------------


def test_methods_key_on_every_setting_and_never_mix_backends(tmp_path: Path) -> None:
    rows = [run_row("ppo", b, s, 100.0 * s, lr=lr, clip=0.2)
            for b in ("torch", "tf") for lr in (0.001, 0.01) for s in range(2)]
    rows.append({**run_row("ppo", "tf", 9, 500.0, lr=0.01, clip=0.2), "status": "failed",
                 "error": "ValueError: non-finite loss"})
    rows.append({**run_row("ppo", "torch", 8, 500.0, lr=0.01, clip=0.2), "status": "timeout"})
    results = rp.load_results(write_sweep(tmp_path / "sweep", rows))
    methods, excluded = st.group_methods(results, "final_mean_return")
    assert sorted(m.label for m in methods) == sorted(
        f"ppo {b} clip=0.2 lr={lr}" for b in ("torch", "tf") for lr in (0.001, 0.01))
    for m in methods:
        assert m.seeds == [0, 1] and all(f"-{m.backend}-" in r for r in m.run_ids)
        np.testing.assert_allclose(m.scores, [0.0, 100.0 / 500.0])  # CartPole-v1: / 500
    assert [(e["status"], e["reason"]) for e in excluded] == [
        ("failed", "ValueError: non-finite loss"), ("timeout", "timeout")]


def test_solved_is_a_metric_and_non_finite_scores_are_left_out(tmp_path: Path) -> None:
    rows = [{**run_row("ppo", "torch", s, score), "solved": score >= 475}
            for s, score in enumerate([480.0, 100.0, 490.0, float("inf")])]
    rows.append({**run_row("ppo", "torch", 9, 0.0), "status": "failed", "solved": None})
    results = rp.load_results(write_sweep(tmp_path / "sweep", rows))
    (solved,), _ = st.group_methods(results, "solved")
    np.testing.assert_allclose(solved.scores, [1.0, 0.0, 1.0, 1.0])  # a fraction solved: 3/4
    (method,), excluded = st.group_methods(results, "final_mean_return")
    assert method.seeds == [0, 1, 2]
    assert excluded[0] == {"run_id": "ppo-torch-s3", "status": "done",
                           "reason": "final_mean_return is inf"}


def test_differing_factor_ignores_settings_that_do_not_apply() -> None:
    a = st.Method("ppo", "torch", "CartPole-v1", {"lr": "0.001", "clip": "0.2"})
    b = st.Method("dqn", "torch", "CartPole-v1", {"lr": "0.001", "clip": ""})
    c = st.Method("ppo", "tf", "CartPole-v1", {"lr": "0.001", "clip": "0.2"})
    d = st.Method("ppo", "tf", "CartPole-v1", {"lr": "0.01", "clip": "0.2"})
    assert st.differing_factor(a, b) == "algorithm"
    assert st.differing_factor(a, c) == "backend"
    assert st.differing_factor(c, d) == "lr"
    assert st.differing_factor(a, d) is None  # backend and lr: not a one-factor comparison
    assert st.differing_factor(a, st.Method("ppo", "tf", "Acrobot-v1", a.settings)) is None
    pairs = st.comparison_pairs([c, a, b])
    assert [(x.backend, y.backend, f) for x, y, f in pairs] == [
        ("torch", "tf", "backend"), ("torch", "torch", "algorithm")]


def test_score_scale_only_for_return_metrics_of_known_envs() -> None:
    assert st.score_scale("CartPole-v1", "final_mean_return") == 500.0
    assert st.score_scale("CartPole-v1", "env_steps") is None
    assert st.score_scale("Acrobot-v1", "final_mean_return") is None


def test_bad_sweep_folders_get_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="sweep_dir: no folder"):
        rp.load_results(tmp_path / "absent")
    (tmp_path / "plain").mkdir()
    with pytest.raises(ValueError, match="not a sweep folder"):
        rp.load_results(tmp_path / "plain")
    (tmp_path / "started").mkdir()
    (tmp_path / "started" / "sweep.toml").write_text("")
    with pytest.raises(FileNotFoundError, match="no results.csv"):
        rp.load_results(tmp_path / "started")
    (tmp_path / "started" / "results.csv").write_text("run_id,seed\na,0\n")
    with pytest.raises(ValueError, match=r"missing \['algorithm', 'backend', 'status'\]"):
        rp.load_results(tmp_path / "started")


def test_unknown_metric_names_the_available_columns(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path / "sweep", [run_row("ppo", "torch", 0, 10.0)])
    with pytest.raises(ValueError, match=r"metric: .*'final_mean_return'.*got 'reward'"):
        rp.make_report(sweep, metric="reward", reps=REPS)
    with pytest.raises(ValueError, match="reps"):
        rp.make_report(sweep, reps=0)


# --- the whole report -----------------------------------------------------------------------


def test_report_writes_tables_json_and_figures(tmp_path: Path) -> None:
    rows = [run_row(a, b, s, score, lr=0.001)
            for a, base in (("ppo", 400.0), ("dqn", 300.0)) for b in ("torch", "tf")
            for s, score in enumerate(base + np.array([0.0, 50.0, -20.0, 10.0]))]
    rows.append(run_row("ppo", "torch", 0, 250.0, lr=0.01))  # one run: CI undefined
    rows.append({**run_row("dqn", "tf", 7, 0.0, lr=0.001), "status": "failed", "error": "boom"})
    curves = {rows[0]["run_id"]: ([100, 200], [5.0, 475.0])}  # solved early
    sweep = write_sweep(tmp_path / "sweep", rows, curves)
    report = rp.make_report(sweep, reps=REPS)
    out = sweep / "report"
    assert json.loads((out / "report.json").read_text())["metric"] == "final_mean_return"
    env = report["envs"][0]
    by_label = {m["method"]: m for m in env["methods"]}
    assert by_label["ppo torch lr=0.001"]["runs"] == 4
    assert by_label["ppo torch lr=0.001"]["mean"] == pytest.approx(410.0 / 500.0)
    assert by_label["ppo torch lr=0.01"]["mean_ci"] is None
    factors = {(c["x"], c["y"]): c["factor"] for c in env["comparisons"]}
    assert factors[("ppo torch lr=0.001", "ppo tf lr=0.001")] == "backend"
    assert factors[("ppo torch lr=0.001", "dqn torch lr=0.001")] == "algorithm"
    assert factors[("ppo torch lr=0.001", "ppo torch lr=0.01")] == "lr"
    assert factors[("dqn torch lr=0.001", "dqn tf lr=0.001")] == "backend"
    for c in env["comparisons"]:
        x = by_label[c["x"]]["scores"]
        y = by_label[c["y"]]["scores"]
        assert c["p"] == pytest.approx(brute_force_improvement(np.array(x), np.array(y)))
    text = (out / "report.md").read_text()
    assert "| ppo torch lr=0.01 | 1 | 0.500 [n/a: 1 run]" in text
    assert "| dqn-tf-s7-lr0.001 | failed | boom |" in text
    for name in ("aggregates", "performance_profile", "probability_of_improvement",
                 "learning_curves"):
        assert (out / f"{name}.png").stat().st_size > 1000, name
    again = rp.make_report(sweep, reps=REPS, out=tmp_path / "again")
    first, second = (json.loads((d / "report.json").read_text()) for d in (out, tmp_path / "again"))
    for env_first, env_second in zip(first["envs"], second["envs"]):
        assert env_first.pop("figures") != env_second.pop("figures")  # other folders
    assert first == second  # the same seed, the same report
    assert again["envs"][0]["methods"] == env["methods"]


def test_each_environment_gets_its_own_tables_and_figures(tmp_path: Path) -> None:
    import pandas as pd

    rows = [{**run_row("ppo", "torch", s, 100.0 + s), "env": env}
            for env in ("CartPole-v1", "Acrobot-v1") for s in range(2)]
    rows = [{**r, "run_id": f"{r['run_id']}-{r['env']}"} for r in rows]
    rows += [{**run_row("rlhf-rloo", "torch", s, 0.0), "command": "rlhf train", "env": "",
              "final_reward": 0.5 + 0.1 * s, "run_dir": f"runs/rloo{s}"} for s in range(2)]
    sweep = write_sweep(tmp_path / "sweep", rows)
    for s in range(2):  # an RLHF log: reward against update, no env_steps
        pd.DataFrame({"update": [1, 2, 3], "reward": [0.1, 0.2 + s, 0.3]}).to_csv(
            sweep / f"runs/rloo{s}/log.csv", index=False)
    report = rp.make_report(sweep, reps=REPS)
    by_env = {e["env"]: e for e in report["envs"]}
    assert sorted(by_env) == ["", "Acrobot-v1", "CartPole-v1"]
    assert by_env["CartPole-v1"]["scale"] == 500.0 and by_env["Acrobot-v1"]["scale"] is None
    np.testing.assert_allclose(by_env["Acrobot-v1"]["methods"][0]["scores"], [100.0, 101.0])
    assert "optimality_gap" not in by_env["Acrobot-v1"]["methods"][0]  # needs a normaliser
    assert by_env["CartPole-v1"]["comparisons"] == []  # other envs are not compared
    np.testing.assert_allclose(by_env[""]["curves"]["rlhf-rloo torch"]["iqm"][[0, -1]],
                               [0.1, 0.3])
    assert Path(by_env["Acrobot-v1"]["figures"]["aggregates"]).name == "Acrobot-v1-aggregates.png"
    assert Path(by_env[""]["figures"]["learning_curves"]).name == "all-learning_curves.png"
    assert (sweep / "report" / "all-learning_curves.png").is_file()


def test_a_sweep_whose_runs_all_failed_reports_them(tmp_path: Path) -> None:
    rows = [{**run_row("ppo", "torch", s, 0.0), "status": "failed", "error": f"boom {s}"}
            for s in range(2)]
    report = rp.make_report(write_sweep(tmp_path / "sweep", rows), reps=REPS)
    assert report["envs"] == [] and len(report["excluded"]) == 2
    text = (tmp_path / "sweep" / "report" / "report.md").read_text()
    assert "nothing to aggregate" in text and "| ppo-torch-s1 | failed | boom 1 |" in text


def test_repeated_seeds_and_awkward_errors_are_reported_readably(tmp_path: Path) -> None:
    rows = [run_row("ppo", "torch", 0, 100.0), {**run_row("ppo", "torch", 0, 200.0),
                                               "run_id": "ppo-torch-s0-again"},
            {**run_row("ppo", "tf", 1, 0.0), "status": "failed", "error": "a | b\nc"}]
    report = rp.make_report(write_sweep(tmp_path / "sweep", rows), reps=REPS)
    assert "seed(s) [0] appear more than once" in report["envs"][0]["notes"][0]
    text = (tmp_path / "sweep" / "report" / "report.md").read_text()
    assert "| ppo-tf-s1 | failed | a \\| b c |" in text  # one table row, the pipe escaped


def test_cli_report(tmp_path: Path, capsys) -> None:
    from duetrl.core.cli import main

    sweep = write_sweep(tmp_path / "sweep", [run_row("ppo", b, s, 100.0 + s)
                                             for b in ("torch", "tf") for s in range(3)])
    assert main(["report", str(sweep), "--reps", "50", "--json", "--out",
                 str(tmp_path / "out")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["reps"] == 50 and (tmp_path / "out" / "report.md").is_file()
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "sweep_dir: no folder" in capsys.readouterr().err
    assert main(["report", str(sweep), "--metric", "nope"]) == 2
    assert "metric:" in capsys.readouterr().err
    assert main(["report", str(sweep), "--reps", "50"]) == 0
    assert "| ppo torch | 3 |" in capsys.readouterr().out  # the markdown table


# --- LM-agent sweeps: success rate as the score and as the learning curve --------------------


def write_agent_sweep(root: Path, final: dict[str, list[float]]) -> Path:
    """A synthetic ``duetrl agent train`` sweep (sweeps/lm_agent.toml's shape): results.csv
    with the summary's success rates and no return; each run's log.csv as core/agents/train.py
    writes it (update, env_steps, success_rate, episode_return, entropy, ...)."""
    import pandas as pd

    root.mkdir(parents=True, exist_ok=True)
    (root / "sweep.toml").write_text("# synthetic LM-agent sweep for tests\n")
    rows = []
    for policy, finals in final.items():
        for seed, rate in enumerate(finals):
            run_id = f"{policy}-torch-s{seed}"
            rows.append({"run_id": run_id, "command": "agent train", "algorithm": "agent",
                         "backend": "torch", "seed": seed, "env": "duetrl/KeyDoor-v0",
                         "status": "done", "attempts": 1, "wall_s": 1.0, "error": "",
                         "success_rate": rate, "sampled_success_rate": rate / 2,
                         "heldout_success_rate": rate / 4, "setting.policy": policy,
                         "run_dir": f"runs/{run_id}"})
            updates = np.arange(1, 5)
            run = root / "runs" / run_id
            run.mkdir(parents=True)
            pd.DataFrame({"update": updates, "env_steps": 40 * updates + seed,  # x differs
                          "success_rate": rate * updates / 4, "episode_return": 2 * updates,
                          "entropy": 1.0 / updates}).to_csv(run / "log.csv", index=False)
    pd.DataFrame(rows).to_csv(root / "results.csv", index=False)
    return root


AGENT_FINALS = {"lm": [1.0, 0.75, 1.0, 0.5, 0.875], "mlp": [0.25, 0.5, 0.0, 0.25, 0.125]}


def test_agent_sweeps_score_and_draw_the_success_rate(tmp_path: Path) -> None:
    sweep = write_agent_sweep(tmp_path / "sweep", AGENT_FINALS)
    report = rp.make_report(sweep, reps=REPS)  # no final_mean_return: success_rate, both
    assert report["metric"] == "success_rate" and report["curve"] == "success_rate"
    (env,) = report["envs"]
    assert env["scale"] == 1.0  # a fraction: not rescaled, the optimality gap kept
    by_label = {m["method"]: m for m in env["methods"]}
    lm, mlp = by_label["agent torch policy=lm"], by_label["agent torch policy=mlp"]
    np.testing.assert_allclose(lm["scores"], AGENT_FINALS["lm"])
    np.testing.assert_allclose(mlp["scores"], AGENT_FINALS["mlp"])
    assert lm["iqm"] == pytest.approx(scipy.stats.trim_mean(AGENT_FINALS["lm"], 0.25))
    assert lm["optimality_gap"] == pytest.approx(1 - np.mean(AGENT_FINALS["lm"]))
    (comparison,) = env["comparisons"]
    assert comparison["factor"] == "policy" and comparison["p"] == pytest.approx(
        brute_force_improvement(np.array(AGENT_FINALS["lm"]), np.array(AGENT_FINALS["mlp"])))
    # the curves: IQM over seeds of each run's success_rate against env_steps, with bands
    curve = env["curves"]["agent torch policy=lm"]
    assert curve["x"][0] == 44 and curve["x"][-1] == 164  # the latest start, the longest end
    last = scipy.stats.trim_mean(AGENT_FINALS["lm"], 0.25)  # every run at its last point
    assert curve["iqm"][-1] == pytest.approx(last)
    assert np.all(curve["low"] <= curve["iqm"] + 1e-12) and np.all(curve["iqm"] <= curve["high"]
                                                                   + 1e-12)
    assert Path(env["figures"]["learning_curves"]).stat().st_size > 1000
    text = (sweep / "report" / "report.md").read_text()
    assert "Scores are `success_rate`, a fraction of episodes" in text
    assert "Learning curves: log.csv's `success_rate`" in text
    assert "| agent torch policy=lm | 5 | 0.825 " in text


def test_the_metric_and_the_curve_can_be_chosen(tmp_path: Path, capsys) -> None:
    from duetrl.core.cli import main

    sweep = write_agent_sweep(tmp_path / "sweep", AGENT_FINALS)
    report = rp.make_report(sweep, metric="heldout_success_rate", reps=REPS, curve="entropy")
    (env,) = report["envs"]
    np.testing.assert_allclose(env["methods"][0]["scores"], np.array(AGENT_FINALS["lm"]) / 4)
    curve = env["curves"]["agent torch policy=lm"]
    assert report["curve"] == "entropy" and curve["y_name"] == "entropy"
    assert curve["iqm"][-1] == pytest.approx(0.25)  # 1 / update at the last update
    assert rp.curve_column("sampled_success_rate") == "success_rate"  # a success rate: its curve
    assert rp.curve_column("final_mean_return") is None  # the first of CURVE_COLUMNS a log has
    with pytest.raises(ValueError, match=r"curve: .*'entropy'.*got 'loss'"):
        rp.make_report(sweep, reps=REPS, curve="loss")
    assert main(["report", str(sweep), "--reps", "50", "--curve", "episode_return", "--json",
                 "--out", str(tmp_path / "cli")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["metric"] == "success_rate" and printed["curve"] == "episode_return"
    assert main(["report", str(sweep), "--curve", "nope"]) == 2
    assert "curve: expected a column of the runs' log.csv" in capsys.readouterr().err
    # an RL sweep keeps its return (and its curve); a sweep with neither names its columns
    rl = write_sweep(tmp_path / "rl", [run_row("ppo", "torch", s, 100.0) for s in range(2)])
    assert rp.resolve_metric(rp.load_results(rl)) == "final_mean_return"
    assert rp.read_curve(rl / "runs" / "ppo-torch-s0")[2:] == ("env_steps", "mean_return")
    bare = write_sweep(tmp_path / "bare", [{**run_row("ppo", "torch", 0, 1.0),
                                            "final_mean_return": "", "env_steps": 5}])
    with pytest.raises(ValueError, match=r"metric: results.csv has none of .*'env_steps'"):
        rp.make_report(bare, reps=REPS)
