"""``duetrl sweep``: the sweep file is checked line by line; runs go through Ray (and the
sequential loop) into one table; a killed run is retried from its checkpoint; a run over its
time limit is reported; ``--resume`` skips finished runs; a bad ``--address`` fails fast.

The runs are tiny REINFORCE runs on CartPole-v1 (a child process each: most of their seconds
are Python and framework imports). One local Ray session serves every test here.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from duetrl.core.cli import build_parser, main
from duetrl.core.scale.sweep import BASE_COLUMNS, PID_FILE, run_sweep
from duetrl.core.scale.sweep_file import load_sweep

pytestmark = pytest.mark.xdist_group("ray")  # every Ray test on one xdist worker (conftest.py)

TINY = """\
[sweep]
seeds = 2
backends = {backends}
max_retries = 1

[[run]]
command = "train reinforce"
env = "CartPole-v1"
total-steps = 600
num-envs = 4
"""

LONG_RUN = """
[[run]]
command = "train reinforce"
name = "long"
backends = ["torch"]
seeds = [0]
total-steps = 40000
num-envs = 4
checkpoint-every = 1
"""
"""About 100 updates, a checkpoint after each: a run that can be killed mid-way."""


PARSER = build_parser()
"""The command line's parser, handed to the sweep-file loader as ``duetrl sweep`` hands it."""


def write(tmp_path: Path, text: str, name: str = "sweep.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray")
    # a Ray of its own: never the cluster tests/test_sweep_cluster.py may be running beside it
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def kill_at_first_checkpoint(run_dir: Path, killed: list[int]) -> threading.Thread:
    """SIGKILL the run's child (by the pid its runner records) once its first checkpoint exists."""

    def watch() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if (run_dir / "checkpoint.safetensors").is_file() and (run_dir / PID_FILE).is_file():
                try:
                    pid = int((run_dir / PID_FILE).read_text().split()[0])
                    os.kill(pid, signal.SIGKILL)
                except (OSError, ValueError):
                    continue
                killed.append(pid)
                return
            time.sleep(0.01)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


# --- the sweep file ------------------------------------------------------------------------

GRID = """\
[sweep]
seeds = 3
backends = ["torch", "tf"]
time_limit_s = 60

[[run]]
command = "train ppo"
total-steps = 5000
[run.grid]
learning-rate = [0.001, 0.0003]
normalize-advantages = [true, false]

[[run]]
command = "train dqn"
seeds = [4, 7]
backends = ["tf"]
max_retries = 0
"""


def test_grid_expands_to_blocks_x_points_x_backends_x_seeds(tmp_path) -> None:
    plan = load_sweep(write(tmp_path, GRID), PARSER)
    assert len(plan.runs) == 2 * 2 * 2 * 3 + 2
    first = plan.runs[0]
    assert first.run_id == "ppo-torch-s0-learning-rate0.001-normalize-advantagestrue"
    assert first.argv == (
        "train",
        "ppo",
        "--total-steps",
        "5000",
        "--learning-rate",
        "0.001",
        "--normalize-advantages",
    )
    assert (first.algorithm, first.backend, first.seed, first.line) == ("ppo", "torch", 0, 6)
    second_point = plan.runs[6]  # seeds innermost, then backends, then grid points
    assert second_point.argv[-1] == "--no-normalize-advantages"
    assert [r.seed for r in plan.runs[:3]] == [0, 1, 2]
    assert [r.backend for r in plan.runs[:6]] == ["torch"] * 3 + ["tf"] * 3
    dqn = plan.runs[-2:]
    assert [(r.run_id, r.seed, r.backend, r.max_retries, r.line) for r in dqn] == [
        ("dqn-tf-s4", 4, "tf", 0, 13),
        ("dqn-tf-s7", 7, "tf", 0, 13),
    ]
    assert first.max_retries == 1 and first.time_limit_s == 60.0 and plan.threads_per_run == 1
    assert plan.setting_names() == ["learning-rate", "normalize-advantages"]


