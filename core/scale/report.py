"""``duetrl report SWEEP_DIR``: read a sweep folder, aggregate it, write the report.

    report = make_report("runs/sweeps/cartpole")   # report.md, report.json, four figures
    report = make_report("runs/sweeps/lm_agent", metric="sampled_success_rate")

The score of a run is one numeric column of results.csv (``metric``); by default
(``"auto"``) ``final_mean_return`` when the sweep has it (RL runs), else ``success_rate``
(LM-agent runs, ``duetrl agent train``). The learning curves draw one column of each run's
log.csv (``curve``) against ``env_steps`` (else ``update``); by default ``success_rate`` when
the score is a success rate, else the first of ``mean_return`` (RL), ``reward`` (RLHF) and
``success_rate`` a log has. A success rate is a fraction of episodes: it is not rescaled
(its scale is 1, and the optimality gap, 1 - mean, is reported).

The statistics (methods, IQM and the other aggregates with bootstrap CIs, P(X > Y),
performance profiles, learning-curve bands) are :mod:`duetrl.core.scale.statistics`; this
module reads ``results.csv`` and each run's ``log.csv``, and renders: the markdown tables,
report.json and the four PNG plots (aggregates, performance profiles, probability of
improvement, learning curves).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from duetrl.core.scale.statistics import (
    CONFIDENCE,
    STATISTICS,
    Method,
    aggregate_statistics,
    check_reps,
    comparison_pairs,
    curves_on_grid,
    group_methods,
    improvement_with_ci,
    learning_curve_band,
    numeric_columns,
    performance_profiles,
    score_scale,
)
from duetrl.core.scale.statistics import interquartile_mean as interquartile_mean  # re-exported
from duetrl.core.scale.statistics import (  # re-exported: tutorial 8.3.3 reaches them as rp.*
    probability_of_improvement as probability_of_improvement,
)

REQUIRED_COLUMNS = ("run_id", "algorithm", "backend", "seed", "status")
"""Columns every sweep's ``results.csv`` has (the sweep folder contract)."""

CURVE_COLUMNS = (("env_steps", "mean_return"), ("update", "reward"),
                 ("env_steps", "success_rate"), ("update", "success_rate"))
"""(x, y) columns of a run's log.csv, tried in order: RL runs, RLHF runs, LM-agent runs."""
CURVE_X = ("env_steps", "update")
"""The x axis of a learning curve of a chosen column: the first of these a log has."""
AUTO_METRICS = ("final_mean_return", "success_rate")
"""``metric="auto"``: the first of these results.csv has (RL runs, then LM-agent runs)."""


def is_success_rate(name: str) -> bool:
    """Whether a column is a success rate (a fraction of episodes, in [0, 1])."""
    return "success_rate" in name


def resolve_metric(results, metric: str = "auto") -> str:
    """``metric`` itself, or for ``"auto"`` the first of :data:`AUTO_METRICS` that results.csv
    has with a value.

    :raises ValueError: ``"auto"`` and none of them is a numeric column (names the ones there).
    """
    if metric != "auto":
        return metric
    available = numeric_columns(results)
    for name in AUTO_METRICS:
        if name in available and results[name].notna().any():  # a column of blanks: no
            return name
    raise ValueError(f"metric: results.csv has none of {list(AUTO_METRICS)}; pass --metric, one "
                     f"of {available}")


def curve_column(metric: str, curve: str = "auto") -> str | None:
    """The log.csv column the learning curves draw: ``curve``, or for ``"auto"``
    ``success_rate`` when the score is a success rate, else None (the first pair of
    :data:`CURVE_COLUMNS` a log has)."""
    if curve != "auto":
        return curve
    return "success_rate" if is_success_rate(metric) else None

# --- reading a sweep folder -------------------------------------------------------------


