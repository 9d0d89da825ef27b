"""``duetrl rlhf sft`` and ``duetrl rlhf pipeline``: the RLHF pipeline's first stage and the whole
of it (outline 3.1.1); registered by ``core/cli/rlhf.py``.

    duetrl rlhf pretrain --task sort-digits
    duetrl rlhf sft --task sort-digits
    duetrl rlhf reward-model --task sort-digits \\
        --sft-checkpoint runs/rlhf/sort-digits/sft.safetensors
    duetrl rlhf train --task sort-digits --sft-checkpoint runs/rlhf/sort-digits/sft.safetensors \\
        --reward learned --reward-model runs/rlhf/sort-digits/reward_model.safetensors
    duetrl rlhf pipeline --task sort-digits          # all of it, and the table of each stage

``sft`` is a run of ``duetrl.core.run`` (log.csv, summary.json in ``<checkpoint stem>_run/``,
a usable checkpoint on Ctrl-C, ``--resume``, ``--tensorboard``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from duetrl.core.cli.flags import add_dataclass_flags, add_run_flags, given_flags
from duetrl.core.cli.rlhf_paths import RUNS


def default_sft_path(task: str) -> Path:
    """Where ``rlhf sft`` saves a task's SFT model: runs/rlhf/<task>/sft.safetensors."""
    return RUNS / task / "sft.safetensors"


def register_sft(sub: argparse._SubParsersAction, run_flags: tuple[str, ...]) -> None:
    """Add ``sft`` and ``pipeline`` to the ``rlhf`` subcommands ``sub``."""
    from duetrl.core.rlhf.pipeline import PipelineSettings
    from duetrl.core.rlhf.sft import SFTSettings

    sft = sub.add_parser("sft", help="supervised fine-tuning of the reference on demonstrations")
    sft.add_argument("--task", default="sort-digits", help="text task with demonstrations")
    sft.add_argument("--reference-checkpoint", default=None,
                     help="the pretrained reference to fine-tune (default: runs/rlhf/<task>/"
                          "reference.safetensors, pretrained first if missing)")
    add_run_flags(sft, *(f for f in run_flags if f != "seed"), threads=1,
                  out_help="checkpoint (default: runs/rlhf/<task>/sft.safetensors)",
                  json_help="print a JSON summary")  # --seed: a settings field below
    add_dataclass_flags(sft, _fields(SFTSettings), "SFT settings (core/rlhf/sft.py SFTSettings)")
    sft.set_defaults(run=run_sft)

    pipe = sub.add_parser(
        "pipeline", help="pretrain -> SFT -> reward model -> RL, each stage's true reward")
    add_run_flags(pipe, "backend", "threads", "out", "quiet", "json", threads=1,
                  out_help="folder of the checkpoints and RL runs (default: "
                  "runs/rlhf/<task>/pipeline)", json_help="print the table as JSON")
    add_dataclass_flags(pipe, _fields(PipelineSettings),
                        "pipeline settings (core/rlhf/pipeline.py PipelineSettings)")
    pipe.set_defaults(run=run_pipeline)


def _fields(cls: type) -> list:
    import dataclasses

    return list(dataclasses.fields(cls))


def check_sft_flags(args: argparse.Namespace, task: str) -> str | None:
    """The checked ``--sft-checkpoint`` of ``rlhf train`` / ``reward-model`` (None if not given).

    :raises ValueError: (a CheckpointError) naming ``--sft-checkpoint`` for a missing, damaged
        or mismatched file, or when it is given with ``--reference-checkpoint`` or
        ``--reference uniform``.
    """
    path = getattr(args, "sft_checkpoint", None)
    if path is None:
        return None
    from duetrl.core.rlhf.sft import load_sft

    if getattr(args, "reference_checkpoint", None) is not None:
        raise ValueError("--sft-checkpoint: the SFT model is the policy's start and its KL "
                         "reference; give it or --reference-checkpoint, not both")
    if getattr(args, "reference", None) == "uniform":
        raise ValueError("--sft-checkpoint: an SFT model is a pretrained-vocabulary GPT; it "
                         "cannot start a run with --reference uniform")
    load_sft(path, task, flag="--sft-checkpoint")
    return str(path)


def run_sft(args: argparse.Namespace) -> int:
    from duetrl.core.backend import load_backend
    from duetrl.core.cli.rlhf_paths import reference_for
    from duetrl.core.rlhf.settings import RLHFSettings
    from duetrl.core.rlhf.sft import SFTSettings, demonstrator, supervised_fine_tune

    settings = SFTSettings(**given_flags(args, _fields(SFTSettings)))
    demonstrator(args.task)  # a task without demonstrations: refused before any work
    backend = load_backend(args.backend)
    backend.set_num_threads(args.threads)
    rl_settings = RLHFSettings(task=args.task)
    try:  # a damaged or other task's reference: the message names the flag
        _, reference_path = reference_for(rl_settings, args.reference_checkpoint, args.quiet)
    except ValueError as error:  # CheckpointError is one
        raise ValueError(f"--reference-checkpoint: {error}") from None
    path = Path(args.out) if args.out else default_sft_path(args.task)
    _, summary = supervised_fine_tune(backend, args.task, reference_path, path, settings,
                                      progress=not args.quiet, resume=args.resume,
                                      tensorboard=args.tensorboard)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{args.task}: SFT of {reference_path} on {settings.demonstrations} demonstrations "
          f"({backend.NAME}, {settings.steps} steps, {summary['wall_s']:.1f} s): masked val loss "
          f"{summary['val_loss']:.3f}; its samples score {summary['true_reward']:.3f} (success "
          f"{summary['success']:.2f}); saved {summary['checkpoint']}\n"
          f"next: duetrl rlhf reward-model --task {args.task} --sft-checkpoint "
          f"{summary['checkpoint']}")
    return 0


def run_pipeline(args: argparse.Namespace) -> int:
    from duetrl.core.backend import load_backend
    from duetrl.core.rlhf.pipeline import (
        PipelineSettings,
        format_table,
        plot_pipeline,
        run_pipeline,
    )

    settings = PipelineSettings(**given_flags(args, _fields(PipelineSettings)))
    backend = load_backend(args.backend)
    backend.set_num_threads(args.threads)
    out = Path(args.out) if args.out else RUNS / settings.task / "pipeline"

    def log(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    result = run_pipeline(backend, settings, out, log=log)
    plot = plot_pipeline({backend.NAME: result}, out / "pipeline.png",
                         f"the RLHF pipeline on {settings.task} ({backend.NAME})")
    result["plot"] = str(plot)
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k != "histories"}, indent=2))
        return 0
    print(format_table(result))
    print(f"reward model: held-out pairwise accuracy "
          f"{result['reward_model']['held_out_accuracy']:.3f}; plot {plot}")
    return 0