def test_a_setting_is_a_column_when_it_differs_within_one_algorithm(tmp_path) -> None:
    two_ppo = GRID + '\n[[run]]\ncommand = "train ppo"\nname = "ppo-wide"\nhidden-dim = 256\n'
    plan = load_sweep(write(tmp_path, two_ppo), PARSER)
    assert plan.setting_names() == [
        "hidden-dim",
        "learning-rate",
        "normalize-advantages",
        "total-steps",
    ]
    assert plan.runs[-1].run_id == "ppo-wide-tf-s2"


def test_command_line_values_override_the_file(tmp_path) -> None:
    plan = load_sweep(
        write(tmp_path, GRID), PARSER, threads_per_run=2, max_retries=3, time_limit_s=5
    )
    assert plan.threads_per_run == 2
    assert {(r.max_retries, r.time_limit_s) for r in plan.runs} == {(3, 5.0)}


def toy_parser() -> argparse.ArgumentParser:
    """A command line that is not duetrl's: ``toy fit`` takes the managed flags and ``--rate``."""
    root = argparse.ArgumentParser(prog="toy")
    commands = root.add_subparsers(dest="command", required=True)
    fit = commands.add_parser("fit").add_subparsers(dest="algorithm", required=True)
    line = fit.add_parser("line")
    for flag in ("--out", "--seed", "--backend", "--threads"):
        line.add_argument(flag)
    for flag in ("--quiet", "--json", "--resume"):
        line.add_argument(flag, action="store_true")
    line.add_argument("--rate", type=float, default=0.1)
    commands.add_parser("show")  # no managed flags: not sweepable
    return root


def test_the_loader_checks_runs_with_the_parser_it_is_handed(tmp_path) -> None:
    toy = '[sweep]\nseeds = 2\n\n[[run]]\ncommand = "fit line"\n[run.grid]\nrate = [0.5, 1]\n'
    plan = load_sweep(write(tmp_path, toy), toy_parser())
    assert [r.run_id for r in plan.runs] == [
        "line-torch-s0-rate0.5",
        "line-torch-s1-rate0.5",
        "line-torch-s0-rate1",
        "line-torch-s1-rate1",
    ]
    assert plan.runs[0].argv == ("fit", "line", "--rate", "0.5")
    # its mistakes are reported against that parser: file:line and "did you mean"
    path = write(tmp_path, toy.replace("rate = [", "rat = ["), "typo.toml")
    with pytest.raises(
        ValueError,
        match=rf"^{path}:7: unknown setting 'rat' for 'fit line'; "
        r"did you mean 'rate'\?",
    ):
        load_sweep(path, toy_parser())
    path = write(tmp_path, toy.replace("fit line", "train ppo"), "theirs.toml")
    with pytest.raises(ValueError, match=rf"^{path}:5: unknown command 'train'.*choose from fit"):
        load_sweep(path, toy_parser())  # duetrl's commands are not known to another parser
    with pytest.raises(ValueError, match="parser: expected the command line's root parser"):
        load_sweep(write(tmp_path, toy), argparse.ArgumentParser())


@pytest.mark.parametrize(
    "change, line, message",
    [
        (("train ppo", "train ppx"), 7, "unknown algorithm 'ppx'"),
        (("train ppo", "trian ppo"), 7, "unknown command 'trian'"),
        (("train ppo", "rlhf sample"), 7, "cannot be swept"),
        (("total-steps = 5000", "total_steps = 5000"), 8, "did you mean 'total-steps'"),
        (("total-steps = 5000", "clip = 0.2"), 8, "unknown setting 'clip'"),
        (("total-steps = 5000", "total-steps = 5e3"), 8, "invalid int value: '5000.0'"),
        (("total-steps = 5000", "total-steps = [1, 2]"), 8, "lists go in [run.grid]"),
        (("total-steps = 5000", "seed = 3"), 8, "use seeds instead"),
        (("learning-rate = [0.001, 0.0003]", "learning-rate = 0.001"), 10, "non-empty list"),
        (("learning-rate = [0.001, 0.0003]", 'learning-rate = ["x"]'), 10, "invalid float"),
        (("seeds = 3", 'seeds = "three"'), 2, "seeds: expected"),
        (("seeds = 3", "seeds = 0"), 2, "seeds: expected"),
        (("seeds = [4, 7]", "seeds = [4, 4]"), 15, "seeds: expected"),
        (('backends = ["tf"]', 'backends = ["jax"]'), 16, "backends: expected"),
        (("time_limit_s = 60", "time_limit_s = 0"), 4, "time_limit_s: expected"),
        (("time_limit_s = 60", "time_limit = 60"), 4, "unknown key 'time_limit'"),
        (("max_retries = 0", "max_retries = -1"), 17, "max_retries: expected an integer >= 0"),
    ],
)
def test_a_mistake_is_reported_with_its_line(tmp_path, change, line, message) -> None:
    old, new = change
    assert old in GRID
    path = write(tmp_path, GRID.replace(old, new, 1))
    with pytest.raises(ValueError) as error:
        load_sweep(path, PARSER)
    assert str(error.value).startswith(f"{path}:{line}: ")
    assert message in str(error.value)