def load_results(sweep_dir: str | Path):
    """``SWEEP_DIR/results.csv`` as a pandas DataFrame, checked against the sweep contract.

    :raises FileNotFoundError: no such folder, or a sweep with no results.csv yet.
    :raises ValueError: a folder that is not a sweep, or results.csv without the contract's
        columns.
    """
    import pandas as pd

    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"sweep_dir: no folder at {str(sweep_dir)!r}")
    results_path = sweep_dir / "results.csv"
    if not results_path.is_file():
        if not (sweep_dir / "sweep.toml").is_file():
            raise ValueError(f"sweep_dir: {str(sweep_dir)!r} is not a sweep folder (expected "
                             f"sweep.toml and results.csv, as `duetrl sweep` writes)")
        raise FileNotFoundError(f"sweep_dir: no results.csv in {str(sweep_dir)!r} (the sweep "
                                f"has not finished a run yet)")
    results = pd.read_csv(results_path, dtype={"run_id": str, "algorithm": str, "backend": str,
                                               "status": str, "env": str, "error": str,
                                               "retried": str})
    missing = [c for c in REQUIRED_COLUMNS if c not in results.columns]
    if missing:
        raise ValueError(f"results.csv: expected columns {list(REQUIRED_COLUMNS)}, missing "
                         f"{missing} in {str(results_path)!r}")
    for column in results.columns:  # True/False columns (solved) as 1/0: a fraction is a metric
        values = set(results[column].dropna().astype(str))
        if values and values <= {"True", "False"}:
            results[column] = results[column].map({True: 1.0, False: 0.0, "True": 1.0,
                                                   "False": 0.0})
    return results


def read_curve(run_dir: str | Path,
               column: str | None = None) -> tuple[np.ndarray, np.ndarray, str, str] | None:
    """``(x, y, x_name, y_name)`` from a run's log.csv, or None without a usable log.

    :param column: the y column (x: the first of :data:`CURVE_X` the log has); None tries the
        pairs of :data:`CURVE_COLUMNS` in order.
    """
    import pandas as pd

    path = Path(run_dir) / "log.csv"
    if not path.is_file():
        return None
    log = pd.read_csv(path)
    pairs = CURVE_COLUMNS if column is None else tuple((x, column) for x in CURVE_X)
    for x_name, y_name in pairs:
        if x_name in log.columns and y_name in log.columns:
            rows = log[[x_name, y_name]].apply(pd.to_numeric, errors="coerce").dropna()
            if len(rows):
                return (rows[x_name].to_numpy(np.float64), rows[y_name].to_numpy(np.float64),
                        x_name, y_name)
    return None


# --- the report -----------------------------------------------------------------------------


def _slug(env: str) -> str:
    return (env or "all").replace("/", "_")


def make_report(sweep_dir: str | Path, metric: str = "auto", reps: int = 2000,
                seed: int = 0, out: str | Path | None = None,
                curve: str = "auto") -> dict[str, Any]:
    """Aggregate a sweep over seeds; write report.md, report.json and figures into ``out``.

    :param sweep_dir: a folder written by ``duetrl sweep`` (see the module docstring).
    :param metric: numeric column of results.csv to compare methods on; ``"auto"``:
        :func:`resolve_metric`.
    :param reps: bootstrap resamples per confidence interval.
    :param seed: seeds the bootstrap, so a report is reproducible.
    :param out: where the files go (default ``SWEEP_DIR/report``).
    :param curve: column of each run's log.csv for the learning curves; ``"auto"``:
        :func:`curve_column`.
    :returns: the report as a JSON-ready dict (what report.json holds).
    :raises ValueError: an unknown metric, or a ``curve`` no run's log.csv has (both named).
    """
    from duetrl.core.checkpoint import atomic_write

    check_reps(reps)
    sweep_dir = Path(sweep_dir)
    results = load_results(sweep_dir)
    metric = resolve_metric(results, metric)
    methods, excluded = group_methods(results, metric)
    column = curve_column(metric, curve)
    if curve != "auto":
        check_curve(sweep_dir, methods, curve)
    out = Path(out) if out is not None else sweep_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    envs = sorted({m.env for m in methods})
    report: dict[str, Any] = {
        "sweep": str(sweep_dir), "metric": metric, "curve": column or "auto",
        "confidence": CONFIDENCE, "reps": reps,
        "seed": seed, "bootstrap": "rliable stratified bootstrap, percentile intervals",
        "runs": int(len(results)), "excluded": excluded, "envs": [],
    }
    for env in envs:
        group = [m for m in methods if m.env == env]
        prefix = "" if len(envs) == 1 else f"{_slug(env)}-"
        report["envs"].append(_env_report(sweep_dir, env, group, metric, reps, seed, out, prefix,
                                          column))
    text = format_markdown(report)
    atomic_write(out / "report.md", lambda tmp: Path(tmp).write_text(text))
    payload = json.dumps(report, indent=2, allow_nan=False, default=_jsonable)
    atomic_write(out / "report.json", lambda tmp: Path(tmp).write_text(payload))
    report["files"] = {"markdown": str(out / "report.md"), "json": str(out / "report.json")}
    return report


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in report.json")


