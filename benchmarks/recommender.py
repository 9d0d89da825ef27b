"""Benchmark: the LM-based recommender's headline effect (outline 6.2; Chen et al. 2019), the
top-K corrected policy ahead of uncorrected REINFORCE on the simulator, and its cost in each
backend.

Run by hand (``python benchmarks/recommender.py``), never in the test suite. Per backend, one
after the other (never at the same time), for each seed: the supervised warm-up once, then
``reinforce`` and ``top_k`` from it (``RecommenderRun.branch``, ``duetrl recommend``'s
defaults). It reports

    top-K reward       the held-out users' top-4 reward of each method, per seed
    effect             top_k - reinforce, per seed, and in how many seeds it is > 0
    wall_s             everything for all seeds: data, warm-ups, both methods, evaluations
                       (target in torch: under 180 s on this 2-core machine)
    cpu_s              the process's CPU time over the same span: on a machine shared with
                       other work (wall inflated), what the run costs
    updates/s          steady state, the first update of each learner left out (tracing)
    first updates_s    the first update of each learner (tf: tracing the step)

and tf / torch of the wall time (target: at most 1.5) from the same run.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from typing import Any

import numpy as np

from duetrl.core.backend import load_backends
from duetrl.core.cases.recommender.train import RecommenderRun, RecommenderSettings


def _train(run: RecommenderRun, until: int, clock: dict[str, float]) -> None:
    """Step ``run`` to ``until`` updates, timing its first update apart from the others."""
    first = True
    while run.updates < until:
        began = time.perf_counter()
        run.step()
        clock["first" if first else "steady"] += time.perf_counter() - began
        clock["steady_updates"] += 0 if first else 1
        first = False


def run_backend(backend: Any, settings: RecommenderSettings, seeds: list[int]) -> dict[str, Any]:
    """Every seed's warm-up, reinforce and top_k in ``backend``: figures and times."""
    clock = {"first": 0.0, "steady": 0.0, "steady_updates": 0}
    out: dict[str, Any] = {"top_k": [], "reinforce": [], "effect": []}
    began, cpu = time.perf_counter(), time.process_time()
    for seed in seeds:
        warm_up = RecommenderRun(backend, RecommenderSettings(**{**asdict(settings), "seed": seed}))
        _train(warm_up, settings.pretrain_steps, clock)
        for method in ("reinforce", "top_k"):
            run = warm_up.branch(method)
            _train(run, run.total, clock)
            out[method].append(run.figures()["top_k_reward"])
        out["effect"].append(out["top_k"][-1] - out["reinforce"][-1])
    out["wall_s"] = time.perf_counter() - began
    out["cpu_s"] = time.process_time() - cpu
    out["updates_per_s"] = clock["steady_updates"] / clock["steady"]
    out["first_updates_s"] = clock["first"]
    out["seeds_ahead"] = int(np.sum(np.asarray(out["effect"]) > 0))
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["torch", "tf"])
    parser.add_argument("--threads", type=int, default=1, help="per framework (small model: 1)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--quick", action="store_true", help="tiny settings: a smoke test")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    settings = (
        RecommenderSettings(
            sessions=200,
            eval_users=50,
            pretrain_steps=3,
            updates=3,
            n_layer=1,
            n_embd=16,
            batch_size=16,
            eval_every=1000,
        )
        if args.quick
        else RecommenderSettings(eval_every=1000)
    )
    results: dict[str, Any] = {
        "settings": asdict(settings),
        "threads": args.threads,
        "seeds": args.seeds,
    }
    for name, backend in load_backends(args.backends).items():
        backend.set_num_threads(args.threads)
        results[name] = r = run_backend(backend, settings, args.seeds)
        if not args.json:
            print(
                f"{name:>5}: top-{settings.k} reward reinforce "
                f"{', '.join(f'{x:.3f}' for x in r['reinforce'])} -> top_k "
                f"{', '.join(f'{x:.3f}' for x in r['top_k'])}; top_k ahead in "
                f"{r['seeds_ahead']}/{len(args.seeds)} seeds (mean +{np.mean(r['effect']):.3f})"
                f"; {r['wall_s']:.1f} s in all ({r['cpu_s']:.1f} s CPU), "
                f"{r['updates_per_s']:.0f} updates/s, first updates {r['first_updates_s']:.1f} s",
                flush=True,
            )
    if "torch" in results and "tf" in results:
        t, f = results["torch"], results["tf"]
        results["tf_over_torch"] = {
            "wall": f["wall_s"] / t["wall_s"],
            "cpu": f["cpu_s"] / t["cpu_s"],
            "updates_per_s": f["updates_per_s"] / t["updates_per_s"],
        }
        if not args.json:
            r = results["tf_over_torch"]
            print(
                f"tf / torch: wall {r['wall']:.2f} (target <= 1.5), CPU {r['cpu']:.2f}, steady "
                f"updates/s "
                f"{r['updates_per_s']:.2f}"
            )
    if args.json:
        print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
