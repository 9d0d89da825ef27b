"""What the case studies' commands share (``duetrl dialogue|translate|recommend|kg``): the
``train`` sub-command, one trainer of ``duetrl.core.run`` on the run loop, its summary as JSON
or as text; and the sub-commands that read a ``train`` checkpoint (``eval``, ``ask``,
``chat``), whose ``--backend`` defaults to the framework the checkpoint was trained in.

Each command keeps what is its own (its settings, its headline line, its extra arguments); the
backend, its threads, the run folder, the loop's options, the paths printed at the end and the
checkpoint's backend are written here once.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from duetrl.core.cli.flags import add_run_flags


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


def add_checkpoint_command(
    sub: argparse._SubParsersAction,
    name: str,
    help: str,
    run: Callable[[argparse.Namespace], int],
    *,
    case: str,
    json_help: str = "print the figures as JSON",
    arguments: Callable[[argparse.ArgumentParser], object] | None = None,
) -> argparse.ArgumentParser:
    """Add ``duetrl <case> <name> CHECKPOINT ...``, a command that reads a ``<case> train``
    checkpoint: the ``checkpoint`` argument, then the command's own (``arguments(parser)``,
    so they keep their place in the help), then ``--backend`` (default: the checkpoint's, see
    :func:`checkpoint_backend`), ``--threads`` and ``--json`` (``json_help``: what it prints).
    ``run(args)`` runs it. Returns the new parser."""
    parser = sub.add_parser(name, help=help)
    parser.add_argument("checkpoint", help=f"a {case} train checkpoint")
    if arguments is not None:
        arguments(parser)
    add_run_flags(parser, "backend", "threads", "json", backend=None, backend_required=False,
                  backend_help="the framework (default: the checkpoint's)", json_help=json_help)
    parser.set_defaults(run=run)
    return parser


def checkpoint_backend(args: argparse.Namespace, kind: str) -> ModuleType:
    """The backend of a command of :func:`add_checkpoint_command`: ``--backend`` when given,
    else the one ``args.checkpoint`` (of checkpoint kind ``kind``) records it was trained in
    (torch when it records none), with ``--threads`` set."""
    from duetrl.core.backend import load_backend
    from duetrl.core.checkpoint import load_checkpoint

    name = args.backend or load_checkpoint(args.checkpoint, kind).metadata.get("backend", "torch")
    backend = load_backend(name)
    backend.set_num_threads(args.threads)
    return backend