def check_curve(sweep_dir: Path, methods: list[Method], curve: str) -> None:
    """:raises ValueError: no run's log.csv has the column ``curve`` (names those they have)."""
    import pandas as pd

    columns: set[str] = set()
    for m in methods:
        for run_dir in m.run_dirs:
            path = sweep_dir / run_dir / "log.csv"
            if path.is_file():
                columns |= set(pd.read_csv(path, nrows=0).columns)
    if curve not in columns:
        raise ValueError(f"curve: expected a column of the runs' log.csv, one of "
                         f"{sorted(columns - set(CURVE_X))}, got {curve!r}")


def _env_report(sweep_dir: Path, env: str, methods: list[Method], metric: str, reps: int,
                seed: int, out: Path, prefix: str, column: str | None = None) -> dict[str, Any]:
    scale = 1.0 if is_success_rate(metric) else score_scale(env, metric)  # a fraction already
    scores = {m.label: m.scores for m in methods}
    statistics = aggregate_statistics(scores, reps, seed)
    entries = []
    for m in methods:
        entry = {"method": m.label, "algorithm": m.algorithm, "backend": m.backend,
                 "settings": m.settings, "run_ids": m.run_ids, "seeds": m.seeds,
                 "scores": m.scores.tolist(), **statistics[m.label]}
        if scale is None:  # the gap to a perfect score needs normalised scores
            entry.pop("optimality_gap"), entry.pop("optimality_gap_ci")
        entries.append(entry)
    comparisons = []
    for x, y, factor in comparison_pairs(methods):
        p, ci = improvement_with_ci(x.scores, y.scores, reps, seed)
        comparisons.append({"x": x.label, "y": y.label, "factor": factor, "p": p, "ci": ci,
                            "runs": [len(x.scores), len(y.scores)]})
    low = min(0.0, *(float(s.min()) for s in scores.values()))
    high = max(1.0 if scale else 0.0, *(float(s.max()) for s in scores.values()))
    taus = np.linspace(low, high, 101)
    profiles = performance_profiles(scores, taus, reps, seed)
    curves, notes = _method_curves(sweep_dir, methods, reps, seed, column)
    for m in methods:  # one method, one seed twice: something varied that no column records
        repeated = sorted({s for s in m.seeds if m.seeds.count(s) > 1})
        if repeated:
            notes.append(f"{m.label}: seed(s) {repeated} appear more than once; its runs may "
                         f"differ in a setting results.csv has no setting.* column for")
    figures = {
        "aggregates": str(plot_aggregates(entries, out / f"{prefix}aggregates.png", env, metric,
                                          scale)),
        "performance_profile": str(plot_profiles(taus, profiles, out / f"{prefix}"
                                                 "performance_profile.png", env, metric, scale)),
    }
    if comparisons:
        figures["probability_of_improvement"] = str(plot_improvement(
            comparisons, out / f"{prefix}probability_of_improvement.png", env))
    if curves:
        figures["learning_curves"] = str(plot_learning_curves(
            curves, out / f"{prefix}learning_curves.png", env))
    return {"env": env, "scale": scale, "methods": entries, "comparisons": comparisons,
            "profiles": {"taus": taus, **{k: p["profile"] for k, p in profiles.items()}},
            "curves": {k: {n: c[n] for n in ("x", "iqm", "low", "high", "x_name", "y_name")}
                       for k, c in curves.items()},
            "notes": notes, "figures": figures}


