"""Store a sweep's per-run summaries as a small JSON a tutorial reads instead of training.

    python tools/store_sweep_runs.py runs/sweeps/lm_agent \\
        --out tutorials/results/ch09_3_lm_agent_sweep.json

reads ``SWEEP_DIR/results.csv`` (``duetrl sweep``'s table, one row per run) and each finished
run's ``runs/<run_id>/log.csv``, and writes, for every run whose status is ``done``: its id,
seed, backend, settings (the sweep file's ``setting.*`` columns), the chosen summary numbers
(``--metrics``) and its learning curve (``--curve``, one value per logged update). Runs not
done are listed under ``excluded`` with their status. The format (``SWEEP_RUNS_FORMAT``) is read
back by ``duetrl.core.tutorial.read_sweep_runs``. Nothing here runs a model: the numbers are
exactly the sweep's.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import sys
from pathlib import Path

from duetrl.core.checkpoint import atomic_write
from duetrl.core.run.loop import read_log
from duetrl.core.tutorial import SWEEP_RUNS_FORMAT

LM_AGENT_METRICS = ("sampled_success_rate", "heldout_sampled_success_rate", "success_rate",
                    "heldout_success_rate", "env_steps")
"""The numbers ch09_3 reads of each ``duetrl agent train`` run (greedy and sampled, train and
held-out worlds) and its environment steps."""


def _value(text: str) -> int | float | str:
    """A CSV cell as an int, a float or the text itself."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _number(text: str, where: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{where}: expected a finite number, got {text!r}")
    return number


def _curve(log: Path, column: str) -> list[float]:
    rows = read_log(log)
    if rows and column not in rows[0]:
        raise ValueError(f"{log}: no column {column!r}; it has {list(rows[0])}")
    return [round(_number(row[column], f"{log}: {column}"), 6) for row in rows]


def sweep_runs(sweep_dir: str | Path, metrics: tuple[str, ...] = LM_AGENT_METRICS,
               curve: str | None = "success_rate") -> dict:
    """The JSON-ready dict of ``sweep_dir``'s finished runs (see the module's docstring).

    :raises FileNotFoundError: no ``results.csv``, or a finished run without its ``log.csv``
        (only when ``curve`` is asked for).
    :raises ValueError: a metric missing from the table, or not a finite number in a done run.
    """
    sweep_dir = Path(sweep_dir)
    table = sweep_dir / "results.csv"
    if not table.is_file():
        raise FileNotFoundError(f"{table}: not a sweep folder (duetrl sweep writes results.csv)")
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    columns = list(rows[0]) if rows else []
    missing = [m for m in metrics if m not in columns]
    if missing:
        raise ValueError(f"{table}: no column {missing}; it has {columns}")
    runs, excluded = [], []
    for row in rows:
        if row["status"] != "done":
            excluded.append({"run_id": row["run_id"], "status": row["status"]})
            continue
        run = {"run_id": row["run_id"], "seed": int(row["seed"]), "backend": row["backend"],
               "settings": {c.removeprefix("setting."): _value(v) for c, v in row.items()
                            if c.startswith("setting.")}}
        for metric in metrics:
            run[metric] = _number(row[metric], f"{table}: {row['run_id']} {metric}")
        if curve is not None:
            run["curve"] = _curve(sweep_dir / "runs" / row["run_id"] / "log.csv", curve)
        runs.append(run)
    sweep_file = sweep_dir / "sweep.toml"
    source = {"sweep_dir": sweep_dir.name, "metrics": list(metrics), "curve": curve,
              "sweep_toml_sha256": (hashlib.sha256(sweep_file.read_bytes()).hexdigest()
                                    if sweep_file.is_file() else None)}
    return {"format": SWEEP_RUNS_FORMAT, "source": source, "runs": runs, "excluded": excluded}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep_dir", help="a folder duetrl sweep wrote (results.csv, runs/)")
    parser.add_argument("--out", required=True, help="the JSON to write")
    parser.add_argument("--metrics", default=",".join(LM_AGENT_METRICS),
                        help="comma-separated results.csv columns to keep per run")
    parser.add_argument("--curve", default="success_rate",
                        help="the log.csv column kept as each run's curve ('' for none)")
    args = parser.parse_args(argv)
    stored = sweep_runs(args.sweep_dir, tuple(m for m in args.metrics.split(",") if m),
                        args.curve or None)
    text = json.dumps(stored, indent=1) + "\n"
    out = atomic_write(args.out, lambda tmp: Path(tmp).write_text(text))  # never half a file
    print(f"{out}: {len(stored['runs'])} runs done, {len(stored['excluded'])} excluded",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
