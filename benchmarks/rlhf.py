"""Benchmark: RL for language models, each objective in both backends, in one run.

Run by hand (``python benchmarks/rlhf.py``), never in the test suite. From a sort-digits
reference pretrained here in torch (``--reference-path`` loads one instead), each objective
(reinforce, rloo, grpo, ppo, dpo; the settings of ``tests/test_rlhf_train.py``) trains in torch
and in tf *interleaved*, one update of each in turn, with the same weights, prompts and
sampling noise. Per objective and backend it reports:

    samples/s      completions per second of sampling alone (cached generation, the
                   reference's log-probs, the reward): B / median sampling time
    updates/s      1 / median wall time of a whole update (sampling + the learner's steps)
    learner/s      1 / median time of the learner's part of an update
    generate share median generation time / median update time (the rest: reference pass,
                   reward, advantages and the learner)
    first update   seconds of the first update (tracing and compiling in tf), and of its
                   generation alone
    time to 0.9    wall seconds, first update included, until the mean reward of the last
                   ``--smooth`` updates reaches ``--target`` (None: not within --updates)

and the ratios tf / torch of the rates (target: updates/s at least 1 / 1.5). Medians skip the
first ``--warmup`` updates. The comparison with TRL's GRPOTrainer (same weights, settings
matched, two model sizes) is ``benchmarks/rlhf_trl.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from duetrl.core.backend import load_backends
from duetrl.core.rlhf.pi_ref import PretrainSettings, load_reference, pretrain_reference
from duetrl.core.rlhf.train import ALGORITHMS, RLHFRun, RLHFSettings

OBJECTIVES = {  # the settings each objective runs with (tests/test_rlhf_train.py)
    "reinforce": {"beta": 0.01},
    "rloo": {"beta": 0.01},
    "grpo": {"beta": 0.01},
    "ppo": {"beta": 0.01, "epochs": 4},
    "dpo": {"beta": 0.1},  # DPO's beta scales its implicit reward; online pairs
}


class _Timed:
    """The backend module with ``generate`` timed (everything else passes through)."""

    def __init__(self, backend: Any) -> None:
        self._backend, self.seconds = backend, []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        out = self._backend.generate(*args, **kwargs)
        self.seconds.append(time.perf_counter() - began)
        return out


def _instrument(run: RLHFRun) -> dict[str, list[float]]:
    """Time ``run``'s sampling and generation calls; returns the lists they fill."""
    timed = _Timed(run.backend)
    run.backend = timed
    sampling: list[float] = []
    sample = run.sample

    def timed_sample(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        out = sample(*args, **kwargs)
        sampling.append(time.perf_counter() - began)
        return out

    run.sample = timed_sample
    return {"sample": sampling, "generate": timed.seconds}


def benchmark_objective(
    backends: dict[str, Any], algo: str, reference: Any, args: argparse.Namespace
) -> dict[str, Any]:
    """Train ``algo`` in every backend, interleaved; rates, shares and time to the target."""
    settings = RLHFSettings(
        algo=algo, updates=args.updates, prompts=args.prompts, group_size=args.group_size,
        seed=args.seed, **OBJECTIVES[algo],
    )
    runs = {name: RLHFRun(backend, settings, reference) for name, backend in backends.items()}
    timings = {name: _instrument(run) for name, run in runs.items()}
    walls = {name: [] for name in runs}
    rewards = {name: [] for name in runs}
    reached: dict[str, float | None] = {name: None for name in runs}
    reached_update: dict[str, int | None] = {name: None for name in runs}
    for update in range(args.updates):
        for name, run in runs.items():
            began = time.perf_counter()
            metrics, _ = run.update(update)
            walls[name].append(time.perf_counter() - began)
            rewards[name].append(metrics["reward"])
            smoothed = float(np.mean(rewards[name][-args.smooth:]))
            if reached[name] is None and len(rewards[name]) >= args.smooth and (
                smoothed >= args.target
            ):
                reached[name], reached_update[name] = sum(walls[name]), update + 1
        done = all(r is not None for r in reached.values())
        if done and update + 1 >= args.warmup + args.min_timed:
            break
    results: dict[str, Any] = {}
    for name in runs:
        skip = min(args.warmup, len(walls[name]) - 1)
        wall = statistics.median(walls[name][skip:])
        sample = statistics.median(timings[name]["sample"][skip:])
        generate = statistics.median(timings[name]["generate"][skip:])
        learner = statistics.median(
            w - s for w, s in zip(walls[name][skip:], timings[name]["sample"][skip:])
        )
        results[name] = {
            "samples_per_s": settings.batch_size / sample,
            "updates_per_s": 1.0 / wall,
            "learner_per_s": 1.0 / learner,
            "generate_share": generate / wall,
            "sampling_share": sample / wall,
            "first_update_s": walls[name][0],
            "first_generate_s": timings[name]["generate"][0],  # XLA compiles tf's decode step
            "time_to_target_s": reached[name],
            "updates_to_target": reached_update[name],
            "updates": len(walls[name]),
            "final_reward": float(np.mean(rewards[name][-args.smooth:])),
        }
    if {"torch", "tf"} <= set(results):
        results["tf_vs_torch"] = {
            key: results["tf"][key] / results["torch"][key]
            for key in ("samples_per_s", "updates_per_s", "learner_per_s")
        }
        t_tf, t_torch = results["tf"]["time_to_target_s"], results["torch"]["time_to_target_s"]
        results["tf_vs_torch"]["time_to_target"] = (
            t_tf / t_torch if t_tf is not None and t_torch is not None else None
        )
    return results


def trl_grpo() -> Any:
    """TRL's GRPOTrainer when ``trl`` is importable, else None (it is not a dependency)."""
    try:
        from trl import GRPOTrainer
    except ImportError:
        return None
    return GRPOTrainer


def format_table(results: dict[str, Any]) -> str:
    """One row per objective and backend, and the tf / torch ratios."""
    lines = [
        f"{'objective':<10} {'backend':<6} {'samples/s':>10} {'updates/s':>10} "
        f"{'learner/s':>10} {'gen share':>9} {'first s':>8} {'1st gen':>8} {'to 0.9 s':>9} "
        f"{'updates':>8}"
    ]
    for algo, result in results["objectives"].items():
        for name in ("torch", "tf"):
            if name not in result:
                continue
            r = result[name]
            to_target = r["time_to_target_s"]
            lines.append(
                f"{algo:<10} {name:<6} {r['samples_per_s']:>10.0f} {r['updates_per_s']:>10.1f} "
                f"{r['learner_per_s']:>10.1f} {r['generate_share']:>9.2f} "
                f"{r['first_update_s']:>8.2f} {r['first_generate_s']:>8.2f} "
                f"{'-' if to_target is None else f'{to_target:.2f}':>9} "
                f"{r['updates_to_target'] or '-':>8}"
            )
        if "tf_vs_torch" in result:
            ratio = result["tf_vs_torch"]
            to_target = ratio["time_to_target"]
            lines.append(
                f"{algo:<10} {'tf/torch':<6} {ratio['samples_per_s']:>10.2f} "
                f"{ratio['updates_per_s']:>10.2f} {ratio['learner_per_s']:>10.2f} "
                f"{'':>9} {'':>8} {'':>8} {'-' if to_target is None else f'{to_target:.2f}':>9}"
            )
    trl = "not installed" if results["trl"] is None else results["trl"]
    lines.append(f"TRL GRPOTrainer: {trl}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objectives", default=",".join(ALGORITHMS))
    parser.add_argument("--backends", default="torch,tf")
    parser.add_argument("--updates", type=int, default=150, help="at most this many updates")
    parser.add_argument("--min-timed", type=int, default=30, help="timed updates at least")
    parser.add_argument("--warmup", type=int, default=3, help="updates left out of medians")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--target", type=float, default=0.9, help="mean reward to reach")
    parser.add_argument("--smooth", type=int, default=5, help="updates the reward is averaged")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reference-path", default=None, help="a pretrained reference")
    parser.add_argument("--pretrain-steps", type=int, default=PretrainSettings.steps)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    backends = load_backends(args.backends.split(","))
    for backend in backends.values():
        backend.set_num_threads(args.threads)
    path = args.reference_path
    with tempfile.TemporaryDirectory() as tmp:
        if path is None:
            first = next(iter(backends.values()))
            path = Path(tmp) / "reference.safetensors"
            pretrain_reference(
                first, "sort-digits", path, PretrainSettings(steps=args.pretrain_steps),
                progress=False,
            )
        reference = load_reference(path, "sort-digits")
    results: dict[str, Any] = {
        "threads": args.threads,
        "batch_size": args.prompts * args.group_size,
        "parameters": int(sum(np.size(v) for v in reference[1].values())),
        "objectives": {},
        "trl": None if trl_grpo() is None else "compared in benchmarks/rlhf_trl.py",
    }
    for algo in args.objectives.split(","):
        results["objectives"][algo] = benchmark_objective(backends, algo, reference, args)
    print(json.dumps(results, indent=2) if args.json else format_table(results))
    return results


if __name__ == "__main__":
    main()
