"""The ``train`` sub-command the case studies share (``duetrl dialogue|translate|recommend|kg
train``): one trainer of ``duetrl.core.run`` on the run loop, its summary as JSON or as text.

Each command keeps what is its own (its settings, its headline line); the backend, its threads,
the run folder, the loop's options and the paths printed at the end are written here once.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def train_case(
    args: argparse.Namespace,
    make_trainer: Callable[[Any], Any],
    runs: Path,
    headline: Callable[[dict[str, Any]], str],
    **loop_options: Any,
) -> int:
    """Run ``make_trainer(backend)`` into ``--out`` (default ``runs/<backend>``) and print the
    summary: ``--json`` prints it whole, else ``headline(summary)`` and the log, plot and
    checkpoint paths. ``loop_options`` go to ``duetrl.core.run.run`` (``checkpoint_every``...).
    Returns the exit status."""
    from duetrl.core.backend import load_backend
    from duetrl.core.run import run

    backend = load_backend(args.backend)
    backend.set_num_threads(args.threads)
    out = Path(args.out) if args.out else runs / args.backend
    summary = run(make_trainer(backend), out, resume=args.resume, quiet=args.quiet,
                  tensorboard=args.tensorboard, unit="update", **loop_options)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    print(f"{headline(summary)}\n"
          f"log {summary['log']}, plot {summary['plot']}, checkpoint {summary['checkpoint']}")
    return 0
