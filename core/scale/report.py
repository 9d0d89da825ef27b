"""Honest statistics over seeds (outline 8.3.3): what ``duetrl report SWEEP_DIR`` computes.

One training run is one draw from a random variable: change the seed and the final return
moves, often by more than the difference between two methods. So a report aggregates the
runs of each *method* (algorithm, backend and every swept setting; the runs of one method
differ only by seed) with the statistics of Agarwal et al., "Deep RL at the edge of the
statistical precipice" (NeurIPS 2021), computed by their library ``rliable``:

- mean, median and the interquartile mean (IQM): the mean of the middle half of the sorted
  scores, ``scipy.stats.trim_mean(x, 0.25)`` (``n // 4`` runs cut from each end). It is
  robust to one lucky or unlucky seed, yet uses half the runs, where the median uses one;
- 95% stratified-bootstrap confidence intervals (percentile method): resample the runs of
  each method with replacement ``reps`` times and take the 2.5% and 97.5% quantiles of the
  statistic. With one run there is nothing to resample: the interval is undefined (``None``);
- performance profiles: the fraction of runs whose score is *strictly* above tau, for every
  tau (rliable's ``scores > tau``), with bootstrap bands;
- the probability of improvement of method X over method Y, P(X > Y) =
  (1/mn) sum_i sum_j S(x_i, y_j) with S = 1 if x_i > y_j, 1/2 if equal, 0 otherwise (the
  Mann-Whitney U statistic divided by mn), for each pair of methods that differ in exactly
  one factor: torch vs tf of one algorithm, one algorithm vs another, one setting vs another;
- learning curves: each run's ``log.csv`` (``mean_return`` against ``env_steps``; RLHF runs:
  ``reward`` against ``update``) interpolated onto a common grid, IQM across seeds with
  bootstrap bands. A run that stopped early (solved) holds its last value to the grid's end.

Scores are normalised by the environment's maximum return where it is known
(:data:`SCORE_SCALE`, 500 for CartPole-v1), so 1.0 means a perfect policy; otherwise they are
reported raw. Each environment of a sweep gets its own tables. Failed and timed-out runs are
left out, and listed.
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REQUIRED_COLUMNS = ("run_id", "algorithm", "backend", "seed", "status")
"""Columns every sweep's ``results.csv`` has (the sweep folder contract)."""

SCORE_SCALE = {"CartPole-v1": 500.0, "CartPole-v0": 200.0}
"""Maximum episode return of environments with a known one: return metrics are divided by it."""

CONFIDENCE = 0.95
"""Coverage of every confidence interval."""

CURVE_POINTS = 50
"""Points of the common grid learning curves are interpolated onto."""

CURVE_COLUMNS = (("env_steps", "mean_return"), ("update", "reward"))
"""(x, y) columns of a run's log.csv, tried in order: RL runs, then RLHF runs."""


@dataclass
class Method:
    """The runs of one method: same algorithm, backend, environment and settings; seeds differ.

    ``scores`` are the normalised metric of each run, shape ``(runs,)``.
    """

    algorithm: str
    backend: str
    env: str
    settings: dict[str, str]
    run_ids: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    run_dirs: list[str] = field(default_factory=list)
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def label(self) -> str:
        """E.g. ``"ppo torch learning_rate=0.001"``."""
        settings = " ".join(f"{name}={value}" for name, value in self.settings.items() if value)
        return " ".join(part for part in (self.algorithm, self.backend, settings) if part)


def _rliable():
    """``(rliable.library, rliable.metrics)``, with a clear message when the extra is missing.

    (rliable's bootstrap is ``arch.bootstrap``; arch 7.2, the newest rliable accepts, fails to
    import under pandas 3, so the ``scale`` extra keeps pandas below 3.)
    """
    try:
        from rliable import library, metrics
    except ImportError as error:
        raise ImportError(f"duetrl report needs rliable: pip install 'duetrl[scale]' ({error})"
                          ) from error
    return library, metrics