def test_unknown_environment_and_duplicate_runs_are_reported(tmp_path) -> None:
    path = write(tmp_path, TINY.format(backends='["torch"]').replace("CartPole-v1", "Nope-v0"))
    with pytest.raises(ValueError, match=rf"^{path}:8: env: unknown environment id 'Nope-v0'"):
        load_sweep(path, PARSER)
    twice = TINY.format(backends='["torch"]') + '\n[[run]]\ncommand = "train reinforce"\n'
    with pytest.raises(
        ValueError,
        match=r":12: run id 'reinforce-torch-s0' is also made by the "
        r"block at line 6",
    ):
        load_sweep(write(tmp_path, twice, "twice.toml"), PARSER)


def test_missing_file_bad_toml_and_no_runs(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="sweep file: no file at"):
        load_sweep(tmp_path / "none.toml", PARSER)
    with pytest.raises(ValueError, match="not valid TOML"):
        load_sweep(write(tmp_path, "[sweep\nseeds = 1\n"), PARSER)
    with pytest.raises(ValueError, match=r"no \[\[run\]\] block"):
        load_sweep(write(tmp_path, "[sweep]\nseeds = 1\n"), PARSER)


def test_cli_names_the_line_of_an_unknown_algorithm(tmp_path, capsys) -> None:
    path = write(tmp_path, GRID.replace("train dqn", "train dqm"))
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    assert f"{path}:14: unknown algorithm 'dqm'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_unreachable_address_fails_fast_and_writes_nothing(tmp_path, capsys, monkeypatch) -> None:
    from duetrl.core.scale import cluster

    monkeypatch.setattr(cluster, "outward_address", lambda: None)  # stay on the loopback
    path = write(tmp_path, TINY.format(backends='["torch"]'))
    start = time.monotonic()
    status = main(["sweep", str(path), "--out", str(tmp_path / "out"), "--address", "127.0.0.1:1"])
    assert time.monotonic() - start < 10
    assert status == 2
    assert "--address: no Ray cluster answers at '127.0.0.1:1'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="expected HOST:PORT"):
        run_sweep(load_sweep(path, PARSER), tmp_path / "out", address="headnode")


# --- running sweeps ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_sweep(ray_session, tmp_path_factory):
    """2 seeds x 2 backends of a tiny REINFORCE run through Ray."""
    folder = tmp_path_factory.mktemp("ray_sweep")
    plan = load_sweep(write(folder, TINY.format(backends='["torch", "tf"]')), PARSER)
    outcome = run_sweep(plan, folder / "out", progress=False)
    return plan, outcome, folder / "out"


