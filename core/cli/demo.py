"""``duetrl demo``: the README's main job, PPO on CartPole-v1 in PyTorch and TensorFlow.

Both backends start from the same weights, environment seeds and sampling noise, and train in
alternation until CartPole-v1 is solved (mean return of the last 100 episodes >= 475) or the
step budget runs out; about a minute on a laptop. ``duetrl compare attention`` is the other
side-by-side demo.
"""

from __future__ import annotations

import argparse

from duetrl.core.cli import rl
from duetrl.core.cli.flags import add_run_flags


def register(commands: argparse._SubParsersAction, compare: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "demo", help="PPO on CartPole-v1 in PyTorch and TensorFlow, side by side")
    parser.add_argument("--total-steps", type=int, default=150_000,
                        help="environment-step budget per backend")
    add_run_flags(parser, "quiet")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    rl.register(None, sub)
    argv = ["ppo", "--env", "CartPole-v1", "--total-steps", str(args.total_steps)]
    return rl.run_compare(parser.parse_args(argv + (["--quiet"] if args.quiet else [])))
