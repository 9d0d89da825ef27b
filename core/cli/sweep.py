"""``duetrl sweep FILE.toml``: a grid of training runs (algorithm x backend x seed x settings).

    duetrl sweep sweeps/cartpole.toml                      local Ray, one CPU per run
    duetrl sweep sweeps/cartpole.toml --resume             skip finished runs, continue the rest
    duetrl sweep sweeps/cartpole.toml --address 10.0.0.5:6379   the same on a Ray cluster
                                                           (run it on the head node)
    duetrl sweep sweeps/cartpole.toml --sequential         one run after another, no Ray

The file format is in sweeps/README.md (core/scale/sweep_file.py checks it); the sweep folder
holds results.csv / results.parquet (one row per run) and each run's usual folder under runs/.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from duetrl.core.cli.flags import add_run_flags


def register(commands: argparse._SubParsersAction, compare: argparse._SubParsersAction) -> None:
    if commands is None:
        return
    parser = commands.add_parser(
        "sweep", help="run a grid of training runs (a TOML sweep file) as Ray tasks"
    )
    parser.add_argument("file", metavar="FILE.toml", help="the sweep file (see sweeps/README.md)")
    add_run_flags(
        parser,
        "out",
        "json",
        "quiet",
        "resume",
        out_help="sweep folder (default: runs/sweeps/<file name without .toml>)",
        json_help="print a JSON summary",
    )
    parser.add_argument(
        "--address",
        default=None,
        help="HOST:PORT of a running Ray cluster's head, run on a node of that "
        "cluster (default: a local Ray); checked step by step, each "
        "wait bounded",
    )
    parser.add_argument(
        "--num-cpus",
        type=int,
        default=None,
        help="CPUs of the local Ray (default: all of this machine's)",
    )
    parser.add_argument(
        "--threads-per-run",
        type=int,
        default=None,
        help="framework threads, and Ray CPUs, of each run (default: the file's "
        "threads_per_run, else 1)",
    )
    parser.add_argument(
        "--max-retries",
        type=int,
        default=None,
        help="start a failed or killed run again up to this many times "
        "(default: the file's max_retries, else 1)",
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=None,
        help="seconds one run may take, all attempts together (default: the "
        "file's time_limit_s, else none)",
    )
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="run one after another in this process, without Ray",
    )
    parser.set_defaults(run=run_sweep_command)


def run_sweep_command(args: argparse.Namespace) -> int:
    from duetrl.core.cli import build_parser
    from duetrl.core.scale.sweep import run_sweep
    from duetrl.core.scale.sweep_file import load_sweep

    if args.sequential and args.address is not None:
        raise ValueError("--address: a cluster runs Ray tasks; leave out --sequential")
    # the library checks each run's argv with the parser it is handed: it never imports the CLI
    plan = load_sweep(
        args.file, build_parser(), args.threads_per_run, args.max_retries, args.time_limit
    )
    out = args.out or str(Path("runs") / "sweeps" / Path(args.file).stem)
    outcome = run_sweep(
        plan,
        out,
        "sequential" if args.sequential else "ray",
        args.address,
        args.num_cpus,
        args.resume,
        progress=not args.quiet,
    )
    rows = outcome.pop("rows")
    if args.json:
        outcome["not_done"] = [
            {"run_id": r["run_id"], "status": r["status"], "error": r["error"]}
            for r in rows
            if r["status"] != "done"
        ]
        print(json.dumps(outcome, indent=2))
    else:
        print(
            f"sweep: {outcome['runs']} runs ({outcome['skipped']} finished before): "
            f"{outcome['done']} done, {outcome['failed']} failed, {outcome['timeout']} timed "
            f"out in {outcome['wall_s']:.1f} s ({outcome['executor']})"
        )
        for row in rows:
            if row["status"] != "done":
                print(f"  {row['status']} {row['run_id']}: {row['error']}")
        for retry in outcome["retried"]:  # what was started again, and why
            print(
                f"  retried {retry['run_id']} ({retry['status']} after {retry['attempts']} "
                f"attempts): {retry['why']}"
            )
        for line in outcome["prepared"]:
            print(f"  {line}")
        print(f"results: {outcome['results']}")
    return 0 if outcome["done"] == outcome["runs"] else 1