@contextlib.contextmanager
def _seeded(seed: int):
    """rliable resamples with NumPy's global generator: seed it here, restore it after."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


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
                                               "status": str, "env": str, "error": str})
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


def numeric_columns(results) -> list[str]:
    """Columns that can be a metric: numeric, not the seed or a swept setting."""
    import pandas as pd

    return [c for c in results.columns if pd.api.types.is_numeric_dtype(results[c])
            and c not in ("seed", "attempts") and not c.startswith("setting.")]


def check_metric(results, metric: str) -> None:
    """:raises ValueError: ``metric`` is not a numeric column of results.csv (names them)."""
    available = numeric_columns(results)
    if metric not in available:
        raise ValueError(f"metric: expected a numeric column of results.csv, one of "
                         f"{available}, got {metric!r}")


def _text(value: Any) -> str:
    """A cell as text: missing (NaN/None) is empty, 0.0010 and 1e-3 both read '0.001'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def score_scale(env: str, metric: str) -> float | None:
    """What a score is divided by: the env's maximum return for return metrics, else None."""
    return SCORE_SCALE.get(env) if "return" in metric else None


def group_methods(results, metric: str) -> tuple[list[Method], list[dict[str, str]]]:
    """Split the finished runs into methods; list the runs left out and why.

    A method is keyed on (env, algorithm, backend, every ``setting.*`` value), so two backends
    or two values of one setting are never pooled. Runs whose status is not ``done``, or
    whose metric is missing, are excluded.

    :returns: ``(methods, excluded)``, excluded as ``{"run_id", "status", "reason"}`` dicts.
    """
    check_metric(results, metric)
    setting_columns = sorted(c for c in results.columns if c.startswith("setting."))
    methods: dict[tuple, Method] = {}
    raw: dict[tuple, list[float]] = {}
    excluded = []
    for row in results.to_dict("records"):
        status = _text(row["status"])
        if status != "done":
            excluded.append({"run_id": _text(row["run_id"]), "status": status,
                             "reason": _text(row.get("error")) or status})
            continue
        if _text(row[metric]) == "" or not math.isfinite(float(row[metric])):
            excluded.append({"run_id": _text(row["run_id"]), "status": status,
                             "reason": f"{metric} is {_text(row[metric]) or 'missing'}"})
            continue
        env = _text(row.get("env"))
        settings = {c.removeprefix("setting."): _text(row[c]) for c in setting_columns}
        key = (env, _text(row["algorithm"]), _text(row["backend"]), *settings.values())
        if key not in methods:
            methods[key] = Method(_text(row["algorithm"]), _text(row["backend"]), env, settings)
            raw[key] = []
        method = methods[key]
        method.run_ids.append(_text(row["run_id"]))
        method.seeds.append(int(row["seed"]))
        method.run_dirs.append(_text(row.get("run_dir")) or f"runs/{_text(row['run_id'])}")
        raw[key].append(float(row[metric]))
    for key, method in methods.items():
        scale = score_scale(method.env, metric) or 1.0
        method.scores = np.asarray(raw[key], dtype=np.float64) / scale
    return list(methods.values()), excluded


# --- statistics (rliable) -------------------------------------------------------------------


def interquartile_mean(scores: np.ndarray) -> float:
    """IQM: the mean of the middle half of the sorted scores (``n // 4`` cut from each end)."""
    _, metrics = _rliable()
    return float(metrics.aggregate_iqm(np.asarray(scores, dtype=np.float64).reshape(-1, 1)))


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y) = (1/mn) sum_i sum_j S(x_i, y_j), S = 1 if x_i > y_j, 1/2 if equal, else 0."""
    _, metrics = _rliable()
    x = np.asarray(x, dtype=np.float64).reshape(-1, 1)
    y = np.asarray(y, dtype=np.float64).reshape(-1, 1)
    return float(metrics.probability_of_improvement(x, y))


STATISTICS = ("mean", "iqm", "median", "optimality_gap")
"""The aggregate statistics of each method, in :func:`aggregate_statistics`' order."""


