"""``duetrl info``: which backends are installed, their versions and thread counts."""

from __future__ import annotations

import argparse
import json
import platform

from duetrl.core import __version__
from duetrl.core.backend import BACKENDS, available_backends, load_backend
from duetrl.core.cli.flags import add_run_flags


def register(commands: argparse._SubParsersAction, compare: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("info", help="show backends found, versions and thread counts")
    add_run_flags(parser, "json", json_help="print the facts as JSON")
    parser.set_defaults(run=run)


def collect_info() -> dict:
    """Facts about this installation, loading each available backend."""
    import numpy

    found = available_backends()
    backends = {}
    for name in BACKENDS:
        if name not in found:
            backends[name] = {"available": False}
            continue
        module = load_backend(name)
        backends[name] = {
            "available": True,
            "version": module.framework_version(),
            "num_threads": module.get_num_threads(),
        }
    return {
        "duetrl": __version__,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "backends": backends,
    }


def run(args: argparse.Namespace) -> int:
    info = collect_info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"duetrl {info['duetrl']}  (Python {info['python']}, NumPy {info['numpy']})")
    for name, facts in info["backends"].items():
        if facts["available"]:
            threads = facts["num_threads"] or "framework default"
            print(f"  {name:<6} {facts['version']:<16} threads: {threads}")
        else:
            print(f"  {name:<6} not installed")
    return 0
