"""Benchmark: dialogue generation with RL (outline 6.1; Li et al. 2016), MLE then policy
gradient in self-play, in both backends.

Run by hand (``python benchmarks/dialogue.py``), never in the test suite. Each backend runs the
same ``DialogueRun`` (``duetrl dialogue train``'s defaults), one after the other, never at the
same time. Per backend it reports

    mle / rl dull_rate        share of dull replies in greedy self-play from held-out openings
    mle / rl dialogue_length  generated turns before the first dull or repeated one
    mle / rl distinct_1, _2   distinct unigrams / bigrams over all generated turns
    wall_s                    the whole run (both MLE models, RL, evaluations)
    mle examples/s            (p, q, a) examples per second of the MLE phase (both models)
    rl turns/s                simulated turns per second of the RL phase (sampling, the three
                              rewards and the update; first update left out)

and tf / torch of the wall time (target: at most 1.5) and of the rates, from the same run.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from typing import Any

from duetrl.core.backend import load_backends
from duetrl.core.cases.dialogue.train import DialogueRun, DialogueSettings

KEYS = ("dull_rate", "dialogue_length", "distinct_1", "distinct_2")


def run_backend(backend: Any, settings: DialogueSettings) -> dict[str, Any]:
    """One whole run in ``backend``: its figures."""
    run = DialogueRun(backend, settings)
    began = time.perf_counter()
    while not run.finished():
        run.step()
    wall = time.perf_counter() - began
    f = run.evaluate()
    return {**{f"mle_{k}": f[f"mle_{k}"] for k in KEYS}, **{f"rl_{k}": f[f"rl_{k}"] for k in KEYS},
            "wall_s": wall, "mle_examples_per_s": f["mle_examples_per_s"],
            "rl_turns_per_s": f["rl_turns_per_s"],
            "samples": {"mle": f["mle"]["samples"][:2],
                        "rl": (f["rl"] or {}).get("samples", [])[:2]}}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["torch", "tf"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mle-steps", type=int, default=None)
    parser.add_argument("--rl-updates", type=int, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in (("mle_steps", args.mle_steps),
                                   ("rl_updates", args.rl_updates)) if v is not None}
    settings = DialogueSettings(**overrides)
    results: dict[str, Any] = {"settings": asdict(settings), "threads": args.threads}
    for name, backend in load_backends(args.backends).items():
        backend.set_num_threads(args.threads)
        results[name] = run_backend(backend, settings)
        if not args.json:
            r = results[name]
            print(f"{name:>5}: dull-reply rate MLE {r['mle_dull_rate']:.2f} -> RL "
                  f"{r['rl_dull_rate']:.2f}; dialogue length {r['mle_dialogue_length']:.2f} -> "
                  f"{r['rl_dialogue_length']:.2f}; distinct-1 {r['mle_distinct_1']:.3f} -> "
                  f"{r['rl_distinct_1']:.3f}, distinct-2 {r['mle_distinct_2']:.3f} -> "
                  f"{r['rl_distinct_2']:.3f}; {r['wall_s']:.1f} s; MLE "
                  f"{r['mle_examples_per_s']:.0f} examples/s, RL {r['rl_turns_per_s']:.0f} "
                  "turns/s", flush=True)
    if "torch" in results and "tf" in results:
        t, f = results["torch"], results["tf"]
        results["tf_over_torch"] = {
            "wall": f["wall_s"] / t["wall_s"],
            "mle_examples_per_s": f["mle_examples_per_s"] / t["mle_examples_per_s"],
            "rl_turns_per_s": f["rl_turns_per_s"] / t["rl_turns_per_s"]}
        if not args.json:
            r = results["tf_over_torch"]
            print(f"tf / torch: wall {r['wall']:.2f} (target <= 1.5), MLE rate "
                  f"{r['mle_examples_per_s']:.2f}, RL rate {r['rl_turns_per_s']:.2f}")
    if args.json:
        print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
