"""``duetrl kg train|eval|ask``: knowledge-graph reasoning by walking the graph (outline 6.3.3;
MINERVA, Das et al. 2018).

    duetrl kg train --backend torch                     # REINFORCE walks on the family graph
    duetrl kg train --backend tf --updates 200 --json   # hits@1/3/10, MRR vs random walks
    duetrl kg eval runs/kg/torch/checkpoint.safetensors # figures, learned rules, recovered facts
    duetrl kg ask CKPT jon_9 grandparent                # where the walks from jon_9 end

Every field of ``KGSettings`` (core/cases/kg/train.py) is a ``train`` flag, its field doc the
help. ``train`` is a run of ``duetrl.core.run``: log.csv as it goes, summary.json, kg.png, a
checkpoint on Ctrl-C, ``--resume``, ``--tensorboard``. An entity or relation the graph lacks is
answered by one line naming what the graph has.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from duetrl.core.cli.case_train import add_checkpoint_command, checkpoint_backend, train_case
from duetrl.core.cli.flags import add_dataclass_flags, add_run_flags, given_flags

RUNS = Path("runs/kg")


def register(commands: argparse._SubParsersAction, compare: argparse._SubParsersAction) -> None:
    from duetrl.core.cases.kg.train import settings_fields

    kg = commands.add_parser("kg", help="knowledge-graph reasoning: RL walks on a family graph")
    sub = kg.add_subparsers(dest="kg_command", metavar="KG_COMMAND", required=True)

    train = sub.add_parser("train", help="train the walker by REINFORCE (MINERVA)")
    add_run_flags(
        train,
        "backend",
        "out",
        "threads",
        "json",
        "quiet",
        "resume",
        "tensorboard",
        out_help="run folder (default: runs/kg/<backend>)",
        json_help="print the summary as JSON (hits_at_1, mrr, random_walk_..., rules)",
    )
    add_dataclass_flags(
        train, settings_fields(), "knowledge-graph settings (core/cases/kg/train.py)"
    )
    train.set_defaults(run=run_train)

    add_checkpoint_command(
        sub, "eval", "held-out figures, rules and recovered facts", run_eval, case="kg"
    )
    add_checkpoint_command(
        sub,
        "ask",
        "answer (entity, relation, ?) by the walker's beam search",
        run_ask,
        case="kg",
        json_help="print the answers as JSON",
        arguments=_ask_arguments,
    )


def _ask_arguments(ask: argparse.ArgumentParser) -> None:
    """``ask``'s query: the entity, the relation and how many answers to show."""
    ask.add_argument("entity", help="the query's entity, e.g. jon_9")
    ask.add_argument(
        "relation",
        help="a query relation: grandparent, grandchild, aunt_or_uncle, niece_or_nephew, cousin",
    )
    ask.add_argument("--top", type=int, default=5, help="answers shown")


def format_summary(summary: dict[str, Any]) -> str:
    """hits@k and MRR against the random walks, the top rule of each relation, recoveries."""
    lines = ["               hits@1  hits@3  hits@10  MRR"]
    for label, prefix in (("walker (RL)", ""), ("random walks", "random_walk_")):
        lines.append(
            f"  {label:<12} "
            + "  ".join(f"{summary[f'{prefix}hits_at_{k}']:.3f} " for k in (1, 3, 10))
            + f"  {summary[f'{prefix}mrr']:.3f}"
        )
    lines.append("learned rules (share of the walks, confidence on the graph):")
    for rules in summary["rules"].values():
        for rule in rules[:2]:
            lines.append(f"  {rule['rule']:<48} {rule['share']:.2f}  {rule['confidence']:.2f}")
    lines.append(
        f"recovered {summary['recovered_facts']} of the {summary['heldout_facts']} "
        f"facts the graph misses (ranked first), e.g. "
        f"{', '.join(summary['recovered_examples'][:3])}"
    )
    return "\n".join(lines)


def _load(args: argparse.Namespace) -> Any:
    from duetrl.core.cases.kg.train import KG_KIND, load_run

    return load_run(checkpoint_backend(args, KG_KIND), args.checkpoint)


def run_train(args: argparse.Namespace) -> int:
    from duetrl.core.cases.kg.train import KGRun, KGSettings, settings_fields

    settings = KGSettings(**given_flags(args, settings_fields()))
    return train_case(
        args,
        lambda backend: KGRun(backend, settings),
        RUNS,
        lambda summary: (
            f"kg ({summary['backend']}): {summary['updates']} updates in "
            f"{summary['wall_s']:.1f} s, {summary['entities']} entities, {summary['facts']} "
            f"facts\n{format_summary(summary)}"
        ),
    )


def run_eval(args: argparse.Namespace) -> int:
    trainer = _load(args)
    figures = {"backend": trainer.backend_name, "updates": trainer.updates, **trainer.evaluate()}
    if args.json:
        print(json.dumps(figures, indent=2, default=str))
        return 0
    print(format_summary(figures))
    return 0


def run_ask(args: argparse.Namespace) -> int:
    if args.top < 1:
        raise ValueError(f"top: expected an int >= 1, got {args.top}")
    trainer = _load(args)
    answers = trainer.answer(args.entity, args.relation, args.top)
    if args.json:
        print(
            json.dumps(
                {"entity": args.entity, "relation": args.relation, "answers": answers}, indent=2
            )
        )
        return 0
    print(f"({args.entity}, {args.relation}, ?)")
    for a in answers:
        print(f"  {a['entity']:<10} p = {a['probability']:.3f}   fact: {a['fact']}")
    return 0
