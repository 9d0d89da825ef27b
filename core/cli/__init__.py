"""The ``duetrl`` command line.

Each command lives in its own module under ``core/cli`` with a ``register(commands, compare)``
function: ``commands`` are the top-level sub-commands, ``compare`` the targets of
``duetrl compare <target>``. Frameworks are imported only inside the command that runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from duetrl.core import __version__

COMMAND_MODULES = (
    "duetrl.core.cli.info",
    "duetrl.core.cli.attention",
    "duetrl.core.cli.notebooks",
    "duetrl.core.cli.demo",
    "duetrl.core.cli.lm",
    "duetrl.core.cli.rl",
    "duetrl.core.cli.value",  # after rl: adds `train dqn` to its `train` command
    "duetrl.core.cli.rlhf",
    "duetrl.core.cli.dt",
    "duetrl.core.cli.agent",
    "duetrl.core.cli.translate",
    "duetrl.core.cli.diff",
    "duetrl.core.cli.coursework",
    "duetrl.core.cli.report",
    "duetrl.core.cli.sweep",
    "duetrl.core.cli.play",
    "duetrl.core.cli.qa",
    "duetrl.core.cli.dialogue",
    "duetrl.core.cli.kg",
    "duetrl.core.cli.recommend",
)
"""Modules that add commands; each has ``register(commands, compare)``."""


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (every module registered)."""
    parser = argparse.ArgumentParser(
        prog="duetrl",
        description="LLMs and RL in PyTorch and TensorFlow, side by side and proven equal.",
    )
    parser.add_argument("--version", action="version", version=f"duetrl {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    compare_parser = commands.add_parser(
        "compare", help="run the same thing in both backends and show them side by side"
    )
    compare = compare_parser.add_subparsers(dest="target", metavar="TARGET", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(commands, compare)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``duetrl`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (ValueError, ImportError, FileNotFoundError) as error:
        # bad input gets one clear line, not a stack trace from deep inside a framework
        print(f"duetrl: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("duetrl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