def test_ray_sweep_writes_every_run_folder_and_the_table(ray_sweep) -> None:
    plan, outcome, out = ray_sweep
    assert (outcome["executor"], outcome["runs"], outcome["done"]) == ("ray", 4, 4)
    rows = read_csv(out / "results.csv")
    assert [r["run_id"] for r in rows] == [
        "reinforce-torch-s0",
        "reinforce-torch-s1",
        "reinforce-tf-s0",
        "reinforce-tf-s1",
    ]
    assert list(rows[0])[: len(BASE_COLUMNS)] == list(BASE_COLUMNS)
    assert list(rows[0])[-1] == "run_dir"
    for row in rows:
        run_dir = out / row["run_dir"]
        summary = json.loads((run_dir / "summary.json").read_text())
        assert (row["status"], row["attempts"], row["error"]) == ("done", "1", "")
        assert (row["backend"], int(row["seed"])) == (summary["backend"], summary["seed"])
        assert float(row["final_mean_return"]) == pytest.approx(summary["final_mean_return"])
        assert int(row["env_steps"]) == summary["env_steps"] >= 600
        assert (run_dir / "log.csv").is_file() and (run_dir / "checkpoint.safetensors").is_file()
        assert not (run_dir / PID_FILE).exists()
    assert (out / "sweep.toml").read_text() == plan.path.read_text()
    pandas = pytest.importorskip("pandas")
    table = pandas.read_parquet(out / "results.parquet")
    assert list(table.columns) == list(rows[0]) and len(table) == 4
    assert table["seed"].tolist() == [0, 1, 0, 1]


def test_sequential_loop_gives_the_same_table_as_ray(ray_sweep, tmp_path) -> None:
    _, outcome, _ = ray_sweep
    plan = load_sweep(write(tmp_path, TINY.format(backends='["torch"]')), PARSER)
    sequential = run_sweep(plan, tmp_path / "out", executor="sequential", progress=False)
    assert sequential["executor"] == "sequential"
    through_ray = {row["run_id"]: row for row in outcome["rows"]}
    for row in sequential["rows"]:
        same = through_ray[row["run_id"]]
        for key in ("status", "env_steps", "episodes", "updates", "final_mean_return"):
            assert row[key] == same[key], key


def test_a_killed_run_is_retried_from_its_checkpoint(ray_session, tmp_path) -> None:
    plan = load_sweep(write(tmp_path, "[sweep]\nmax_retries = 1\n" + LONG_RUN), PARSER)
    run_dir = tmp_path / "out" / "runs" / "long-torch-s0"
    killed: list[int] = []
    watcher = kill_at_first_checkpoint(run_dir, killed)
    outcome = run_sweep(plan, tmp_path / "out", progress=False)
    watcher.join()
    assert len(killed) == 1
    (row,) = outcome["rows"]
    assert (row["status"], row["attempts"], row["error"]) == ("done", 2, "")
    attempts = [line for line in (run_dir / "sweep.log").read_text().splitlines() if ": /" in line]
    assert len(attempts) == 2
    assert not attempts[0].endswith("--resume") and attempts[1].endswith("--resume")
    assert "attempt 1: failed killed by SIGKILL" in (run_dir / "sweep.log").read_text()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["env_steps"] >= 40000 or summary["solved"]


def test_a_run_over_its_time_limit_is_reported_and_the_others_kept(ray_session, tmp_path) -> None:
    text = TINY.format(backends='["torch"]').replace("seeds = 2", "seeds = 1") + LONG_RUN.replace(
        "checkpoint-every = 1", "time_limit_s = 1.5"
    )
    outcome = run_sweep(load_sweep(write(tmp_path, text), PARSER), tmp_path / "out", progress=False)
    rows = {row["run_id"]: row for row in read_csv(tmp_path / "out" / "results.csv")}
    assert rows["reinforce-torch-s0"]["status"] == "done"
    slow = rows["long-torch-s0"]
    assert (slow["status"], slow["attempts"]) == ("timeout", "1")
    assert slow["error"].startswith("timed out: still running after time_limit_s = 1.5 s")
    assert 1.5 <= float(slow["wall_s"]) < 30
    assert (outcome["done"], outcome["timeout"]) == (1, 1)
    assert (
        main(
            [
                "sweep",
                str(tmp_path / "sweep.toml"),
                "--out",
                str(tmp_path / "out"),
                "--sequential",
                "--quiet",
                "--json",
                "--resume",
                "--time-limit",
                "1",
            ]
        )
        == 1
    )