def _method_curves(sweep_dir: Path, methods: list[Method], reps: int, seed: int,
                   column: str | None = None) -> tuple[dict[str, dict], list[str]]:
    """IQM learning curve with bands for each method whose runs have logs; notes on the rest."""
    curves, notes = {}, []
    tried = CURVE_COLUMNS if column is None else tuple((x, column) for x in CURVE_X)
    for m in methods:
        runs = []
        for run_id, run_dir in zip(m.run_ids, m.run_dirs):
            curve = read_curve(sweep_dir / run_dir, column)
            if curve is None:
                notes.append(f"{run_id}: no log.csv with {' or '.join(map(str, tried))}")
            else:
                runs.append(curve)
        if not runs:
            continue
        grid, values = curves_on_grid([(x, y) for x, y, _, _ in runs])
        iqm, low, high = learning_curve_band(values, reps, seed)
        curves[m.label] = {"x": grid, "iqm": iqm, "low": low, "high": high, "runs": len(runs),
                           "x_name": runs[0][2], "y_name": runs[0][3]}
    return curves, notes


# --- markdown -------------------------------------------------------------------------------


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _ci(interval: list[float] | None) -> str:
    return "[n/a: 1 run]" if interval is None else f"[{interval[0]:.3f}, {interval[1]:.3f}]"


def format_markdown(report: dict[str, Any]) -> str:
    """report.md: per environment, the methods table and the probabilities of improvement."""
    percent = round(100 * report["confidence"])
    lines = [f"# Report: {report['sweep']}", "",
             f"Metric `{report['metric']}`; {report['runs']} runs in results.csv. "
             + (f"Learning curves: log.csv's `{report['curve']}` over seeds. "
                if report.get("curve", "auto") != "auto" else "") +
             f"Intervals: {percent}% {report['bootstrap']}, {report['reps']} resamples, "
             f"seed {report['seed']}. IQM = mean of the middle half of the sorted runs.", ""]
    if not report["envs"]:
        lines += [f"No finished run has a `{report['metric']}`: nothing to aggregate.", ""]
    for env in report["envs"]:
        lines += [f"## {env['env'] or '(no environment)'}", ""]
        if is_success_rate(report["metric"]):
            lines += [f"Scores are `{report['metric']}`, a fraction of episodes: 1 is a policy "
                      "that always succeeds.", ""]
        elif env["scale"]:
            lines += [f"Scores are `{report['metric']}` / {env['scale']:g} (the maximum return "
                      f"of {env['env']}): 1 is a perfect policy.", ""]
        else:
            lines += [f"Scores are raw `{report['metric']}` (no known normaliser).", ""]
        lines += [f"| method | runs | mean [{percent}% CI] | IQM [{percent}% CI] | median |",
                  "|---|---|---|---|---|"]
        for m in env["methods"]:
            lines.append(f"| {_cell(m['method'])} | {m['runs']} | {m['mean']:.3f} "
                         f"{_ci(m['mean_ci'])} | {m['iqm']:.3f} {_ci(m['iqm_ci'])} | "
                         f"{m['median']:.3f} |")
        lines.append("")
        if env["comparisons"]:
            lines += ["Probability of improvement, P(X > Y) = (1/mn) Σ_i Σ_j S(x_i, y_j), "
                      "S = 1, 1/2, 0 for >, =, <:", "",
                      f"| X | Y | differs in | P(X > Y) [{percent}% CI] |", "|---|---|---|---|"]
            for c in env["comparisons"]:
                lines.append(f"| {_cell(c['x'])} | {_cell(c['y'])} | {c['factor']} | {c['p']:.3f} "
                             f"{_ci(c['ci'])} |")
        else:
            lines.append("No two methods differ in exactly one factor: no P(X > Y) table.")
        lines.append("")
        lines += [f"- {_cell(note)}" for note in env["notes"]]
        lines += [f"![{name}]({Path(path).name})" for name, path in env["figures"].items()]
        lines.append("")
    if report["excluded"]:
        lines += ["## Runs left out", "", "| run | status | reason |", "|---|---|---|"]
        lines += [f"| {_cell(e['run_id'])} | {_cell(e['status'])} | {_cell(e['reason'])} |"
                  for e in report["excluded"]]
        lines.append("")
    return "\n".join(lines)


