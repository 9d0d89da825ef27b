"""Benchmark: question answering with verifiable rewards (outline 6.3.1), torch and tf.

Run by hand (``python benchmarks/qa.py``), never in the test suite. For each backend, one
process at a time on the same cores: the supervised warm-up (``QASettings.warmup_steps`` on
gold and careless demonstrations), then GRPO; it reports

    warm-up pass@1 / greedy   held-out accuracy of the supervised model alone
    RL pass@1 / greedy        held-out accuracy after the RL updates (same questions, noise)
    warm-up s, RL s, total s  wall seconds (target: total under 180 s in torch on 2 cores)
    samples/s                 RL completions per second of RL step time
    tf / torch                the ratio of total seconds (target: at most 1.5)

    python benchmarks/qa.py --json                     # the headline, both backends
    python benchmarks/qa.py --backends torch --seeds 0,1,2   # the headline over seeds
    python benchmarks/qa.py --backends torch --updates 50

With several seeds each backend runs them one after the other (its own warm-up per seed);
the times and the tf / torch ratio are those of the first seed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

from duetrl.core.backend import load_backends
from duetrl.core.cases.qa.settings import QASettings
from duetrl.core.cases.qa.train import train_qa


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="torch,tf")
    parser.add_argument("--family", default="arithmetic")
    parser.add_argument("--warmup-steps", type=int, default=QASettings.warmup_steps)
    parser.add_argument("--updates", type=int, default=QASettings.updates)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    names = args.backends.split(",")
    backends = load_backends(names)
    seeds = [int(s) for s in args.seeds.split(",")]
    results: dict = {}
    for name, backend in backends.items():
        backend.set_num_threads(args.threads)
        for seed in seeds:
            settings = QASettings(family=args.family, warmup_steps=args.warmup_steps,
                                  updates=args.updates, seed=seed)
            results[name if seed == seeds[0] else f"{name}_seed{seed}"] = measure(
                backend, settings)
    if "torch" in results and "tf" in results:
        results["tf_over_torch_total"] = results["tf"]["total_s"] / results["torch"]["total_s"]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for name, r in results.items():
            if isinstance(r, dict):
                print(f"{name:>11}: held-out pass@1 {r['warmup_accuracy']:.3f} -> "
                      f"{r['rl_accuracy']:.3f}, greedy {r['warmup_greedy']:.3f} -> "
                      f"{r['rl_greedy']:.3f}; warm-up {r['warmup_s']:.0f} s + RL {r['rl_s']:.0f}"
                      f" s = {r['total_s']:.0f} s, {r['samples_per_s']:.0f} samples/s")
        if "tf_over_torch_total" in results:
            print(f"tf / torch total time: {results['tf_over_torch_total']:.2f}")
    return results


def measure(backend, settings: QASettings) -> dict:
    """One warm-up and RL run of ``settings`` in ``backend``: its figures and times."""
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        s = train_qa(backend, settings, out, progress=False)
    return {"seed": settings.seed,
            "warmup_accuracy": s["warmup_accuracy"], "rl_accuracy": s["heldout_accuracy"],
            "warmup_greedy": s["warmup_greedy_accuracy"],
            "rl_greedy": s["heldout_greedy_accuracy"], "format_rate": s["format_rate"],
            "warmup_s": s["warmup_seconds"], "rl_s": s["wall_s"],
            "total_s": time.perf_counter() - began, "samples_per_s": s["samples_per_s"]}


if __name__ == "__main__":
    main()
