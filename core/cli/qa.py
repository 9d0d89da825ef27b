"""``duetrl qa train|eval|score``: question answering with verifiable rewards (outline 6.3.1).

    duetrl qa train --family arithmetic --json              # warm-up, then GRPO; held-out acc.
    duetrl qa train --out runs/qa/arithmetic --updates 300 --resume
    duetrl qa eval --checkpoint runs/qa/arithmetic_torch/checkpoint.safetensors --json
    duetrl qa eval --checkpoint runs/qa/arithmetic_torch/warmup.safetensors
    duetrl qa eval --checkpoint ... --question "what is 27 plus 45?"
    duetrl qa score --question "what is 27 plus 45?" --completion "<t>7+5=12 2+4+1=7</t><a>72</a>"

Every field of ``QASettings`` (core/cases/qa/settings.py) is a ``train`` flag. ``train`` is two
runs of ``duetrl.core.run`` (the warm-up in ``<out>/warmup_run/``, RL in ``<out>``): log.csv as
they go, summary.json, qa_curves.png, checkpoints, Ctrl-C, ``--resume``. Its ``--json``
carries heldout_accuracy (pass@1), heldout_greedy_accuracy, format_rate, warmup_accuracy.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from duetrl.core.cli.flags import add_dataclass_flags, add_run_flags, given_flags

RUNS = Path("runs/qa")


def register(commands: argparse._SubParsersAction, compare: argparse._SubParsersAction) -> None:
    qa = commands.add_parser("qa", help="question answering with verifiable rewards (RLVR)")
    sub = qa.add_subparsers(dest="qa_command", metavar="QA_COMMAND", required=True)

    train = sub.add_parser("train", help="supervised warm-up, then GRPO; held-out accuracy")
    add_run_flags(train, "backend", "out", "threads", "json", "quiet", "resume", "tensorboard",
                  threads=1, out_help="run folder (default: runs/qa/<family>_<backend>)",
                  json_help="print the summary as JSON (held-out and warm-up accuracy, ...)")
    from duetrl.core.cases.qa.settings import qa_fields

    add_dataclass_flags(train, qa_fields(), "QA settings (core/cases/qa/settings.py)")
    train.set_defaults(run=run_train)

    evaluate = sub.add_parser("eval", help="held-out accuracy of a QA checkpoint")
    evaluate.add_argument("--checkpoint", required=True,
                          help="a qa run's checkpoint.safetensors or its warmup.safetensors")
    evaluate.add_argument("--question", action="append", default=None,
                          help="ask this question instead of the held-out set (repeatable)")
    evaluate.add_argument("--held-out", type=int, default=200, help="held-out questions")
    add_run_flags(evaluate, "backend", "seed", "threads", "json", threads=1,
                  seed_help="seeds the held-out questions and the sampling noise",
                  json_help="print the figures and examples as JSON")
    evaluate.set_defaults(run=run_eval)

    score = sub.add_parser("score", help="the verifiable rewards of one completion")
    score.add_argument("--question", required=True, help="the question")
    score.add_argument("--completion", required=True,
                       help="the completion (the stop, a newline, is added if missing)")
    score.add_argument("--json", action="store_true", help="print the rewards as JSON")
    score.set_defaults(run=run_score)


def run_train(args: argparse.Namespace) -> int:
    from duetrl.core.backend import load_backend
    from duetrl.core.cases.qa.settings import QASettings, qa_fields
    from duetrl.core.cases.qa.train import train_qa

    settings = QASettings(**given_flags(args, qa_fields()))
    backend = load_backend(args.backend)
    backend.set_num_threads(args.threads)
    out = Path(args.out) if args.out else RUNS / f"{settings.family}_{args.backend}"
    summary = train_qa(backend, settings, out, args.resume, not args.quiet, args.tensorboard)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{settings.algo} on {settings.task} ({summary['backend']}): held-out pass@1 "
          f"{summary['warmup_accuracy']:.3f} after the warm-up -> "
          f"{summary['heldout_accuracy']:.3f} after {summary['updates']} RL updates (greedy "
          f"{summary['warmup_greedy_accuracy']:.3f} -> {summary['heldout_greedy_accuracy']:.3f}"
          f"), format {summary['format_rate']:.3f}; warm-up {summary['warmup_seconds']:.1f} s, "
          f"RL {summary['wall_s']:.1f} s ({summary['samples_per_s']:.0f} samples/s)\n"
          f"log {summary['log']}, plot {summary['plot']}, checkpoint {summary['checkpoint']}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from duetrl.core.backend import load_backend
    from duetrl.core.cases.qa.evaluate import evaluate_checkpoint

    backend = load_backend(args.backend)
    backend.set_num_threads(args.threads)
    figures = evaluate_checkpoint(backend, args.checkpoint, args.question, args.held_out,
                                  args.seed)
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    for row in figures["examples"]:
        mark = "right" if row["correct"] else f"wrong (answer {row['answer']})"
        print(f"{row['question']!r} -> {row['completion']!r}  {mark}")
    print(f"{figures['task']}: pass@1 {figures['accuracy']:.3f}, greedy "
          f"{figures['greedy_accuracy']:.3f}, format {figures['format_rate']:.3f} on "
          f"{figures['questions']} {figures['split']} questions")
    return 0


def run_score(args: argparse.Namespace) -> int:
    from duetrl.core.cases.qa.problems import pad, solve
    from duetrl.core.cases.qa.rewards import FORMAT_WEIGHT, check_completions, exact_match
    from duetrl.core.cases.qa.rewards import format_reward as fmt
    from duetrl.core.cases.qa.tasks import ALPHABET

    question = pad(args.question.strip()) if args.question.strip() else args.question
    answer = solve(question).answer
    completion = args.completion if args.completion.endswith("\n") else args.completion + "\n"
    check_completions([completion], ALPHABET, 1)
    exact, form = exact_match(completion, answer), fmt(completion)
    figures = {"answer": answer, "exact_match": exact, "format": form,
               "reward": exact + FORMAT_WEIGHT * form}
    print(json.dumps(figures) if args.json else
          f"answer {answer}: exact match {exact:g}, format {form:g}, reward {figures['reward']:g}")
    return 0
