"""``duetrl dt train|eval``: the Decision Transformer, offline RL as sequence modelling (3.2.1).

    duetrl dt train --backend torch                      # FrozenLake 4x4, 1000 behaviour episodes
    duetrl dt train --backend tf --steps 500 --json
    duetrl dt eval runs/dt/FrozenLake-v1_torch/checkpoint.safetensors --targets 0 0.5 1

Every field of ``DTSettings`` (core/agents/decision_transformer.py) is a ``train`` flag, its
field doc the help. ``train`` is a run of ``duetrl.core.run``: log.csv (loss, tokens/s) as it
goes, summary.json, a checkpoint on Ctrl-C, ``--resume``, ``--tensorboard``, and returns.png
(return achieved against return asked for, behaviour cloning and the behaviour policy beside).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from duetrl.core.cli.flags import add_dataclass_flags, add_run_flags, given_flags

RUNS = Path("runs/dt")


def register(commands: argparse._SubParsersAction, compare: argparse._SubParsersAction) -> None:
    from duetrl.core.agents.decision_transformer import settings_fields

    dt = commands.add_parser("dt", help="Decision Transformer: offline RL as sequence modelling")
    sub = dt.add_subparsers(dest="dt_command", metavar="DT_COMMAND", required=True)

    train = sub.add_parser("train", help="collect a mixed-quality dataset, train DT and BC on it")
    add_run_flags(train, "backend", "out", "threads", "json", "quiet", "resume", "tensorboard",
                  out_help="run folder (default: runs/dt/<env>_<backend>)",
                  json_help="print a JSON summary")  # --seed: a settings field below
    add_dataclass_flags(train, settings_fields(),
                        "Decision Transformer settings (core/agents/decision_transformer.py)")
    train.set_defaults(run=run_train)

    evaluate = sub.add_parser("eval", help="return asked for vs achieved (BC and behaviour beside)")
    evaluate.add_argument("checkpoint", help="a dt train checkpoint")
    evaluate.add_argument("--targets", type=float, nargs="+", default=None, metavar="R",
                          help="returns to ask for (default: the dataset's lowest, middle and "
                               "highest)")
    evaluate.add_argument("--episodes", type=int, default=None,
                          help="seeded episodes per target (default: the run's eval_episodes)")
    evaluate.add_argument("--greedy", action=argparse.BooleanOptionalAction, default=None,
                          help="argmax actions (default: the run's setting)")
    add_run_flags(evaluate, "backend", "out", "threads", "json", backend=None,
                  backend_required=False, backend_help="the framework (default: the "
                  "checkpoint's)", out_help="the plot (default: returns_eval.png beside the "
                  "checkpoint)", json_help="print the table as JSON")
    evaluate.set_defaults(run=run_eval)


def settings_from_args(args: argparse.Namespace) -> Any:
    """DTSettings with every flag the user gave applied, validated."""
    from duetrl.core.agents.decision_transformer import DTSettings, settings_fields

    return DTSettings(**given_flags(args, settings_fields()))


def format_table(figures: dict[str, Any]) -> str:
    """Return asked | DT achieved | BC | behaviour, one row per target."""
    bc = figures.get("bc_return")
    lines = [f"{'return asked':>12}  {'DT achieved':>11}  {'BC':>6}  {'behaviour':>9}"]
    for target, achieved in zip(figures["targets"], figures["achieved"]):
        bc_text = f"{bc:6.3f}" if bc is not None else f"{'-':>6}"
        lines.append(f"{target:12.3f}  {achieved:11.3f}  {bc_text}  "
                     f"{figures['behaviour_return']:9.3f}")
    return "\n".join(lines)


def run_train(args: argparse.Namespace) -> int:
    from duetrl.core.agents.decision_transformer import DTRun
    from duetrl.core.backend import load_backend
    from duetrl.core.run import run

    settings = settings_from_args(args)
    backend = load_backend(args.backend)
    backend.set_num_threads(args.threads)
    out = Path(args.out) if args.out else RUNS / f"{settings.env}_{args.backend}"
    trainer = DTRun(backend, settings)
    summary = run(trainer, out, resume=args.resume, quiet=args.quiet,
                  tensorboard=args.tensorboard, unit="update")
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    data = summary["dataset"]
    print(f"Decision Transformer on {settings.env} ({summary['backend']}): {data['episodes']} "
          f"behaviour episodes, mean return {data['mean_return']:.3f}; {summary['updates']} "
          f"updates in {summary['wall_s']:.1f} s "
          f"({summary['train_tokens_per_second']:.0f} tokens/s)\n"
          f"{format_table(summary)}\n"
          f"log {summary['log']}, plot {summary['plot']}, checkpoint {summary['checkpoint']}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from duetrl.core.agents.decision_transformer import DT_KIND, load_run, plot_returns
    from duetrl.core.backend import load_backend
    from duetrl.core.checkpoint import load_checkpoint

    if args.episodes is not None and args.episodes < 1:
        raise ValueError(f"episodes: expected an int >= 1, got {args.episodes}")
    name = args.backend or load_checkpoint(args.checkpoint, DT_KIND).metadata.get("backend",
                                                                                  "torch")
    backend = load_backend(name)
    backend.set_num_threads(args.threads)
    overrides = {} if args.greedy is None else {"greedy": args.greedy}
    trainer = load_run(backend, args.checkpoint, **overrides)
    figures = trainer.returns_asked(args.targets, args.episodes)
    path = Path(args.out) if args.out else Path(args.checkpoint).with_name("returns_eval.png")
    figures["plot"] = str(plot_returns({backend.NAME: figures}, path))
    figures["backend"] = backend.NAME
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"{format_table(figures)}\n({figures['eval_episodes']} seeded episodes per row; "
          f"plot {figures['plot']})")
    return 0
