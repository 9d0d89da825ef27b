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

This module computes; :mod:`duetrl.core.scale.report` reads the sweep folder and writes
report.md, report.json and the figures.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SCORE_SCALE = {"CartPole-v1": 500.0, "CartPole-v0": 200.0}
"""Maximum episode return of environments with a known one: return metrics are divided by it."""

CONFIDENCE = 0.95
"""Coverage of every confidence interval."""

CURVE_POINTS = 50
"""Points of the common grid learning curves are interpolated onto."""


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


# --- grouping runs into methods -------------------------------------------------------------


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
    check_reps(reps)
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
    check_reps(reps)
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
    check_reps(reps)
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


def check_reps(reps: int) -> None:
    if not isinstance(reps, int) or reps < 10:
        raise ValueError(f"reps: expected an integer >= 10 bootstrap resamples, got {reps!r}")


# --- learning curves ----------------------------------------------------------------------


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

