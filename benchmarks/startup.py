"""Benchmark: what the first update costs beyond a later one (tracing and compiling), in both
backends: PPO on CartPole-v1, DQN on CartPole-v1, GRPO on sort-digits (RL for a language
model, from a reference pretrained here in torch).

Run by hand (``python benchmarks/startup.py``), never in the test suite. Each (work,
backend) runs in a fresh child process, one after another, one framework thread: a warm
process would hide the cost. Per child it reports, in wall and CPU seconds:

    build        making the trainer (models, optimiser, environments)
    first        the first update that learns (PyTorch: eager; TensorFlow: it traces every
                 ``tf.function`` it calls, and XLA compiles those that ask for it)
    steady       the median of the next ``--updates`` updates
    start-up     first - steady: the one-off cost (issue 21's target: at most 1 s for tf)

CPU seconds count every thread of the child, so a loaded machine disturbs them less than wall
seconds; both are printed with the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

WORKS = ("ppo", "dqn", "grpo")


def make_update(work: str, backend: str, reference_path: str | None) -> Callable[[], bool]:
    """A function running one update of ``work``; it returns whether that update learned."""
    if work == "ppo":
        from duetrl.core.interfaces.rl_settings import make_settings
        from duetrl.core.rl.train import PolicyGradientTrainer

        trainer = PolicyGradientTrainer("ppo", "CartPole-v1", backend, make_settings("ppo"),
                                        seed=0, total_steps=10**7, threads=1)  # fmt: skip
        return lambda: trainer.step() is not None
    if work == "dqn":
        import math

        from duetrl.core.rl.dqn import DQNTrainer, make_dqn_settings

        trainer = DQNTrainer("CartPole-v1", backend, make_dqn_settings(), 0, 10**7)
        return lambda: not math.isnan(trainer.step()["loss"])  # NaN: still filling the buffer
    from duetrl.core.backend import load_backend
    from duetrl.core.rlhf.pi_ref import load_reference
    from duetrl.core.rlhf.train import RLHFRun, RLHFSettings

    settings = RLHFSettings(algo="grpo", beta=0.01, updates=1000, prompts=8, group_size=8, seed=0)
    run = RLHFRun(load_backend(backend), settings, load_reference(reference_path, "sort-digits"))
    counter = iter(range(10**9))
    return lambda: run.update(next(counter)) is not None


def child(work: str, backend: str, updates: int, reference_path: str | None) -> dict:
    """One (work, backend): seconds of build, the first learning update and the steady ones."""
    from duetrl.core.backend import load_backend

    load_backend(backend).set_num_threads(1)
    clocks = (time.perf_counter, time.process_time)
    began = [clock() for clock in clocks]
    update = make_update(work, backend, reference_path)
    build = [clock() - b for clock, b in zip(clocks, began)]
    first, steady = None, []
    while len(steady) < updates:
        began = [clock() for clock in clocks]
        learned = update()
        seconds = [clock() - b for clock, b in zip(clocks, began)]
        if learned and first is None:
            first = seconds
        elif learned:
            steady.append(seconds)
    median = [statistics.median(s[i] for s in steady) for i in range(2)]
    return {
        "build_s": build[0], "build_cpu_s": build[1],
        "first_s": first[0], "first_cpu_s": first[1],
        "steady_s": median[0], "steady_cpu_s": median[1],
        "startup_s": first[0] - median[0], "startup_cpu_s": first[1] - median[1],
    }  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--works", nargs="+", choices=WORKS, default=list(WORKS))
    parser.add_argument("--backends", nargs="+", default=["torch", "tf"])
    parser.add_argument("--updates", type=int, default=5, help="steady updates timed")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("WORK", "BACKEND"), help=argparse.SUPPRESS)
    parser.add_argument("--reference-path", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child, args.updates, args.reference_path)))
        return {}
    results: dict = {"load_average_1min": {"before": os.getloadavg()[0]}, "runs": {}}
    with tempfile.TemporaryDirectory() as folder:
        reference_path = None
        if "grpo" in args.works:  # pretrained once, in torch, loaded by every child
            from duetrl.core.backend import load_backend
            from duetrl.core.rlhf.pi_ref import PretrainSettings, pretrain_reference

            reference_path = str(Path(folder) / "reference.safetensors")
            pretrain_reference(load_backend("torch"), "sort-digits", reference_path,
                               PretrainSettings(), progress=False)  # fmt: skip
        for work in args.works:
            for backend in args.backends:
                command = [sys.executable, __file__, "--child", work, backend,
                           "--updates", str(args.updates)]  # fmt: skip
                if reference_path:
                    command += ["--reference-path", reference_path]
                env = {**os.environ, "OMP_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
                out = subprocess.run(command, capture_output=True, text=True, env=env)
                if out.returncode:
                    raise RuntimeError(f"{work} {backend}: {out.stderr[-2000:]}")
                results["runs"][f"{work} {backend}"] = json.loads(out.stdout.splitlines()[-1])
    results["load_average_1min"]["after"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(results, indent=2))
        return results
    print(f"seconds, wall / CPU; load average {results['load_average_1min']}")
    print(f"{'work':<12} {'build':>12} {'first':>12} {'steady':>12} {'start-up':>12}")
    for name, r in results["runs"].items():
        cells = [f"{r[k + '_s']:.2f}/{r[k + '_cpu_s']:.2f}" for k in
                 ("build", "first", "steady", "startup")]  # fmt: skip
        print(f"{name:<12} " + " ".join(f"{c:>12}" for c in cells))
    return results


if __name__ == "__main__":
    main()