def _aggregates(scores: np.ndarray) -> np.ndarray:
    """[mean, IQM, median, optimality gap] of one method's ``(runs, 1)`` scores.

    The median is over runs: rliable's ``aggregate_median`` is the median over *tasks* of
    per-task means, which with one task is the mean. The optimality gap, 1 - mean(min(x, 1)),
    is how far the runs fall short of a perfect (normalised) score.
    """
    _, metrics = _rliable()
    return np.array([metrics.aggregate_mean(scores), metrics.aggregate_iqm(scores),
                     np.median(scores), metrics.aggregate_optimality_gap(scores, 1.0)])


def aggregate_statistics(scores: dict[str, np.ndarray], reps: int = 2000,
                         seed: int = 0) -> dict[str, dict[str, Any]]:
    """Point estimates and stratified-bootstrap CIs of :data:`STATISTICS` for each method.

    :param scores: ``{label: (runs,) scores}``.
    :returns: ``{label: {"runs": n, "mean": x, "mean_ci": [lo, hi] or None, "iqm": ...}}``;
        a CI is None when the method has fewer than 2 runs.
    """
    library, _ = _rliable()
    _check_reps(reps)
    out = {}
    for label, values in scores.items():
        values = np.asarray(values, dtype=np.float64).reshape(-1, 1)
        point = _aggregates(values)
        entry: dict[str, Any] = {"runs": len(values)}
        if len(values) >= 2:
            with _seeded(seed):
                _, intervals = library.get_interval_estimates(
                    {label: values}, _aggregates, reps=reps, confidence_interval_size=CONFIDENCE)
            bounds = intervals[label]  # (2, statistics): lower row, upper row
        for i, name in enumerate(STATISTICS):
            entry[name] = float(point[i])
            entry[f"{name}_ci"] = ([float(bounds[0, i]), float(bounds[1, i])]
                                   if len(values) >= 2 else None)
        out[label] = entry
    return out


def _improvement(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y) of ``(runs, 1)`` arrays as one (m, n) comparison matrix: the value of
    rliable's ``probability_of_improvement`` (tested equal) without a SciPy test per resample."""
    x, y = x.reshape(-1, 1), y.reshape(1, -1)
    return float(np.mean((x > y) + 0.5 * (x == y)))


def improvement_with_ci(x: np.ndarray, y: np.ndarray, reps: int = 2000,
                        seed: int = 0) -> tuple[float, list[float] | None]:
    """P(X > Y) and its CI, X's and Y's runs resampled independently (None if either has 1)."""
    library, metrics = _rliable()
    _check_reps(reps)
    x = np.asarray(x, dtype=np.float64).reshape(-1, 1)
    y = np.asarray(y, dtype=np.float64).reshape(-1, 1)
    point = float(metrics.probability_of_improvement(x, y))
    if min(len(x), len(y)) < 2:
        return point, None
    with _seeded(seed):
        _, intervals = library.get_interval_estimates(
            {"p": [x, y]}, _improvement, reps=reps,
            confidence_interval_size=CONFIDENCE)
    low, high = np.ravel(intervals["p"])
    return point, [float(low), float(high)]


