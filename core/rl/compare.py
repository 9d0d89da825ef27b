"""``duetrl compare ALGO``: PyTorch and TensorFlow trained from the same start, side by side.

Both trainers get the same initial weights (drawn in core), the same environment seeds and
the same sampling noise, and are stepped in alternation (never at the same time, so neither
steals the other's CPU). Printed per report interval: each backend's mean return and loss, and
the largest parameter difference between them; at the end, time per update and one plot.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from duetrl.core.backend import BACKENDS
from duetrl.core.interfaces.rl_settings import ReinforceSettings
from duetrl.core.rl.session import _progress, default_target, plot_learning_curves
from duetrl.core.rl.train import PolicyGradientTrainer
from duetrl.core.tolerances import TOLERANCES


def max_param_difference(a: dict, b: dict) -> float:
    """max_k max |a_k - b_k| over the canonical parameters of two agents."""
    return max(float(np.max(np.abs(a[k].astype(np.float64) - b[k]))) for k in a)


def compare(algorithm: str, env_id: str, settings: ReinforceSettings, seed: int = 0,
            total_steps: int = 100_000, target: float | None = None, out: str = "runs",
            quiet: bool = False, report_every: int = 20, dtype: str = "float32",
            print_table: bool = True) -> dict:
    """Train both backends in alternation; returns the side-by-side results."""
    target = default_target(env_id) if target is None else target
    trainers = {name: PolicyGradientTrainer(algorithm, env_id, name, settings, seed, total_steps,
                                            dtype)
                for name in BACKENDS}
    times = {name: [] for name in BACKENDS}
    last = {name: {} for name in BACKENDS}
    lockstep_diff, diff_updates = 0.0, 0
    tolerance = TOLERANCES["float64" if dtype == "float64" else "float32_model"]
    within_tolerance = 0  # updates for which the two stayed equal within the tolerance table
    header = (f"{'update':>6} | " + " | ".join(
        f"{n + ' steps':>11} {'return':>7} {'loss':>8}" for n in BACKENDS) + f" | {'max|dθ|':>9}")
    if print_table:
        print(f"compare {algorithm} on {env_id}: same weights, seed {seed} and noise; {dtype}")
        print(header)

    def running(name: str) -> bool:
        trainer = trainers[name]
        return trainer.env_steps < total_steps and not trainer.solved(target)

    with _progress(total_steps, quiet, f"compare {algorithm}") as bar:
        while any(running(name) for name in BACKENDS):
            for name in BACKENDS:
                if running(name):
                    start = time.perf_counter()
                    last[name] = trainers[name].step()
                    times[name].append(time.perf_counter() - start)
            if len({t.updates for t in trainers.values()}) == 1:  # both took this update
                diff = max_param_difference(*(t.params() for t in trainers.values()))
                lockstep_diff, diff_updates = diff, trainers["torch"].updates
                if diff <= tolerance and within_tolerance == diff_updates - 1:
                    within_tolerance = diff_updates
            bar.update(max(t.env_steps for t in trainers.values()) - bar.n)
            bar.set_postfix({n: f"{t.mean_return():.0f}" for n, t in trainers.items()})
            update = max(t.updates for t in trainers.values())
            if print_table and update % report_every == 0:
                row = " | ".join(f"{last[n].get('env_steps', 0):>11} "
                                 f"{last[n].get('mean_return', float('nan')):>7.1f} "
                                 f"{last[n].get('loss', float('nan')):>8.4f}" for n in BACKENDS)
                bar.write(f"{update:>6} | {row} | {lockstep_diff:>9.2e}")
    results = {"algorithm": algorithm, "env": env_id, "seed": seed, "dtype": dtype,
               "target": target, "max_param_diff": lockstep_diff,
               "max_param_diff_at_update": diff_updates, "tolerance": tolerance,
               "updates_within_tolerance": within_tolerance, "backends": {}}
    for name, trainer in trainers.items():
        results["backends"][name] = {
            "solved": trainer.solved(target), "env_steps": trainer.env_steps,
            "episodes": trainer.episodes, "updates": trainer.updates,
            "final_mean_return": trainer.mean_return(), "wall_s": round(sum(times[name]), 3),
            "ms_per_update": round(1000 * float(np.median(times[name])), 3),
            "last_loss": last[name].get("loss"),
        }
    plot_path = Path(out) / f"compare-{algorithm}-{env_id.replace('/', '_')}.png"
    results["plot"] = str(plot_learning_curves(
        trainers, plot_path, f"{algorithm} on {env_id}: PyTorch vs TensorFlow", target))
    for trainer in trainers.values():
        trainer.close()
    return results


def format_results(results: dict) -> str:
    """The side-by-side summary table."""
    rows = [("solved", "solved"), ("env steps", "env_steps"), ("episodes", "episodes"),
            ("updates", "updates"), ("final mean return", "final_mean_return"),
            ("last loss", "last_loss"), ("time per update (ms)", "ms_per_update"),
            ("wall time (s)", "wall_s")]
    lines = [f"\n{'':<22}" + "".join(f"{n:>14}" for n in results["backends"])]
    for label, key in rows:
        values = [results["backends"][n][key] for n in results["backends"]]
        cells = "".join(f"{v:>14.4g}" if isinstance(v, float) else f"{v!s:>14}" for v in values)
        lines.append(f"{label:<22}{cells}")
    lines.append(f"\nmax parameter difference torch vs tf: {results['max_param_diff']:.3e} "
                 f"(after update {results['max_param_diff_at_update']}, both still training)")
    lines.append(f"parameters equal within {results['tolerance']:.0e} for the first "
                 f"{results['updates_within_tolerance']} updates (training amplifies rounding "
                 "differences about tenfold per update until an action flips; then the runs "
                 "part ways)")
    lines.append(f"learning curves: {results['plot']}")
    return "\n".join(lines)


def to_json(results: dict) -> str:
    return json.dumps(results, indent=2)
