"""Sweep throughput: runs per minute through Ray against a plain sequential loop, in one run.

    .venv/bin/python benchmarks/sweep.py              8 runs (REINFORCE+baseline, torch and tf)
    .venv/bin/python benchmarks/sweep.py --quick      4 tiny torch runs

Both executors carry out the same sweep file (core/scale/sweep.py): every run a child process
``python -m duetrl train ...`` with one framework thread. The sequential loop runs one child at
a time; Ray runs ``num_cpus / threads_per_run`` at once. Also measured, in the same process:

- child start: a run's wall time minus the training time its summary reports (Python, duetrl's
  parser, the framework import, environment set-up, the final plot), median per backend;
- Ray start: ``ray.init`` of a local cluster;
- Ray's overhead per task: many no-op tasks submitted at once (wall / tasks: the cost of a
  task in a busy sweep) and one at a time (submit + ray.get: the latency of one task).

Speed is never asserted in tests; on a machine shared with other work the ratios move.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from duetrl.core.cli import build_parser
from duetrl.core.scale.sweep import run_sweep
from duetrl.core.scale.sweep_file import load_sweep

SWEEP = """\
[sweep]
seeds = {seeds}
backends = {backends}
max_retries = 0
threads_per_run = 1

[[run]]
command = "train reinforce_baseline"
env = "CartPole-v1"
total-steps = {steps}
"""


def noop() -> None:
    """A task that does nothing: what remains of its time is Ray's."""


def ray_task_overhead(ray, tasks: int) -> dict[str, float]:
    """Milliseconds per no-op task, all submitted at once and one at a time."""
    task = ray.remote(num_cpus=1)(noop)
    ray.get([task.remote() for _ in range(4)])  # workers started
    start = time.perf_counter()
    ray.get([task.remote() for _ in range(tasks)])
    batch_ms = 1000 * (time.perf_counter() - start) / tasks
    latencies = []
    for _ in range(max(tasks // 10, 5)):
        start = time.perf_counter()
        ray.get(task.remote())
        latencies.append(1000 * (time.perf_counter() - start))
    return {"batch_ms": batch_ms, "one_ms": statistics.median(latencies)}


def child_start_s(rows: list[dict]) -> dict[str, float]:
    """Median seconds of each backend's runs not spent training (see the module docstring)."""
    by_backend: dict[str, list[float]] = {}
    for row in rows:
        by_backend.setdefault(row["backend"], []).append(row["wall_s"] - row["train_wall_s"])
    return {backend: statistics.median(values) for backend, values in by_backend.items()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=4, help="seeds per backend")
    parser.add_argument("--backends", default="torch,tf")
    parser.add_argument("--total-steps", type=int, default=20_000,
                        help="env-step budget of each run")
    parser.add_argument("--num-cpus", type=int, default=os.cpu_count(),
                        help="CPUs of the local Ray")
    parser.add_argument("--tasks", type=int, default=200, help="no-op tasks timed")
    parser.add_argument("--quick", action="store_true",
                        help="2 seeds, torch only, 1,000 steps, 50 no-op tasks")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.backends, args.total_steps, args.tasks = 2, "torch", 1000, 50
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]

    import ray

    results: dict[str, Any] = {"runs": args.seeds * len(backends), "num_cpus": args.num_cpus}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.toml"
        path.write_text(SWEEP.format(seeds=args.seeds, backends=json.dumps(backends),
                                     steps=args.total_steps))
        plan = load_sweep(path, build_parser())
        sequential = run_sweep(plan, Path(tmp) / "sequential", "sequential", progress=False)

        start = time.perf_counter()
        ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)
        results["ray_init_s"] = time.perf_counter() - start
        try:
            through_ray = run_sweep(plan, Path(tmp) / "ray", "ray", progress=False)
            results["task_overhead"] = ray_task_overhead(ray, args.tasks)
        finally:
            ray.shutdown()
    for name, outcome in (("sequential", sequential), ("ray", through_ray)):
        if outcome["done"] != outcome["runs"]:
            failed = [(r["run_id"], r["error"]) for r in outcome["rows"] if r["status"] != "done"]
            raise RuntimeError(f"{name}: runs did not finish: {failed}")
        results[name] = {"wall_s": outcome["wall_s"],
                         "runs_per_min": 60 * outcome["runs"] / outcome["wall_s"]}
    with_init = through_ray["wall_s"] + results["ray_init_s"]
    results["ray"]["runs_per_min_with_init"] = 60 * results["runs"] / with_init
    results["speedup"] = sequential["wall_s"] / through_ray["wall_s"]
    results["child_start_s"] = child_start_s(sequential["rows"])
    results["train_s"] = statistics.median(r["train_wall_s"] for r in sequential["rows"])
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"{results['runs']} runs (train reinforce_baseline, {args.total_steps} steps, "
              f"{','.join(backends)}), 1 thread each; Ray with {args.num_cpus} CPUs")
        print(f"{'executor':<12}{'wall s':>9}{'runs/min':>10}")
        for name in ("sequential", "ray"):
            print(f"{name:<12}{results[name]['wall_s']:>9.1f}"
                  f"{results[name]['runs_per_min']:>10.1f}")
        print(f"Ray / sequential throughput: {results['speedup']:.2f}x "
              f"({60 * results['runs'] / with_init:.1f} runs/min counting ray.init)")
        print(f"ray.init: {results['ray_init_s']:.1f} s; per no-op task: "
              f"{results['task_overhead']['batch_ms']:.2f} ms submitted together, "
              f"{results['task_overhead']['one_ms']:.2f} ms one at a time")
        starts = ", ".join(f"{b} {s:.1f} s" for b, s in results["child_start_s"].items())
        print(f"per run outside training (child start, imports, plot): {starts}; median "
              f"training {results['train_s']:.1f} s")
    return results


if __name__ == "__main__":
    main()
