"""``duetrl translate train|eval``: translation with a BLEU reward, MLE then SCST (outline 6.3.2).

    duetrl translate train --backend torch                  # MLE, then self-critical training
    duetrl translate train --backend tf --scst-updates 300 --json
    duetrl translate eval runs/translate/torch/checkpoint.safetensors
    duetrl translate eval CKPT --sentence "the red cows see a dog" \
        --reference "las vacas rojas un perro ven"

Every field of ``TranslationSettings`` (core/cases/translation/train.py) is a ``train`` flag,
its field doc the help. ``train`` is a run of ``duetrl.core.run``: log.csv as it goes,
summary.json (held-out corpus BLEU of the MLE model and of the SCST model, sacrebleu's), a
checkpoint on Ctrl-C, ``--resume``, ``--tensorboard``, bleu.png and exposure.png. ``eval``
reports a checkpoint's held-out figures, or translates the sentences given (and scores them
against ``--reference``, one per sentence).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from duetrl.core.cli.case_train import add_checkpoint_command, checkpoint_backend, train_case
from duetrl.core.cli.flags import add_dataclass_flags, add_run_flags, given_flags

RUNS = Path("runs/translate")


def register(commands: argparse._SubParsersAction, compare: argparse._SubParsersAction) -> None:
    from duetrl.core.cases.translation.train import settings_fields

    translate = commands.add_parser(
        "translate", help="machine translation: maximum likelihood, then SCST with a BLEU reward")
    sub = translate.add_subparsers(dest="translate_command", metavar="TRANSLATE_COMMAND",
                                   required=True)

    train = sub.add_parser("train", help="train by maximum likelihood, then by SCST (BLEU reward)")
    add_run_flags(train, "backend", "out", "threads", "json", "quiet", "resume", "tensorboard",
                  out_help="run folder (default: runs/translate/<backend>)",
                  json_help="print the summary as JSON (mle_bleu, scst_bleu, ...)")
    add_dataclass_flags(train, settings_fields(),
                        "translation settings (core/cases/translation/train.py)")
    train.set_defaults(run=run_train)

    add_checkpoint_command(sub, "eval", "held-out BLEU of a checkpoint, or translate sentences",
                           run_eval, case="translate", arguments=_eval_arguments)


def _eval_arguments(evaluate: argparse.ArgumentParser) -> None:
    """``eval``'s own sentences to translate, and their references for BLEU."""
    evaluate.add_argument("--sentence", action="append", default=None, metavar="TEXT",
                          help="a source sentence to translate (repeat the flag for more)")
    evaluate.add_argument("--reference", action="append", default=None, metavar="TEXT",
                          help="the reference translation of each --sentence, for BLEU")


def format_summary(summary: dict[str, Any]) -> str:
    """Held-out BLEU of the copy baseline, MLE and SCST, by length, and the exposure gap."""
    lines = [f"held-out corpus BLEU (sacrebleu): word-by-word copy {summary['copy_bleu']:.1f}"]
    for label in ("mle", "scst"):
        f = summary.get(label)
        if not f:
            continue
        buckets = sorted(f["bleu_by_length"].items(), key=lambda kv: int(kv[0].split("-")[0]))
        by_length = ", ".join(f"{k} words {v:.1f}" for k, v in buckets)
        lines.append(f"{label.upper():>5}: BLEU {f['bleu']:.1f} ({by_length}); exact "
                     f"{f['exact_match']:.2f}; token accuracy teacher-forced "
                     f"{f['teacher_forced_accuracy']:.3f}, free-running "
                     f"{f['free_running_accuracy']:.3f}")
    return "\n".join(lines)


def run_train(args: argparse.Namespace) -> int:
    from duetrl.core.cases.translation.train import (
        TranslationRun,
        TranslationSettings,
        settings_fields,
    )

    settings = TranslationSettings(**given_flags(args, settings_fields()))
    return train_case(
        args, lambda backend: TranslationRun(backend, settings), RUNS,
        lambda summary: f"translation ({summary['backend']}): {settings.mle_steps} MLE + "
                        f"{settings.scst_updates} SCST updates, {summary['updates']} done in "
                        f"{summary['wall_s']:.1f} s\n{format_summary(summary)}")


def run_eval(args: argparse.Namespace) -> int:
    from duetrl.core.cases.translation.bleu import corpus_bleu, sentence_bleu
    from duetrl.core.cases.translation.evaluation import translate
    from duetrl.core.cases.translation.train import TRANSLATION_KIND, load_run

    if args.reference and not args.sentence:
        raise ValueError("reference: expected --sentence too (one reference per sentence)")
    if args.sentence and args.reference and len(args.reference) != len(args.sentence):
        raise ValueError(f"reference: expected one per --sentence ({len(args.sentence)}), got "
                         f"{len(args.reference)}")
    backend = checkpoint_backend(args, TRANSLATION_KIND)
    trainer = load_run(backend, args.checkpoint)
    if not args.sentence:
        figures = {"backend": backend.NAME, "updates": trainer.updates, **trainer.heldout()}
        print(json.dumps(figures, indent=2) if args.json else
              format_summary({"copy_bleu": trainer.evaluate()["copy_bleu"], "scst": None,
                              "mle": figures}).replace("  MLE", "model"))
        return 0
    references = [" ".join(trainer.vocab.check_sentence(r, "target", "reference"))
                  for r in args.reference or []]
    outputs = translate(backend, trainer.model, trainer.vocab, args.sentence)
    rows = [{"source": s, "output": o} for s, o in zip(args.sentence, outputs)]
    figures: dict[str, Any] = {"backend": backend.NAME, "translations": rows}
    if references:
        for row, bleu, ref in zip(rows, sentence_bleu(outputs, references), references):
            row.update(reference=ref, sentence_bleu=100 * float(bleu))
        figures["corpus_bleu"] = corpus_bleu(outputs, references)
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    for row in rows:
        extra = (f"   (reference {row['reference']!r}, BLEU {row['sentence_bleu']:.1f})"
                 if "reference" in row else "")
        print(f"{row['source']!r} -> {row['output']!r}{extra}")
    return 0
