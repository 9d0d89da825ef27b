"""The comparison of outline 6.2.3: supervised next-item prediction, REINFORCE without
correction, with the off-policy correction and with the top-K correction, each over several
seeds, on the simulator's top-K reward of the learned slate, with honest statistics (IQM and
95% stratified-bootstrap CIs, P(top_k > X); ``core/scale/statistics.py``).

The methods of one seed share its supervised warm-up (``RecommenderRun.branch``); each method's
run is then a run of ``duetrl.core.run`` in its own folder ``out/<method>-seed<seed>`` (its
log.csv starts after the warm-up), so a comparison that stopped can be run again: finished runs
are read back from their summary.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from duetrl.core.cases.recommender.evaluate import method_statistics
from duetrl.core.cases.recommender.train import RecommenderRun, RecommenderSettings
from duetrl.core.interfaces.recommender import METHODS

HEADLINES = ("top_k_reward", "expected_clicks")
"""The figures compared with statistics (every run's summary keeps the others: IPS, SNIPS, ...)."""


def compare_methods(
    backend: ModuleType,
    settings: RecommenderSettings,
    out: str | Path,
    methods: Sequence[str] = METHODS,
    seeds: Sequence[int] = (0, 1, 2),
    quiet: bool = True,
    reps: int = 2000,
    on_run: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train every method on every seed (the other settings as ``settings``) and compare.

    :returns: ``{"runs": [summary, ...], "statistics": {figure: method_statistics}, ...}``.
    :raises ValueError: an unknown method, or no seed.
    """
    from duetrl.core.run import run

    for method in methods:
        if method not in METHODS:
            raise ValueError(f"methods: expected some of {list(METHODS)}, got {method!r}")
    if not seeds:
        raise ValueError("seeds: expected at least one seed, got none")
    runs = []
    for seed in seeds:
        warm_up = None  # one supervised warm-up per seed, shared by the methods (branch)
        for method in methods:
            folder = Path(out) / f"{method}-seed{seed}"
            done = folder / "summary.json"
            if done.is_file():  # a finished run: read back, not trained again
                summary = json.loads(done.read_text())
            else:
                if warm_up is None:
                    warm_up = RecommenderRun(backend, replace(settings, method=method, seed=seed))
                    while warm_up.updates < settings.pretrain_steps:
                        warm_up.step()
                summary = run(warm_up.branch(method), folder, quiet=quiet, unit="update")
            runs.append(summary)
            if on_run is not None:
                on_run(summary)
    statistics = {}
    for figure in HEADLINES:
        scores = {m: [r[figure] for r in runs if r["method"] == m] for m in methods}
        statistics[figure] = method_statistics(scores, reps)
    return {
        "backend": backend.NAME,
        "methods": list(methods),
        "seeds": list(seeds),
        "k": settings.k,
        "runs": runs,
        "statistics": statistics,
    }


def plot_comparison(result: dict[str, Any], path: str | Path) -> Path:
    """Each method's runs (dots) and IQM with its 95% CI (bar), on the top-K reward."""
    from duetrl.core.plots import pyplot, save_figure

    plt = pyplot()
    methods, stats = result["methods"], result["statistics"]["top_k_reward"]["methods"]
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, method in enumerate(methods):
        scores = [r["top_k_reward"] for r in result["runs"] if r["method"] == method]
        ax.plot(
            np.full(len(scores), i),
            scores,
            "o",
            color="0.5",
            alpha=0.6,
            label="one seed" if i == 0 else None,
        )
        entry = stats[method]
        low, high = entry["iqm_ci"] or (entry["iqm"], entry["iqm"])
        ax.errorbar(
            [i + 0.15],
            [entry["iqm"]],
            yerr=[[entry["iqm"] - low], [high - entry["iqm"]]],
            fmt="s",
            capsize=4,
            label="IQM, 95% CI" if i == 0 else None,
        )
    ax.set_xticks(range(len(methods)), [m.replace("_", " ") for m in methods])
    ax.set_ylabel(f"top-{result['k']} reward (held-out users)")
    ax.set_title(f"{result['backend']}: {len(result['seeds'])} seeds per method")
    ax.legend()
    return save_figure(fig, path)
