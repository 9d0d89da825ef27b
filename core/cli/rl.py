"""``duetrl train ALGO`` and ``duetrl compare ALGO``: reinforcement learning from the command line.

    duetrl train ppo --env CartPole-v1 --backend tf --seed 1 --total-steps 200000 --json
    duetrl compare reinforce --env CartPole-v1

Every field of the algorithm's settings dataclass (core/interfaces/rl_settings.py) is a flag,
with its field doc as help. Frameworks load only when the command runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

from duetrl.core.cli.flags import add_dataclass_flags, add_run_flags, given_flags
from duetrl.core.interfaces.rl import ALGORITHMS
from duetrl.core.interfaces.rl_settings import SETTINGS, make_settings

RUN_FLAGS = ("out", "seed", "backend", "threads", "json", "quiet", "resume", "tensorboard")
"""The shared run flags ``duetrl train ALGO`` and ``duetrl train dqn`` take (cli/flags.py)."""

COMPARE_FLAGS = ("out", "seed", "json", "quiet")
"""The shared run flags ``duetrl compare ALGO`` and ``duetrl compare dqn`` take."""

SEED_HELP = "seeds weights, envs and noise"

_HELP = {
    "reinforce": "REINFORCE, listing 5.2 repaired and batched over vector environments",
    "reinforce_baseline": "REINFORCE with a learned value baseline",
    "ppo": "PPO: clipped objective, GAE, value loss, entropy bonus, minibatch epochs",
}


def _add_settings_flags(parser: argparse.ArgumentParser, algorithm: str) -> None:
    add_dataclass_flags(parser, dataclasses.fields(SETTINGS[algorithm]), f"{algorithm} settings")


def _add_common_flags(parser: argparse.ArgumentParser, default_steps: int) -> None:
    parser.add_argument("--env", default="CartPole-v1", help="Gymnasium environment id")
    parser.add_argument("--total-steps", type=int, default=default_steps,
                        help="environment-step budget")
    parser.add_argument("--target", type=float, default=None,
                        help="stop when the mean return of the last 100 episodes reaches this "
                             "(default: the environment's reward threshold)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")


def register(commands: argparse._SubParsersAction, compare: argparse._SubParsersAction) -> None:
    if commands is not None:
        train_parser = commands.add_parser("train", help="train an RL agent in one backend")
        algorithms = train_parser.add_subparsers(dest="algorithm", metavar="ALGO", required=True)
        for algorithm in ALGORITHMS:
            parser = algorithms.add_parser(algorithm, help=_HELP[algorithm])
            add_run_flags(parser, *RUN_FLAGS, out_help="run folder (default: runs/<algo>-...)",
                          seed_help=SEED_HELP, json_help="print the run summary as JSON")
            _add_common_flags(parser, 300_000)
            parser.add_argument("--checkpoint-every", type=int, default=50,
                                help="updates between checkpoints (0: at the end only)")
            _add_settings_flags(parser, algorithm)
            parser.set_defaults(run=run_train)
    for algorithm in ALGORITHMS:
        parser = compare.add_parser(algorithm, help=f"{_HELP[algorithm]}: torch vs tf")
        add_run_flags(parser, *COMPARE_FLAGS, out="runs", out_help="folder for the plot",
                      seed_help=SEED_HELP, json_help="print the results as JSON")
        _add_common_flags(parser, 150_000)
        parser.add_argument("--report-every", type=int, default=20, help="updates between rows")
        _add_settings_flags(parser, algorithm)
        parser.set_defaults(run=run_compare, algorithm=algorithm)


def settings_from_args(args: argparse.Namespace):
    """The algorithm's settings with every flag the user gave applied (validated)."""
    return make_settings(args.algorithm,
                         **given_flags(args, dataclasses.fields(SETTINGS[args.algorithm])))


def run_train(args: argparse.Namespace) -> int:
    from duetrl.core.backend import canonical_backend_name
    from duetrl.core.rl.session import train

    summary = train(args.algorithm, args.env, canonical_backend_name(args.backend),
                    settings_from_args(args), args.seed, args.total_steps, args.target, args.out,
                    args.resume, args.quiet, args.checkpoint_every, args.dtype, args.threads,
                    args.tensorboard)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        state = "solved" if summary["solved"] else "not solved"
        print(f"{args.algorithm} on {args.env} ({summary['backend']}): {state} after "
              f"{summary['env_steps']} steps, {summary['episodes']} episodes, "
              f"{summary['wall_s']:.1f} s; mean return {summary['final_mean_return']:.1f}\n"
              f"log {summary['log']}, curve {summary['plot']}, checkpoint {summary['checkpoint']}")
    return 130 if summary["interrupted"] else 0


def run_compare(args: argparse.Namespace) -> int:
    from duetrl.core.rl.compare import compare, format_results, to_json

    results = compare(args.algorithm, args.env, settings_from_args(args), args.seed,
                      args.total_steps, args.target, args.out, args.quiet, args.report_every,
                      args.dtype, print_table=not args.json)
    print(to_json(results) if args.json else format_results(results))
    return 0
