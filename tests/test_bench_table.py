"""benchmarks/run_all.py (``make bench``): each benchmark's JSON read into rows, every ratio a
ratio of times (rates inverted), failures kept as rows; never a timing assertion."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def run_all():
    spec = importlib.util.spec_from_file_location("bench_run_all", BENCHMARKS / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_run_all"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_every_benchmark_names_a_script_that_exists_once(run_all):
    names = [b.name for b in run_all.BENCHMARKS]
    assert len(names) == len(set(names))
    for bench in run_all.BENCHMARKS:
        assert (BENCHMARKS / bench.script).is_file(), bench.script
        assert "--json" not in bench.quick + bench.full  # run_benchmark adds it


def test_ratios_are_of_times_whichever_way_the_figure_points(run_all):
    Row = run_all.Row
    time_row = Row("t", "s", torch=2.0, tf=3.0, peer=4.0)
    assert time_row.time_ratio(time_row.tf, time_row.torch) == 1.5  # tf takes 1.5x torch's time
    assert time_row.time_ratio(time_row.torch, time_row.peer) == 0.5
    rate_row = Row("r", "tokens/s", torch=300.0, tf=100.0, peer=150.0, higher_is_better=True)
    assert rate_row.time_ratio(rate_row.tf, rate_row.torch) == 3.0  # a third the rate: 3x time
    assert rate_row.time_ratio(rate_row.torch, rate_row.peer) == 0.5
    for missing in (None, 0.0, -1.0):
        assert time_row.time_ratio(missing, 1.0) is None
        assert time_row.time_ratio(1.0, missing) is None


def test_the_readers_take_the_figures_each_script_prints(run_all):
    lm = run_all.lm_rows({
        "torch": {"train_tokens_per_second": 3000.0, "generate_tokens_per_second_cached": 900.0,
                  "decode_step_breakdown_us": {"decode_step_us": 1000.0}},
        "tf": {"train_tokens_per_second": 2000.0, "generate_tokens_per_second_cached": 300.0,
               "decode_step_breakdown_us": {"decode_step_us": 3000.0}},
        "hugging_face": {"train_tokens_per_second": 1500.0,
                         "generate_tokens_per_second_cached": 450.0}})
    train, generate, step = lm
    assert (train.torch, train.tf, train.peer) == (3000.0, 2000.0, 1500.0)
    assert generate.time_ratio(generate.tf, generate.peer) == 1.5  # tf slower than HF
    assert step.time_ratio(step.tf, step.torch) == 3.0
    cartpole = run_all.cartpole_rows({
        "ppo/torch": [{"solved": True, "wall_s": w} for w in (5.0, 1.0, 3.0)],
        "ppo/tf": [{"solved": False, "wall_s": 9.0}],
        "sb3_ppo/torch": [{"solved": True, "wall_s": 10.0}]})
    assert len(cartpole) == 1  # reinforce_baseline was not run, nor CPU times kept: one row
    assert (cartpole[0].torch, cartpole[0].tf, cartpole[0].peer) == (3.0, 9.0, 10.0)
    assert "torch 3/3 solved, tf 0/1 solved" in cartpole[0].note
    cpu = run_all.cartpole_rows({
        "reinforce_baseline/torch": [{"solved": True, "wall_s": 4.0, "cpu_s": 2.0}],
        "reinforce_baseline/tf": [{"solved": True, "wall_s": 6.0, "cpu_s": 2.6}],
        "sb3_ppo/torch": [{"solved": True, "wall_s": 30.0, "cpu_s": 10.0}]})
    assert [r.work for r in cpu] == ["CartPole-v1 reinforce_baseline, wall to solve (median)",
                                     "CartPole-v1 reinforce_baseline, CPU to solve (median)"]
    assert (cpu[1].torch, cpu[1].tf, cpu[1].peer) == (2.0, 2.6, 10.0)
    assert cpu[1].time_ratio(cpu[1].tf, cpu[1].peer) == pytest.approx(0.26)
    listing = run_all.cartpole_rows({
        "listing/torch": [{"episodes": 5, "steps": 100, "us_per_step": 70.0}],
        "listing/tf": [{"episodes": 5, "steps": 90, "us_per_step": 450.0}]})
    assert [r.work for r in listing] == ["listing 5.2 on CartPole-v1, wall per environment step"]
    assert listing[0].time_ratio(listing[0].tf, listing[0].torch) == pytest.approx(450 / 70)
    assert "5 episodes" in listing[0].note
    calls = run_all.cartpole_rows({"listing_calls": [{
        "torch eager": 20.0, "tf eager (Keras call)": 900.0, "tf.function": 300.0,
        "tf concrete function": 100.0}]})
    assert (calls[0].torch, calls[0].tf) == (20.0, 100.0)
    assert "tf eager Keras call 900" in calls[0].note and "tf.function 300" in calls[0].note
    rlhf = run_all.rlhf_rows({"objectives": {"grpo": {
        "torch": {"updates_per_s": 4.0, "first_update_s": 1.0, "time_to_target_s": 2.0},
        "tf": {"updates_per_s": 2.0, "first_update_s": 3.0, "time_to_target_s": None}}},
        "trl": None})
    assert [r.work for r in rlhf] == ["sort-digits grpo, one update (median)",
                                      "sort-digits grpo, wall to mean reward 0.9"]
    assert rlhf[0].time_ratio(rlhf[0].tf, rlhf[0].torch) == 2.0
    assert rlhf[1].tf is None
    assert run_all.returns_rows({"8x2": {"torch": {"scan": 1.0}, "tf": {"scan": 2.0}}})[0].tf == 2.0
    trl = run_all.rlhf_trl_rows({"trl": "1.16.0", "target": 0.9, "sizes": {
        "reference": {"parameters": 26432,
                      "torch": {"time_to_target_s": 1.0, "cpu_to_target_s": 0.8,
                                "updates_to_target": 70},
                      "tf": {"time_to_target_s": 3.0, "cpu_to_target_s": 2.0,
                             "updates_to_target": 71},
                      "trl": {"time_to_target_s": 4.0, "cpu_to_target_s": 5.0,
                              "updates_to_target": 80}},
        "large": {"parameters": 2600000, "torch": {"time_to_target_s": 9.0},
                  "tf": {"time_to_target_s": None}, "trl": {"time_to_target_s": 6.0}}}})
    assert [r.work for r in trl] == [
        "sort-digits GRPO, reference GPT (26432 parameters), wall to mean reward 0.9",
        "sort-digits GRPO, reference GPT (26432 parameters), CPU to mean reward 0.9",
        "sort-digits GRPO, large GPT (2600000 parameters), wall to mean reward 0.9",
        "sort-digits GRPO, large GPT (2600000 parameters), CPU to mean reward 0.9"]
    wall, cpu, large_wall, large_cpu = trl
    assert (wall.torch, wall.tf, wall.peer) == (1.0, 3.0, 4.0)
    assert wall.time_ratio(wall.torch, wall.peer) == 0.25  # ours / TRL: lower is faster
    assert (cpu.torch, cpu.tf, cpu.peer) == (0.8, 2.0, 5.0)
    assert cpu.peer_name == "TRL 1.16.0 GRPOTrainer"
    assert "torch 70, tf 71, trl 80" in wall.note
    assert large_wall.time_ratio(large_wall.torch, large_wall.peer) == 1.5
    assert large_wall.tf is None and large_cpu.torch is None  # not reached / not measured
    assert run_all.rlhf_trl_rows({"trl": None, "sizes": {}}) == []


def test_a_failing_or_silent_script_is_a_row_and_logs_before_the_json_are_skipped(
        run_all, tmp_path):
    talk = tmp_path / "talk.py"
    talk.write_text("print('loading...')\nprint('{\"torch\": {\"wall_s\": 2.0}, "
                    "\"tf\": {\"wall_s\": 3.0}}')\n")
    fail = tmp_path / "fail.py"
    fail.write_text("import sys\nsys.exit('no such backend: jax')\n")
    rows = run_all._case_rows("case", "rate", "rate/s")
    benches = [run_all.Benchmark("talk", str(talk), [], [], rows),
               run_all.Benchmark("fail", str(fail), [], [], rows)]
    results = []
    for bench in benches:
        result, error, wall = run_all.run_benchmark(bench, True, 60.0, tmp_path)
        results.append((bench, result, error, wall))
    assert results[0][1] == {"torch": {"wall_s": 2.0}, "tf": {"wall_s": 3.0}}
    assert (tmp_path / "talk.json").is_file()
    assert results[1][1] is None and "exit 1: no such backend: jax" in results[1][2]
    info = {"cpu": "x", "cores": "2", "python": "3.11", "versions": "v", "threads": "1",
            "load": "0"}
    text = run_all.table(results, True, info, "0")
    assert "| case, whole run | s | 2 | 3 | 1.5 |" in text
    assert "| fail | | | | | | | | failed: exit 1: no such backend: jax" in text