def test_resume_skips_finished_runs_and_continues_an_interrupted_one(ray_session, tmp_path) -> None:
    text = TINY.format(backends='["torch"]').replace("seeds = 2", "seeds = 1") + LONG_RUN
    path = write(tmp_path, text.replace("max_retries = 1", "max_retries = 0"))
    out = tmp_path / "out"
    long_dir, short_dir = out / "runs" / "long-torch-s0", out / "runs" / "reinforce-torch-s0"
    killed: list[int] = []
    watcher = kill_at_first_checkpoint(long_dir, killed)
    first = run_sweep(load_sweep(path, PARSER), out, progress=False)
    watcher.join()
    assert [(r["status"], r["error"]) for r in first["rows"]] == [
        ("done", ""),
        ("failed", "killed by SIGKILL"),
    ]
    with pytest.raises(ValueError, match="already holds a sweep; pass --resume"):
        run_sweep(load_sweep(path, PARSER), out, progress=False)
    finished_at = (short_dir / "summary.json").stat().st_mtime_ns
    short_log = (short_dir / "sweep.log").read_text()

    second = run_sweep(
        load_sweep(path, PARSER), out, executor="sequential", resume=True, progress=False
    )
    assert (second["skipped"], second["done"]) == (1, 2)
    assert (short_dir / "summary.json").stat().st_mtime_ns == finished_at
    assert (short_dir / "sweep.log").read_text() == short_log  # no child started for it
    last_attempt = (long_dir / "sweep.log").read_text().splitlines()[-2]
    assert last_attempt.endswith("--resume")
    rows = read_csv(out / "results.csv")
    assert [(r["run_id"], r["status"]) for r in rows] == [
        ("reinforce-torch-s0", "done"),
        ("long-torch-s0", "done"),
    ]


def test_table_columns_and_a_mixed_column_in_parquet(tmp_path) -> None:
    from duetrl.core.scale.sweep import write_results

    plan = load_sweep(write(tmp_path, GRID), PARSER)
    rows = []
    for run, extra in (
        (plan.runs[0], {"final_mean_return": 20.5, "note": "a"}),
        (plan.runs[6], {"final_mean_return": 21, "note": 3}),
    ):
        rows.append(
            {
                "run_id": run.run_id,
                "command": run.command,
                "algorithm": run.algorithm,
                "backend": run.backend,
                "seed": run.seed,
                "env": run.env,
                "status": "done",
                "attempts": 1,
                "wall_s": 1.0,
                "error": "",
                **extra,
                "settings": run.settings,
                "argv": list(run.argv),
                "run_dir": f"runs/{run.run_id}",
            }
        )
    write_results(tmp_path, plan, rows)
    table = read_csv(tmp_path / "results.csv")
    assert list(table[0]) == [
        *BASE_COLUMNS,
        "final_mean_return",
        "note",
        "setting.learning-rate",
        "setting.normalize-advantages",
        "run_dir",
    ]
    assert [r["setting.normalize-advantages"] for r in table] == ["True", "False"]
    pandas = pytest.importorskip("pandas")
    frame = pandas.read_parquet(tmp_path / "results.parquet")
    assert frame["note"].tolist() == ["a", "3"]  # strings and numbers: stored as strings
    assert frame["final_mean_return"].tolist() == [20.5, 21.0]
    assert frame["setting.learning-rate"].tolist() == [0.001, 0.001]


