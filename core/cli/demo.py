"""``duetrl demo``: the README's main job, a side-by-side PyTorch vs TensorFlow run."""

from __future__ import annotations

import argparse

from core.cli import attention


def register(commands: argparse._SubParsersAction, compare: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("demo", help="the side-by-side PyTorch vs TensorFlow demo")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    attention.register(None, sub)
    return attention.run(parser.parse_args(["attention"]))