def _fraction_above(scores: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """Fraction of scores strictly above each tau: rliable's ``np.mean(scores > tau)``, all
    taus in one comparison instead of one Python call per tau."""
    return np.mean(scores.reshape(-1, 1) > np.reshape(taus, (1, -1)), axis=0)


def performance_profiles(scores: dict[str, np.ndarray], taus: np.ndarray, reps: int = 2000,
                         seed: int = 0) -> dict[str, dict[str, np.ndarray | None]]:
    """Fraction of each method's runs scoring strictly above each tau, with bootstrap bands.

    :returns: ``{label: {"profile": (taus,), "low": (taus,) or None, "high": ...}}``.
    """
    library, _ = _rliable()
    _check_reps(reps)
    out = {}
    for label, values in scores.items():
        values = np.asarray(values, dtype=np.float64).reshape(-1, 1)
        with _seeded(seed):
            profiles, bands = library.create_performance_profile(
                {label: values}, np.asarray(taus, dtype=np.float64), reps=reps,
                confidence_interval_size=CONFIDENCE, custom_profile_func=_fraction_above)
        has_band = len(values) >= 2
        out[label] = {"profile": np.asarray(profiles[label], dtype=np.float64),
                      "low": bands[label][0] if has_band else None,
                      "high": bands[label][1] if has_band else None}
    return out


def _check_reps(reps: int) -> None:
    if not isinstance(reps, int) or reps < 10:
        raise ValueError(f"reps: expected an integer >= 10 bootstrap resamples, got {reps!r}")


# --- learning curves ----------------------------------------------------------------------


def read_curve(run_dir: str | Path) -> tuple[np.ndarray, np.ndarray, str, str] | None:
    """``(x, y, x_name, y_name)`` from a run's log.csv, or None without a usable log."""
    import pandas as pd

    path = Path(run_dir) / "log.csv"
    if not path.is_file():
        return None
    log = pd.read_csv(path)
    for x_name, y_name in CURVE_COLUMNS:
        if x_name in log.columns and y_name in log.columns:
            rows = log[[x_name, y_name]].apply(pd.to_numeric, errors="coerce").dropna()
            if len(rows):
                return (rows[x_name].to_numpy(np.float64), rows[y_name].to_numpy(np.float64),
                        x_name, y_name)
    return None


def curves_on_grid(curves: list[tuple[np.ndarray, np.ndarray]],
                   points: int = CURVE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Interpolate runs' ``(x, y)`` curves onto one grid: ``(grid, (runs, points) values)``.

    The grid starts where every run has data (the latest first point) and ends at the longest
    run's last point; a shorter run (stopped when solved) holds its last value.
    """
    start = max(x[0] for x, _ in curves)
    stop = max(x[-1] for x, _ in curves)
    grid = np.linspace(start, stop, points) if stop > start else np.array([start])
    return grid, np.stack([np.interp(grid, x, y) for x, y in curves])


def _iqm_over_runs(values: np.ndarray) -> np.ndarray:
    """IQM across runs at each grid point of ``(runs, 1, points)`` values."""
    import scipy.stats

    return scipy.stats.trim_mean(values[:, 0, :], 0.25, axis=0)


def learning_curve_band(values: np.ndarray, reps: int = 2000,
                        seed: int = 0) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """IQM across runs at each point of ``(runs, points)`` curves, with bootstrap bands."""
    library, _ = _rliable()
    values = np.asarray(values, dtype=np.float64)[:, None, :]  # (runs, tasks=1, points)
    iqm = _iqm_over_runs(values)
    if len(values) < 2:
        return iqm, None, None
    with _seeded(seed):
        _, intervals = library.get_interval_estimates(
            {"curve": values}, _iqm_over_runs, reps=reps, confidence_interval_size=CONFIDENCE)
    return iqm, intervals["curve"][0], intervals["curve"][1]


# --- comparisons ------------------------------------------------------------------------


def differing_factor(a: Method, b: Method) -> str | None:
    """The one factor two methods differ in ("backend", "algorithm" or a setting), else None.

    A setting empty in either method (it does not apply to that algorithm) is not a difference.
    """
    if a.env != b.env:
        return None
    factors = [name for name in ("backend", "algorithm") if getattr(a, name) != getattr(b, name)]
    for name in sorted(set(a.settings) | set(b.settings)):
        x, y = a.settings.get(name, ""), b.settings.get(name, "")
        if x and y and x != y:
            factors.append(name)
    return factors[0] if len(factors) == 1 else None


def comparison_pairs(methods: list[Method]) -> list[tuple[Method, Method, str]]:
    """``(X, Y, factor)`` for every pair of methods differing in exactly one factor.

    X is torch when the factor is the backend; otherwise the earlier method in sweep order.
    """
    pairs = []
    for i, a in enumerate(methods):
        for b in methods[i + 1:]:
            factor = differing_factor(a, b)
            if factor is None:
                continue
            x, y = (b, a) if factor == "backend" and b.backend == "torch" else (a, b)
            pairs.append((x, y, factor))
    return pairs


# --- the report -----------------------------------------------------------------------------


def _slug(env: str) -> str:
    return (env or "all").replace("/", "_")


def make_report(sweep_dir: str | Path, metric: str = "final_mean_return", reps: int = 2000,
                seed: int = 0, out: str | Path | None = None) -> dict[str, Any]:
    """Aggregate a sweep over seeds; write report.md, report.json and figures into ``out``.

    :param sweep_dir: a folder written by ``duetrl sweep`` (see the module docstring).
    :param metric: numeric column of results.csv to compare methods on.
    :param reps: bootstrap resamples per confidence interval.
    :param seed: seeds the bootstrap, so a report is reproducible.
    :param out: where the files go (default ``SWEEP_DIR/report``).
    :returns: the report as a JSON-ready dict (what report.json holds).
    """
    from duetrl.core.checkpoint import atomic_write

    _check_reps(reps)
    sweep_dir = Path(sweep_dir)
    results = load_results(sweep_dir)
    methods, excluded = group_methods(results, metric)
    out = Path(out) if out is not None else sweep_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    envs = sorted({m.env for m in methods})
    report: dict[str, Any] = {
        "sweep": str(sweep_dir), "metric": metric, "confidence": CONFIDENCE, "reps": reps,
        "seed": seed, "bootstrap": "rliable stratified bootstrap, percentile intervals",
        "runs": int(len(results)), "excluded": excluded, "envs": [],
    }
    for env in envs:
        group = [m for m in methods if m.env == env]
        prefix = "" if len(envs) == 1 else f"{_slug(env)}-"
        report["envs"].append(_env_report(sweep_dir, env, group, metric, reps, seed, out, prefix))
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


def _env_report(sweep_dir: Path, env: str, methods: list[Method], metric: str, reps: int,
                seed: int, out: Path, prefix: str) -> dict[str, Any]:
    scale = score_scale(env, metric)
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
    curves, notes = _method_curves(sweep_dir, methods, reps, seed)
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
            "curves": {k: {n: c[n] for n in ("x", "iqm", "low", "high")}
                       for k, c in curves.items()},
            "notes": notes, "figures": figures}


def _method_curves(sweep_dir: Path, methods: list[Method], reps: int,
                   seed: int) -> tuple[dict[str, dict], list[str]]:
    """IQM learning curve with bands for each method whose runs have logs; notes on the rest."""
    curves, notes = {}, []
    for m in methods:
        runs = []
        for run_id, run_dir in zip(m.run_ids, m.run_dirs):
            curve = read_curve(sweep_dir / run_dir)
            if curve is None:
                notes.append(f"{run_id}: no log.csv with {' or '.join(map(str, CURVE_COLUMNS))}")
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
             f"Intervals: {percent}% {report['bootstrap']}, {report['reps']} resamples, "
             f"seed {report['seed']}. IQM = mean of the middle half of the sorted runs.", ""]
    if not report["envs"]:
        lines += [f"No finished run has a `{report['metric']}`: nothing to aggregate.", ""]
    for env in report["envs"]:
        lines += [f"## {env['env'] or '(no environment)'}", ""]
        if env["scale"]:
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
    return f"{metric} / {scale:g}" if scale else metric


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
    ax.set_title(f"{env}: learning curves, {round(100 * CONFIDENCE)}% bootstrap bands")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)
