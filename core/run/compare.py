"""Both backends side by side, for every ``duetrl compare``: two trainers from the same start
(initial weights, data and sampling noise all come from core), stepped in alternation, never at
the same time, so neither steals the other's CPU and each update can be compared.

After every update both have taken, the largest parameter difference between them,

    max|dtheta| = max_k max |theta_k^torch - theta_k^tf|,

says whether they are still the same computation. Rounding differences (~1e-7 per operation in
float32) grow through training until one sampled action or token flips; from there the two runs
go their own ways, both learning. ``updates_within_tolerance`` counts the updates before that.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from duetrl.core.run.loop import Trainer, progress_bar


def max_param_difference(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> float:
    """max_k max |a_k - b_k| over two canonical parameter dictionaries (the same names)."""
    if set(a) != set(b):
        raise ValueError(f"parameters: expected the same names, got {sorted(set(a) ^ set(b))} "
                         "in only one of them")
    return max(float(np.max(np.abs(np.asarray(a[k], np.float64) - np.asarray(b[k], np.float64))))
               for k in a)


def compare(
    trainers: Mapping[str, Trainer],
    params: Callable[[Trainer], Mapping[str, np.ndarray]],
    tolerance: float,
    same: Callable[[Mapping[str, Trainer]], bool] | None = None,
    on_update: Callable[[dict[str, Any]], None] | None = None,
    quiet: bool = False,
    description: str = "compare",
) -> dict[str, Any]:
    """Step every trainer until all are finished, one update of each in turn.

    :param trainers: ``{"torch": trainer, "tf": trainer}`` built from the same settings.
    :param params: a trainer's canonical parameters (NumPy), to measure max|dtheta|.
    :param tolerance: the difference still counted as equal (DESIGN.md's table).
    :param same: optional check after each common update that both made the same choices
        (the same sampled tokens, say); counted in ``same_updates``.
    :param on_update: called with each common update's row (to print a table as it goes).
    :returns: ``rows`` (per common update: ``update``, each backend's row under
        ``"<key>_<backend>"``, ``max_param_diff``, ``same``), ``max_param_diff`` and
        ``max_param_diff_at_update`` (the last common update), ``tolerance``,
        ``updates_within_tolerance``, ``same_updates``, and per backend under ``backends``:
        its :meth:`Trainer.evaluate`, ``updates``, ``wall_s`` and ``ms_per_update``.
    """
    names = list(trainers)
    times: dict[str, list[float]] = {name: [] for name in names}
    last: dict[str, dict[str, Any]] = {name: {} for name in names}
    rows: list[dict[str, Any]] = []
    within = same_until = 0
    total = max(t.progress()[1] for t in trainers.values())
    with progress_bar(total, quiet, description) as bar:
        while any(not t.finished() for t in trainers.values()):
            for name, trainer in trainers.items():
                if not trainer.finished():
                    began = time.perf_counter()
                    last[name] = trainer.step()
                    times[name].append(time.perf_counter() - began)
            bar.update(max(t.progress()[0] for t in trainers.values()) - bar.n)
            updates = {t.updates for t in trainers.values()}
            if len(updates) != 1:  # one has finished (solved) earlier: nothing to compare
                continue
            (update,) = updates
            diff = max_param_difference(*(params(t) for t in trainers.values()))
            agree = same(trainers) if same is not None else True
            if diff <= tolerance and within == update - 1:
                within = update
            if agree and same_until == update - 1:
                same_until = update
            row = {"update": update, "max_param_diff": diff, "same": agree,
                   **{f"{k}_{n}": v for n in names for k, v in last[n].items() if k != "update"}}
            rows.append(row)
            if on_update is not None:
                on_update(row)
    return {
        "rows": rows,
        "max_param_diff": rows[-1]["max_param_diff"] if rows else 0.0,
        "max_param_diff_at_update": rows[-1]["update"] if rows else 0,
        "tolerance": tolerance,
        "updates_within_tolerance": within,
        "same_updates": same_until,
        "backends": {
            name: {
                **trainer.evaluate(), "updates": trainer.updates,
                "wall_s": round(sum(times[name]), 3),
                "ms_per_update": round(1000 * float(np.median(times[name])), 3)
                if times[name] else float("nan"),
            }
            for name, trainer in trainers.items()
        },
    }
