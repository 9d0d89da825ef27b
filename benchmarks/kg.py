"""Benchmark: knowledge-graph reasoning by walking the graph (outline 6.3.3; MINERVA, Das et
al. 2018), REINFORCE on the family graph, in both backends.

Run by hand (``python benchmarks/kg.py``), never in the test suite. Each backend runs the same
``KGRun`` (``duetrl kg train``'s defaults), one after the other, never at the same time. Per
backend it reports

    hits@1, hits@3, hits@10, MRR   on the held-out facts (filtered, beam search), and the
                                   random-walk baseline's, from the same graph
    wall_s                         the whole run (updates and the periodic beam searches)
    walks/s                        training walks per second (sampling and the update; the
                                   first update, which traces in tf, left out)

and tf / torch of the wall time (target: at most 1.5) and of walks/s, from the same run. The
headline: hits@1 well above the random walks' in under 3 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from typing import Any

from duetrl.core.backend import load_backends
from duetrl.core.cases.kg.train import KGRun, KGSettings

METRICS = ("hits_at_1", "hits_at_3", "hits_at_10", "mrr")


def run_backend(backend: Any, settings: KGSettings) -> dict[str, Any]:
    """One whole run in ``backend``: its figures."""
    began = time.perf_counter()
    run = KGRun(backend, settings)
    while not run.finished():
        run.step()
    wall = time.perf_counter() - began
    f = run.evaluate()
    return {
        **{k: f[k] for k in METRICS},
        **{f"random_walk_{k}": f[f"random_walk_{k}"] for k in METRICS},
        "wall_s": wall,
        "walks_per_s": f["walks_per_s"],
        "recovered_facts": f["recovered_facts"],
        "heldout_facts": f["heldout_facts"],
        "top_rules": {r: rules[0]["rule"] for r, rules in f["rules"].items()},
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["torch", "tf"])
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads per framework (a small network: 1 is fastest here)",
    )
    parser.add_argument("--updates", type=int, default=None)
    parser.add_argument("--families", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    overrides = {
        k: v for k, v in (("updates", args.updates), ("families", args.families)) if v is not None
    }
    settings = KGSettings(seed=args.seed, **overrides)
    results: dict[str, Any] = {"settings": asdict(settings), "threads": args.threads}
    for name, backend in load_backends(args.backends).items():
        backend.set_num_threads(args.threads)
        results[name] = r = run_backend(backend, settings)
        if not args.json:
            print(
                f"{name:>5}: hits@1 {r['hits_at_1']:.3f} (random walks "
                f"{r['random_walk_hits_at_1']:.3f}), hits@3 {r['hits_at_3']:.3f}, hits@10 "
                f"{r['hits_at_10']:.3f}, MRR {r['mrr']:.3f} (random walks "
                f"{r['random_walk_mrr']:.3f}); recovered {r['recovered_facts']} of "
                f"{r['heldout_facts']}; {r['wall_s']:.1f} s, {r['walks_per_s']:.0f} walks/s",
                flush=True,
            )
    if "torch" in results and "tf" in results:
        t, f = results["torch"], results["tf"]
        results["tf_over_torch"] = {
            "wall": f["wall_s"] / t["wall_s"],
            "walks_per_s": f["walks_per_s"] / t["walks_per_s"],
        }
        if not args.json:
            r = results["tf_over_torch"]
            print(
                f"tf / torch: wall {r['wall']:.2f} (target <= 1.5), walks/s {r['walks_per_s']:.2f}"
            )
    if args.json:
        print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