# --- figures --------------------------------------------------------------------------------


def _score_label(metric: str, scale: float | None) -> str:
    return f"{metric} / {scale:g}" if scale and scale != 1.0 else metric


def plot_aggregates(entries: list[dict], path: Path, env: str, metric: str,
                    scale: float | None) -> Path:
    """One panel per statistic: each method's point estimate with its CI as an error bar."""
    from duetrl.core.plots import pyplot, save_figure

    plt = pyplot()
    names = [s for s in STATISTICS if s in entries[0]]
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names) + 2,
                                                     0.5 * len(entries) + 1.5), squeeze=False)
    rows = np.arange(len(entries))
    for ax, name in zip(axes[0], names):
        points = np.array([e[name] for e in entries])
        intervals = [e[f"{name}_ci"] or [e[name], e[name]] for e in entries]
        errors = np.array([[p - lo for p, (lo, _) in zip(points, intervals)],
                           [hi - p for p, (_, hi) in zip(points, intervals)]])
        ax.errorbar(points, rows, xerr=np.maximum(errors, 0), fmt="o", capsize=4)
        ax.set_yticks(rows, [e["method"] for e in entries] if ax is axes[0][0] else [])
        ax.invert_yaxis()  # first method on top, as in the table
        ax.set_title(name.replace("_", " ").replace("iqm", "IQM"))
        ax.set_xlabel(_score_label(metric, scale))
        ax.grid(alpha=0.3)
    fig.suptitle(f"{env}: {round(100 * CONFIDENCE)}% bootstrap CIs over seeds")
    return save_figure(fig, path)


def plot_profiles(taus: np.ndarray, profiles: dict[str, dict], path: Path, env: str,
                  metric: str, scale: float | None) -> Path:
    """Performance profiles: fraction of runs scoring above tau, bands where defined."""
    from duetrl.core.plots import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, p in profiles.items():
        (line,) = ax.plot(taus, p["profile"], label=label)
        if p["low"] is not None:
            ax.fill_between(taus, p["low"], p["high"], color=line.get_color(), alpha=0.2)
    ax.set_xlabel(f"tau ({_score_label(metric, scale)})")
    ax.set_ylabel("fraction of runs with score > tau")
    ax.set_title(f"{env}: performance profiles")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_improvement(comparisons: list[dict], path: Path, env: str) -> Path:
    """P(X > Y) of each compared pair with its CI; 0.5 (no difference) marked."""
    from duetrl.core.plots import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 0.7 * len(comparisons) + 1.5))
    rows = np.arange(len(comparisons))
    points = np.array([c["p"] for c in comparisons])
    intervals = np.array([c["ci"] or [c["p"], c["p"]] for c in comparisons])
    errors = np.maximum(np.stack([points - intervals[:, 0], intervals[:, 1] - points]), 0)
    ax.errorbar(points, rows, xerr=errors, fmt="o", capsize=4)
    ax.axvline(0.5, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(rows, [f"P({c['x']}\n  > {c['y']})" for c in comparisons], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability of improvement")
    ax.set_title(f"{env}: probability of improvement")
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_learning_curves(curves: dict[str, dict], path: Path, env: str) -> Path:
    """IQM across seeds against steps, one line per method, with its bootstrap band."""
    from duetrl.core.plots import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, c in curves.items():
        (line,) = ax.plot(c["x"], c["iqm"], label=f"{label} ({c['runs']} runs)")
        if c["low"] is not None:
            ax.fill_between(c["x"], c["low"], c["high"], color=line.get_color(), alpha=0.2)
    first = next(iter(curves.values()))
    ax.set_xlabel(first["x_name"].replace("_", " "))
    ax.set_ylabel(f"IQM of {first['y_name'].replace('_', ' ')} over seeds")
    if is_success_rate(first["y_name"]):
        ax.set_ylim(-0.03, 1.03)  # a fraction of episodes: the whole range, always
    ax.set_title(f"{env}: learning curves, {round(100 * CONFIDENCE)}% bootstrap bands")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)