def test_child_command_line_environment_and_printed_summary(tmp_path) -> None:
    from duetrl.core.scale.run_job import (
        THREAD_VARIABLES,
        RunJob,
        _json_printed,
        child_argv,
        child_environment,
    )

    text = GRID.replace("total-steps = 5000", "total-steps = 5000\ntensorboard = false")
    plan = load_sweep(write(tmp_path, text), PARSER, threads_per_run=3)
    job = RunJob(plan.runs[0], str(tmp_path), 3, str(tmp_path))
    argv = child_argv(job, resume=False)
    assert argv[1:3] == ["-m", "duetrl"] and "--tensorboard" not in argv
    assert argv[3:] == [
        *plan.runs[0].argv,
        "--out",
        str(tmp_path / "runs" / job.spec.run_id),
        "--seed",
        "0",
        "--backend",
        "torch",
        "--threads",
        "3",
        "--quiet",
        "--json",
    ]
    assert child_argv(job, resume=True)[-1] == "--resume"
    environment = child_environment(3)
    assert {name: environment[name] for name in THREAD_VARIABLES} == dict.fromkeys(
        THREAD_VARIABLES, "3"
    )
    out = tmp_path / "stdout.txt"
    out.write_text('old {"x": 0}\nduetrl: note\n{\n  "solved": true\n}\n')
    assert _json_printed(out, len('old {"x": 0}\n')) == {"solved": True}
    assert _json_printed(out, out.stat().st_size) is None


def test_bad_input_in_a_run_fails_once_with_its_message(tmp_path) -> None:
    text = (
        '[sweep]\nmax_retries = 2\n\n[[run]]\ncommand = "rlhf train"\n'
        'reference-checkpoint = "no/such/reference.safetensors"\nupdates = 1\n'
    )
    outcome = run_sweep(
        load_sweep(write(tmp_path, text), PARSER), tmp_path / "out", "sequential", progress=False
    )
    (row,) = outcome["rows"]
    assert (row["status"], row["attempts"]) == ("failed", 1)  # exit status 2: not retried
    assert row["error"].startswith(
        "exit status 2: duetrl: error: --reference-checkpoint: no "
        "file at 'no/such/reference.safetensors'"
    )
    assert read_csv(tmp_path / "out" / "results.csv")[0]["status"] == "failed"


# --- one run's retries and time budget, with a scripted child and clock ----------------------


class ScriptedChild:
    """Stands in for run_job's child process and clock: attempt k lasts ``outcomes[k][0]``
    seconds of a fake clock and ends with status ``outcomes[k][1]`` (None: killed at its
    limit, which then is all the time it had). Records each attempt's limit and --resume."""

    def __init__(self, outcomes, checkpoint=False, summary=False, printed=None) -> None:
        self.outcomes, self.checkpoint, self.summary, self.printed = (
            outcomes,
            checkpoint,
            summary,
            printed,
        )
        self.now, self.limits, self.resumed = 1000.0, [], []  # a clock does not start at 0

    def monotonic(self) -> float:
        return self.now

    def run(self, job, argv, limit_s, on_child_start):
        seconds, code = self.outcomes[len(self.limits)]
        self.limits.append(limit_s)
        self.resumed.append(argv[-1] == "--resume")
        self.now += limit_s if code is None else seconds
        if self.checkpoint:
            (job.run_dir / "checkpoint.safetensors").write_text("weights")
        if code == 0 and self.summary:
            (job.run_dir / "summary.json").write_text('{"solved": true}')
        return code, "boom" if code else "", self.printed


def scripted_run(monkeypatch, tmp_path, child, max_retries, time_limit_s=None, resume=False):
    from types import SimpleNamespace

    from duetrl.core.scale import run_job as module
    from duetrl.core.scale.sweep_file import RunSpec

    monkeypatch.setattr(module, "_run_child", child.run)
    monkeypatch.setattr(
        module, "time", SimpleNamespace(monotonic=child.monotonic, strftime=time.strftime)
    )
    spec = RunSpec(
        "r",
        "train reinforce",
        "reinforce",
        "torch",
        0,
        "CartPole-v1",
        ("train", "reinforce"),
        {},
        max_retries,
        time_limit_s,
        1,
    )
    job = module.RunJob(spec, str(tmp_path), 1, str(tmp_path), resume)
    return module.run_job(job), (tmp_path / "runs" / "r" / "sweep.log").read_text()


