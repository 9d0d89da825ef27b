"""``duetrl dialogue train|eval|chat``: dialogue generation with RL (outline 6.1; Li et al. 2016).

    duetrl dialogue train --backend torch                # MLE chatbot + backward model, then RL
    duetrl dialogue train --backend tf --rl-updates 100 --json
    duetrl dialogue eval runs/dialogue/torch/checkpoint.safetensors
    duetrl dialogue chat CKPT --turn "what do you like to eat" --turns 4

Every field of ``DialogueSettings`` (core/cases/dialogue/train.py) is a ``train`` flag, its
field doc the help. ``train`` is a run of ``duetrl.core.run``: log.csv as it goes,
summary.json (the MLE and RL chatbots' dull-reply rate, dialogue length, distinct-1/2 and
sample conversations), a checkpoint on Ctrl-C, ``--resume``, ``--tensorboard``,
dialogue.png. ``eval`` reports a checkpoint's held-out self-play figures; ``chat`` lets the
checkpoint's chatbot answer the turns given (the last two are its context) and talk to
itself for ``--turns`` more turns.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from duetrl.core.cli.case_train import add_checkpoint_command, checkpoint_backend, train_case
from duetrl.core.cli.flags import add_dataclass_flags, add_run_flags, given_flags

RUNS = Path("runs/dialogue")


def register(commands: argparse._SubParsersAction, compare: argparse._SubParsersAction) -> None:
    from duetrl.core.cases.dialogue.train import settings_fields

    dialogue = commands.add_parser(
        "dialogue", help="dialogue generation: maximum likelihood, then RL in self-play")
    sub = dialogue.add_subparsers(dest="dialogue_command", metavar="DIALOGUE_COMMAND",
                                  required=True)

    train = sub.add_parser("train", help="train by maximum likelihood, then by policy gradient")
    add_run_flags(train, "backend", "out", "threads", "json", "quiet", "resume", "tensorboard",
                  out_help="run folder (default: runs/dialogue/<backend>)",
                  json_help="print the summary as JSON (mle_dull_rate, rl_dull_rate, ...)")
    add_dataclass_flags(train, settings_fields(),
                        "dialogue settings (core/cases/dialogue/train.py)")
    train.set_defaults(run=run_train)

    add_checkpoint_command(sub, "eval", "held-out self-play figures of a checkpoint", run_eval,
                           case="dialogue")
    add_checkpoint_command(sub, "chat", "let a checkpoint's chatbot answer, then talk to itself",
                           run_chat, case="dialogue", json_help="print the conversation as JSON",
                           arguments=_chat_arguments)


def _chat_arguments(chat: argparse.ArgumentParser) -> None:
    """``chat``'s conversation so far and how many turns the chatbot adds."""
    chat.add_argument("--turn", action="append", required=True, metavar="TEXT",
                      help="a turn of the conversation so far (repeat the flag; the last two "
                           "are the context)")
    chat.add_argument("--turns", type=int, default=1,
                      help="turns the chatbot adds (1: one reply; more: self-play)")


def format_summary(summary: dict[str, Any]) -> str:
    """The MLE and RL chatbots' figures, and one sample conversation of each."""
    lines = []
    for label in ("mle", "rl"):
        f = summary.get(label)
        if not f:
            continue
        lines.append(f"{label.upper():>4}: dull-reply rate {f['dull_rate']:.2f}, dialogue "
                     f"length {f['dialogue_length']:.2f} turns, distinct-1 "
                     f"{f['distinct_1']:.3f}, distinct-2 {f['distinct_2']:.3f}")
        if f.get("samples"):
            lines.append("      " + " | ".join(f["samples"][0]))
    return "\n".join(lines)


def _load(args: argparse.Namespace) -> tuple[Any, Any]:
    from duetrl.core.cases.dialogue.train import DIALOGUE_KIND, load_run

    backend = checkpoint_backend(args, DIALOGUE_KIND)
    return backend, load_run(backend, args.checkpoint)


def run_train(args: argparse.Namespace) -> int:
    from duetrl.core.cases.dialogue.train import DialogueRun, DialogueSettings, settings_fields

    settings = DialogueSettings(**given_flags(args, settings_fields()))
    return train_case(
        args, lambda backend: DialogueRun(backend, settings), RUNS,
        lambda summary: f"dialogue ({summary['backend']}): {settings.mle_steps} MLE + "
                        f"{settings.rl_updates} RL updates, {summary['updates']} done in "
                        f"{summary['wall_s']:.1f} s\n{format_summary(summary)}")


def run_eval(args: argparse.Namespace) -> int:
    backend, trainer = _load(args)
    figures = {"backend": backend.NAME, "updates": trainer.updates, **trainer.heldout()}
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(format_summary({"rl": figures}).replace("  RL", "model"))
    for conversation in figures["samples"]:
        print("  " + " | ".join(conversation))
    return 0


def run_chat(args: argparse.Namespace) -> int:
    from duetrl.core.cases.dialogue.evaluate import simulate

    if args.turns < 1:
        raise ValueError(f"turns: expected an int >= 1, got {args.turns}")
    backend, trainer = _load(args)
    given = [trainer.vocab.check_turn(t, "turn") for t in args.turn]
    opening = ((), given[0]) if len(given) == 1 else (given[-2], given[-1])
    conversations, _ = simulate(backend, trainer.model, trainer.vocab, [opening], args.turns)
    replies = [" ".join(t) for t in conversations[0][2:]]
    if args.json:
        print(json.dumps({"backend": backend.NAME, "turns": [" ".join(t) for t in given],
                          "replies": replies}, indent=2))
        return 0
    for t in given:
        print(f"  you: {' '.join(t)}")
    for k, reply in enumerate(replies):
        print(f"  bot{'' if args.turns == 1 else ' ' + 'AB'[k % 2]}: {reply}")
    return 0
