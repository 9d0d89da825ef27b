"""``duetrl compare ALGO``: PyTorch and TensorFlow trained from the same start, side by side.

Both trainers get the same initial weights (drawn in core), the same environment seeds and
the same sampling noise (for DQN: exploration coins and replay samples), and the one
compare driver (``duetrl.core.run.compare``) steps them in alternation, never at the same
time, so neither steals the other's CPU. Printed per report interval: each backend's mean
return and loss, and the largest parameter difference between them; at the end, time per
update and one plot of both learning curves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from duetrl.core.backend import BACKENDS
from duetrl.core.interfaces.rl_settings import ReinforceSettings
from duetrl.core.rl.base import RLTrainer, plot_learning_curves
from duetrl.core.rl.dqn import DQNTrainer
from duetrl.core.rl.dqn_settings import DQNSettings
from duetrl.core.rl.session import default_target
from duetrl.core.rl.train import PolicyGradientTrainer
from duetrl.core.run import compare as compare_trainers
from duetrl.core.run import max_param_difference
from duetrl.core.tolerances import TOLERANCES

__all__ = ["compare", "compare_dqn", "compare_rl", "format_results", "max_param_difference",
           "to_json"]


def compare_rl(trainers: dict[str, RLTrainer], dtype: str, out: str | Path, quiet: bool = False,
               report_every: int = 0) -> dict[str, Any]:
    """Step ``{"torch": trainer, "tf": trainer}`` (same settings and seed) to the end.

    :param report_every: print a table row every this many updates (0: none).
    :returns: ``algorithm``, ``env``, ``seed``, ``dtype``, ``target``, then what
        :func:`duetrl.core.run.compare` returns (``rows``, ``max_param_diff``,
        ``max_param_diff_at_update``, ``tolerance``, ``updates_within_tolerance``,
        ``same_updates``, ``backends``), then ``plot`` (both learning curves).
    """
    first = next(iter(trainers.values()))
    names = list(trainers)
    if report_every:
        print(f"compare {first.algorithm} on {first.env_id}: same weights, seed {first.seed} "
              f"and noise; {dtype}")
        print(f"{'update':>6} | " + " | ".join(
            f"{n + ' steps':>11} {'return':>7} {'loss':>8}" for n in names) + f" | {'max|dθ|':>9}")

    def report(row: dict[str, Any]) -> None:
        if row["update"] % report_every == 0:
            from tqdm import tqdm

            cells = " | ".join(f"{row[f'env_steps_{n}']:>11} {row[f'mean_return_{n}']:>7.1f} "
                               f"{row[f'loss_{n}']:>8.4f}" for n in names)
            tqdm.write(f"{row['update']:>6} | {cells} | {row['max_param_diff']:>9.2e}")

    tolerance = TOLERANCES["float64" if dtype == "float64" else "float32_model"]
    try:
        results = compare_trainers(trainers, lambda t: t.params(), tolerance,
                                   on_update=report if report_every else None, quiet=quiet,
                                   description=f"compare {first.algorithm}")
        path = Path(out) / f"compare-{first.algorithm}-{first.env_id.replace('/', '_')}.png"
        plot = plot_learning_curves(trainers, path, f"{first.title} on {first.env_id}: "
                                    "PyTorch vs TensorFlow", first.target)
    finally:
        for trainer in trainers.values():
            trainer.close()
    return {"algorithm": first.algorithm, "env": first.env_id, "seed": first.seed,
            "dtype": dtype, "target": first.target, **results, "plot": str(plot)}


def compare(algorithm: str, env_id: str, settings: ReinforceSettings, seed: int = 0,
            total_steps: int = 100_000, target: float | None = None, out: str = "runs",
            quiet: bool = False, report_every: int = 20, dtype: str = "float32",
            print_table: bool = True) -> dict:
    """Train both backends of a policy-gradient algorithm in alternation (:func:`compare_rl`)."""
    target = default_target(env_id) if target is None else target
    trainers = {name: PolicyGradientTrainer(algorithm, env_id, name, settings, seed, total_steps,
                                            dtype, target=target)
                for name in BACKENDS}
    return compare_rl(trainers, dtype, out, quiet, report_every if print_table else 0)


def compare_dqn(env_id: str, settings: DQNSettings, seed: int = 0, total_steps: int = 50_000,
                target: float | None = None, out: str = "runs", quiet: bool = False,
                dtype: str = "float32", report_every: int = 0) -> dict:
    """PyTorch and TensorFlow DQN from the same weights, exploration coins and replay samples,
    stepped in alternation (:func:`compare_rl`)."""
    target = default_target(env_id) if target is None else target
    trainers = {name: DQNTrainer(env_id, name, settings, seed, total_steps, dtype, target=target)
                for name in BACKENDS}
    return compare_rl(trainers, dtype, out, quiet, report_every)


def format_results(results: dict) -> str:
    """The side-by-side summary table (the rows a result has: DQN adds its greedy return)."""
    rows = [("solved", "solved"), ("env steps", "env_steps"), ("episodes", "episodes"),
            ("updates", "updates"), ("gradient steps", "gradient_steps"),
            ("greedy return", "greedy_return"), ("final mean return", "final_mean_return"),
            ("last loss", "last_loss"), ("time per update (ms)", "ms_per_update"),
            ("wall time (s)", "wall_s")]
    backends = results["backends"]
    lines = [f"\n{'':<22}" + "".join(f"{n:>14}" for n in backends)]
    for label, key in rows:
        if not all(key in backends[n] for n in backends):
            continue
        values = [backends[n][key] for n in backends]
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
    """The results as JSON, without the per-update ``rows`` (the table printed as it went)."""
    return json.dumps({k: v for k, v in results.items() if k != "rows"}, indent=2)