def test_scripted_retries_share_one_time_budget(monkeypatch, tmp_path) -> None:
    """time_limit_s = 10 for all attempts together: 4 s spent, then 5 s, leaves 1 s."""
    child = ScriptedChild([(4.0, 1), (5.0, 1), (None, None)])
    row, _ = scripted_run(monkeypatch, tmp_path, child, max_retries=3, time_limit_s=10)
    assert child.limits == [10.0, 6.0, 1.0]
    assert (row["status"], row["attempts"], row["wall_s"]) == ("timeout", 3, 10.0)
    assert row["error"].startswith("timed out: still running after time_limit_s = 10 s")


def test_scripted_budget_spent_to_the_second_starts_no_attempt(monkeypatch, tmp_path) -> None:
    child = ScriptedChild([(10.0, 1)])
    row, log = scripted_run(monkeypatch, tmp_path, child, max_retries=2, time_limit_s=10)
    assert child.limits == [10.0]  # 0 s left: no child gets a zero time limit
    assert (row["status"], row["attempts"]) == ("timeout", 1)
    assert log.count("attempt 2") == 0


@pytest.mark.parametrize("checkpoint", [True, False])
def test_scripted_failures_are_retried_max_retries_times(monkeypatch, tmp_path, checkpoint) -> None:
    child = ScriptedChild([(1.0, 1)] * 3, checkpoint=checkpoint)
    row, log = scripted_run(monkeypatch, tmp_path, child, max_retries=2)
    assert child.limits == [None] * 3
    assert child.resumed == [False, checkpoint, checkpoint]  # --resume needs a checkpoint
    assert (row["status"], row["attempts"]) == ("failed", 3)
    assert row["error"] == "exit status 1: boom (after 3 attempts)"
    assert "attempt 3: failed exit status 1: boom" in log


def test_scripted_bad_input_success_and_a_silent_exit(monkeypatch, tmp_path) -> None:
    bad_input = ScriptedChild([(1.0, 2)])
    row, _ = scripted_run(monkeypatch, tmp_path / "a", bad_input, max_retries=3)
    assert (row["status"], row["attempts"], row["error"]) == ("failed", 1, "exit status 2: boom")
    killed_then_done = ScriptedChild([(1.0, -signal.SIGKILL), (2.0, 0)], summary=True)
    row, log = scripted_run(monkeypatch, tmp_path / "b", killed_then_done, max_retries=1)
    assert (row["status"], row["attempts"], row["error"], row["wall_s"]) == ("done", 2, "", 3.0)
    assert row["solved"] is True and "attempt 1: failed killed by SIGKILL" in log
    hangup = ScriptedChild([(1.0, -signal.SIGHUP)])  # signal 1: the smallest there is
    row, _ = scripted_run(monkeypatch, tmp_path / "e", hangup, max_retries=0)
    assert (row["status"], row["error"]) == ("failed", "killed by SIGHUP")
    silent = ScriptedChild([(1.0, 0)] * 2)
    row, _ = scripted_run(monkeypatch, tmp_path / "c", silent, max_retries=1)
    assert (row["status"], row["attempts"]) == ("failed", 2)
    assert row["error"] == "exited 0 but wrote no summary.json (after 2 attempts)"
    printed = ScriptedChild([(1.0, 0)], printed={"final_mean_return": 9.5})
    row, _ = scripted_run(monkeypatch, tmp_path / "d", printed, max_retries=1)
    assert (row["status"], row["final_mean_return"]) == ("done", 9.5)


def test_scripted_resume_continues_a_checkpoint_from_the_first_attempt(
    monkeypatch, tmp_path
) -> None:
    run_dir = tmp_path / "runs" / "r"
    run_dir.mkdir(parents=True)
    (run_dir / "checkpoint.safetensors").write_text("weights")
    child = ScriptedChild([(1.0, 0)], summary=True)
    row, _ = scripted_run(monkeypatch, tmp_path, child, max_retries=0, resume=True)
    assert child.resumed == [True] and row["status"] == "done"
    fresh = ScriptedChild([(1.0, 0)], summary=True)  # not asked to resume: starts afresh
    scripted_run(monkeypatch, tmp_path, fresh, max_retries=0, resume=False)
    assert fresh.resumed == [False]


