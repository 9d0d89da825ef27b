"""sweeps/cartpole.toml timed three ways in one run: sequentially, through a local Ray, and on a
multi-node Ray cluster on this machine (a head without CPUs and two worker nodes of one CPU
each, all on 127.0.0.1, Ray's test cluster), with Ray's per-task overhead and a child's start.

    .venv/bin/python benchmarks/sweep_cluster.py               the full file: 60 runs per way
    .venv/bin/python benchmarks/sweep_cluster.py --seeds 1     6 runs per way (one seed)

Every run is the same child process ``python -m duetrl train ...`` with one thread whichever way
it is started; the sequential loop runs one at a time, the local Ray and the cluster two (2
CPUs). The load average is recorded before and after each way: on a machine shared with other
work the figures are under that load and say so. Speed is never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from duetrl.core.cli import build_parser
from duetrl.core.scale.sweep import run_sweep
from duetrl.core.scale.sweep_file import load_sweep

HERE = Path(__file__).resolve().parent
SWEEP_FILE = HERE.parent / "sweeps" / "cartpole.toml"
NODE = {"node_ip_address": "127.0.0.1", "object_store_memory": 80 * 1024 * 1024}


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def figures(outcome: dict, started: float, load_before: list[float]) -> dict[str, Any]:
    """Wall time (with the executor's start), runs per minute, the load around it."""
    if outcome["done"] != outcome["runs"]:
        failed = [(r["run_id"], r["error"]) for r in outcome["rows"] if r["status"] != "done"]
        raise RuntimeError(f"runs did not finish: {failed}")
    wall = time.perf_counter() - started
    return {
        "runs": outcome["runs"],
        "wall_s": round(wall, 1),
        "runs_per_min": round(60 * outcome["runs"] / wall, 2),
        "load_before": load_before,
        "load_after": load(),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="seeds per algorithm and backend (default: the file's, 10)",
    )
    parser.add_argument("--tasks", type=int, default=200, help="no-op Ray tasks timed")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    import ray
    from ray.cluster_utils import Cluster

    sys.path.insert(0, str(HERE))  # benchmarks/sweep.py, beside this file
    from sweep import child_start_s, ray_task_overhead

    text = SWEEP_FILE.read_text()
    if args.seeds is not None:
        text = re.sub(r"(?m)^seeds = \d+", f"seeds = {args.seeds}", text)
    results: dict[str, Any] = {"cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cartpole.toml"
        path.write_text(text)
        plan = load_sweep(path, build_parser())

        before, started = load(), time.perf_counter()
        outcome = run_sweep(plan, Path(tmp) / "sequential", "sequential", progress=False)
        results["sequential"] = figures(outcome, started, before)
        results["child_start_s"] = child_start_s(outcome["rows"])

        before, started = load(), time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        results["ray_init_s"] = round(time.perf_counter() - started, 1)
        try:
            outcome = run_sweep(plan, Path(tmp) / "ray", "ray", progress=False)
            results["local_ray"] = figures(outcome, started, before)
            results["task_overhead_ms"] = ray_task_overhead(ray, args.tasks)
        finally:
            ray.shutdown()

        before, started = load(), time.perf_counter()
        cluster = Cluster(
            initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False, **NODE}
        )
        try:
            for _ in range(2):
                cluster.add_node(num_cpus=1, **NODE)
            cluster.wait_for_nodes()
            results["cluster_start_s"] = round(time.perf_counter() - started, 1)
            outcome = run_sweep(
                plan, Path(tmp) / "cluster", "ray", address=cluster.address, progress=False
            )
            results["cluster"] = figures(outcome, started, before)
        finally:
            if ray.is_initialized():
                ray.shutdown()
            cluster.shutdown()
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(
            f"sweeps/cartpole.toml, {results['sequential']['runs']} runs per way, 1 thread "
            f"each, {results['cpus']} cores (wall includes starting Ray / the cluster)"
        )
        print(f"{'way':<12}{'wall s':>9}{'runs/min':>10}  load average before -> after")
        for name in ("sequential", "local_ray", "cluster"):
            row = results[name]
            print(
                f"{name:<12}{row['wall_s']:>9.1f}{row['runs_per_min']:>10.2f}  "
                f"{row['load_before']} -> {row['load_after']}"
            )
        overhead = results["task_overhead_ms"]
        print(
            f"ray.init {results['ray_init_s']} s, cluster start {results['cluster_start_s']} s;"
            f" per no-op task {overhead['batch_ms']:.2f} ms submitted together, "
            f"{overhead['one_ms']:.2f} ms one at a time"
        )
        starts = ", ".join(f"{b} {s:.1f} s" for b, s in results["child_start_s"].items())
        print(f"per run outside training (child start, imports, plot): {starts}")
    return results


if __name__ == "__main__":
    main()