def test_a_run_whose_worker_dies_on_every_attempt_fails_and_the_sweep_goes_on(
    ray_session, tmp_path
) -> None:
    """The Ray worker running the long run is killed on each of its 2 attempts (as when its
    node dies: the same error path, see tests/test_sweep_cluster.py for a node removed)."""
    psutil = pytest.importorskip("psutil")
    text = TINY.format(backends='["torch"]').replace("seeds = 2", "seeds = 1") + LONG_RUN
    run_dir = tmp_path / "out" / "runs" / "long-torch-s0"
    children: list[int] = []

    def kill_its_worker_each_attempt() -> None:
        deadline = time.monotonic() + 120
        while len(children) < 2 and time.monotonic() < deadline:
            try:
                child = int((run_dir / PID_FILE).read_text().split()[0])
                worker = psutil.Process(child).ppid()
            except (OSError, ValueError, IndexError, psutil.Error):
                time.sleep(0.01)
                continue
            if child not in children:
                children.append(child)
                os.kill(worker, signal.SIGKILL)
            time.sleep(0.01)

    watcher = threading.Thread(target=kill_its_worker_each_attempt, daemon=True)
    watcher.start()
    outcome = run_sweep(load_sweep(write(tmp_path, text), PARSER), tmp_path / "out", progress=False)
    watcher.join()
    assert len(children) == 2
    rows = {row["run_id"]: row for row in outcome["rows"]}
    assert rows["reinforce-torch-s0"]["status"] == "done"
    long = rows["long-torch-s0"]
    assert (long["status"], long["attempts"]) == ("failed", 2)
    assert long["retried"].startswith("attempt 1: its Ray worker on Ray node ")
    assert long["retried"].endswith("died (WorkerCrashedError)")
    assert long["error"].endswith("died (WorkerCrashedError); no attempt left (2 of 2 used)")
    assert outcome["retried"] == [
        {"run_id": "long-torch-s0", "status": "failed", "attempts": 2, "why": long["retried"]}
    ]
    assert [r["status"] for r in read_csv(tmp_path / "out" / "results.csv")] == ["done", "failed"]
    for child in children:  # each child died with its worker (no orphan writes on)
        assert not psutil.pid_exists(child) or psutil.Process(child).status() == "zombie"
    assert not (run_dir / PID_FILE).exists()


@pytest.mark.slow  # 34-65 s measured under load: the default pretraining is ~20 s of it
def test_runs_sharing_the_default_reference_pretrain_it_once(
    ray_session, tmp_path, monkeypatch
) -> None:
    """Two `rlhf train` runs without a reference checkpoint, at once on 2 CPUs: the sweep
    pretrains runs/rlhf/sort-digits/reference.safetensors once before they start; each
    would otherwise pretrain it (and write its reference_run/ folder) at the same time."""
    monkeypatch.chdir(tmp_path)
    text = '[sweep]\nseeds = 2\nmax_retries = 0\n\n[[run]]\ncommand = "rlhf train"\nupdates = 1\n'
    outcome = run_sweep(load_sweep(write(tmp_path, text), PARSER), tmp_path / "out", progress=False)
    reference = tmp_path / "runs" / "rlhf" / "sort-digits" / "reference.safetensors"
    assert outcome["prepared"] == [
        f"pretrained the default reference of task 'sort-digits': {reference}"
    ]
    assert outcome["done"] == 2, outcome["rows"]
    made_at = reference.stat().st_mtime_ns
    spans = []
    for row in outcome["rows"]:
        run_dir = tmp_path / "out" / row["run_dir"]
        assert "pretraining one" not in (run_dir / "stderr.txt").read_text()
        stamps = [
            time.mktime(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S"))
            for line in (run_dir / "sweep.log").read_text().splitlines()
        ]
        spans.append((stamps[0], stamps[-1]))
    assert max(start for start, _ in spans) <= min(end for _, end in spans)  # at once
    assert reference.stat().st_mtime_ns == made_at
    again = run_sweep(
        load_sweep(tmp_path / "sweep.toml", PARSER),
        tmp_path / "out2",
        executor="sequential",
        progress=False,
    )
    assert again["prepared"] == []  # there already: made by nobody
