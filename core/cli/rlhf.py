"""``duetrl rlhf pretrain|train|sample`` and ``duetrl compare rlhf``: RL on language models.

    duetrl rlhf pretrain --task sort-digits
    duetrl rlhf train --task sort-digits --algo rloo --backend tf --beta 0.01 --json
    duetrl rlhf train --task sort-digits --algo rloo --reference uniform --beta 0.1 --updates 300
    duetrl rlhf sample --checkpoint runs/rlhf/sort-digits/rloo_torch/checkpoint.safetensors
    duetrl compare rlhf --task sort-digits --algo grpo --updates 30
    duetrl rlhf reward-model --task sort-digits --pairs 256
    duetrl rlhf train --reward learned --reward-model runs/rlhf/sort-digits/reward_model.safetensors
    duetrl rlhf overoptimisation --betas 0.001,0.01,0.1 --updates 80
    duetrl rlhf sft --task sort-digits                 # core/cli/rlhf_sft.py: sft, pipeline
    duetrl rlhf train --sft-checkpoint runs/rlhf/sort-digits/sft.safetensors --reward learned

Every field of ``RLHFSettings`` (core/rlhf/settings.py) is a ``train`` flag, its field doc the
help. ``train`` with the pretrained reference uses ``--reference-checkpoint``; when that is the
default path and missing, the reference is pretrained first (a few seconds). ``pretrain``,
``train`` and ``reward-model`` are runs of ``duetrl.core.run``: log.csv as they go,
summary.json, a usable checkpoint on Ctrl-C, ``--resume`` and ``--tensorboard``; ``pretrain``
and ``reward-model`` keep theirs in ``<checkpoint stem>_run/`` beside the checkpoint file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from duetrl.core.cli.flags import add_dataclass_flags, add_run_flags, given_flags
from duetrl.core.cli.rlhf_paths import (
    RUNS,
    default_reference_path,
    default_reward_model_path,
    reference_for,
)


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    from duetrl.core.rlhf.settings import settings_fields

    add_dataclass_flags(parser, settings_fields(),
                        "RL settings (core/rlhf/settings.py RLHFSettings)")


def _add_model_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n-layer", type=int, default=2, help="GPT blocks")
    parser.add_argument("--n-head", type=int, default=2, help="attention heads per block")
    parser.add_argument("--n-embd", type=int, default=32, help="model width")


RUN_FLAGS = ("backend", "out", "seed", "threads", "json", "quiet", "resume", "tensorboard")
"""The shared run flags (core/cli/flags.py) of the training commands pretrain, train and
reward-model (train and reward-model take --seed as a settings field)."""


def register(commands: argparse._SubParsersAction, compare: argparse._SubParsersAction) -> None:
    rlhf = commands.add_parser("rlhf", help="RL on a small GPT: pretrain, train, sample")
    sub = rlhf.add_subparsers(dest="rlhf_command", metavar="RLHF_COMMAND", required=True)

    pretrain = sub.add_parser("pretrain", help="pretrain a task's reference GPT (seconds)")
    pretrain.add_argument("--task", default="sort-digits", help="text task")
    add_run_flags(pretrain, *RUN_FLAGS, threads=1, seed_help="seeds the corpus, the weights "
                  "and the batches", out_help="checkpoint file (default: runs/rlhf/<task>/"
                  "reference.safetensors)", json_help="print a JSON summary")
    pretrain.add_argument("--steps", type=int, default=300, help="AdamW updates")
    pretrain.add_argument("--batch-size", type=int, default=32)
    pretrain.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    pretrain.add_argument("--documents", type=int, default=4000, help="corpus documents")
    _add_model_flags(pretrain)
    pretrain.set_defaults(run=run_pretrain)

    train = sub.add_parser("train", help="RL-train the policy against a reward and a KL")
    add_run_flags(train, *(f for f in RUN_FLAGS if f != "seed"), threads=1,
                  out_help="run folder (default: runs/rlhf/<task>/<algo>_<backend>)",
                  json_help="print a JSON summary")  # --seed: a settings field below
    train.add_argument("--reference-checkpoint", default=None,
                       help="the pretrained reference (default: runs/rlhf/<task>/"
                            "reference.safetensors, pretrained first if missing)")
    train.add_argument("--sft-checkpoint", default=None,
                       help="start from an SFT model (duetrl rlhf sft), which is also the KL "
                            "reference (instead of --reference-checkpoint)")
    _add_settings_flags(train)
    train.set_defaults(run=run_train)

    sample = sub.add_parser("sample", help="show completions of a checkpoint with their rewards")
    sample.add_argument("--checkpoint", default=None,
                        help="an RL run's checkpoint or a reference (default: the task's "
                             "reference)")
    sample.add_argument("--task", default=None, help="the task (default: the checkpoint's)")
    add_run_flags(sample, "backend", "seed", "threads", "json", threads=1,
                  seed_help="seeds the prompts and the sampling noise",
                  json_help="print the samples as JSON")
    sample.add_argument("--num", type=int, default=8, help="completions to show")
    sample.set_defaults(run=run_sample)

    reward = sub.add_parser(
        "reward-model", help="fit a reward model to preference pairs (Bradley-Terry)"
    )
    add_run_flags(reward, *(f for f in RUN_FLAGS if f != "seed"), threads=1,
                  out_help="checkpoint (default: runs/rlhf/<task>/reward_model.safetensors)",
                  json_help="print a JSON summary")  # --seed: a settings field below
    from duetrl.core.rlhf.reward_training import reward_model_fields

    add_dataclass_flags(reward, reward_model_fields(), "reward-model settings "
                        "(core/rlhf/reward_training.py RewardModelSettings)")
    reward.add_argument("--sft-checkpoint", default=None,
                        help="an SFT model (duetrl rlhf sft): pairs of its own samples join "
                             "the training pairs, so r_phi sees where RL will start")
    reward.add_argument("--sft-pairs", type=int, default=128,
                        help="with --sft-checkpoint: prompts whose two SFT samples make a pair "
                             "(ties dropped; default: 128)")
    reward.set_defaults(run=run_reward_model)

    over = sub.add_parser(
        "overoptimisation",
        help="RL against a learned reward at several beta: learned and true reward vs KL",
    )
    over.add_argument("--task", default="sort-digits", help="text task")
    over.add_argument("--reward-model", default=None,
                      help="reward model (default: runs/rlhf/<task>/reward_model.safetensors, "
                           "trained first if missing)")
    over.add_argument("--reference-checkpoint", default=None, help="the pretrained reference")
    over.add_argument("--betas", default="0.001,0.003,0.01,0.03,0.1",
                      help="comma-separated KL coefficients")
    over.add_argument("--updates", type=int, default=80, help="RL updates per beta")
    over.add_argument("--algo", default="rloo", help="RL objective")
    add_run_flags(over, "backend", "seed", "threads", "out", "quiet", "json", threads=1,
                  seed_help="seeds the prompts, the sampling noise and the heads",
                  out_help="plot (default: runs/rlhf/<task>/overoptimisation.png; each beta's "
                           "run folder goes to <plot stem>/beta_<beta>/)",
                  json_help="print the table as JSON")
    over.set_defaults(run=run_overoptimisation)

    from duetrl.core.cli.rlhf_sft import register_sft

    register_sft(sub, RUN_FLAGS)

    cmp = compare.add_parser("rlhf", help="RL on a text task in torch and tf, in lockstep")
    cmp.add_argument("--reference-checkpoint", default=None)
    add_run_flags(cmp, "threads", "json", "quiet", threads=1, json_help="print the rows and "
                  "summary as JSON")
    cmp.add_argument("--every", type=int, default=10, help="table row every this many updates")
    _add_settings_flags(cmp)
    cmp.set_defaults(run=run_compare)


def settings_from_args(args: argparse.Namespace, **defaults):
    """RLHFSettings with every flag the user gave (then ``defaults``) applied, validated."""
    from duetrl.core.rlhf.settings import RLHFSettings, settings_fields

    return RLHFSettings(**{**defaults, **given_flags(args, settings_fields())})


def run_pretrain(args: argparse.Namespace) -> int:
    from duetrl.core.backend import load_backend
    from duetrl.core.rlhf.mdp import SequenceMDP, rollout
    from duetrl.core.rlhf.pi_ref import (
        ModelSize,
        PretrainSettings,
        load_reference,
        pretrain_reference,
    )
    from duetrl.core.rlhf.tasks import get_task
    from duetrl.core.run.loop import write_summary

    task = get_task(args.task)
    path = Path(args.out) if args.out else default_reference_path(task.name)
    backend = load_backend(args.backend)
    backend.set_num_threads(args.threads)
    settings = PretrainSettings(args.steps, args.batch_size, args.lr, args.documents, args.seed)
    size = ModelSize(args.n_layer, args.n_head, args.n_embd)
    figures = pretrain_reference(backend, task, path, settings, size, progress=not args.quiet,
                                 resume=args.resume, tensorboard=args.tensorboard)
    config, params = load_reference(path, task)
    model = backend.GPT(config)
    backend.import_params(model, params)
    mdp = SequenceMDP.for_task(task)
    import numpy as np

    prompts = task.prompts(32, np.random.default_rng((args.seed, 5)))
    data = rollout(backend, model, None, mdp, prompts, 4, seed=args.seed)
    figures.update(reward=float(data.rewards.mean()), success_rate=float(data.success.mean()),
                   stopped=float(np.mean([c.endswith(task.stop) for c in data.completions])))
    # the run's summary.json gets the samples' figures too
    write_summary(Path(figures["log"]).parent / "summary.json", figures)
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"{task.name}: reference pretrained in {figures['seconds']:.1f} s "
              f"({figures['parameters']} parameters, val loss {figures['val_loss']:.3f}); its "
              f"samples score {figures['reward']:.3f} (success {figures['success_rate']:.2f}, "
              f"stop token {figures['stopped']:.2f}); saved {figures['checkpoint']}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    from duetrl.core.backend import load_backend
    from duetrl.core.cli.rlhf_sft import check_sft_flags
    from duetrl.core.rlhf.diagnostics import log_warnings
    from duetrl.core.rlhf.train import train

    settings = settings_from_args(args)
    sft_path = check_sft_flags(args, settings.task)  # the policy's start and KL reference
    backend = load_backend(args.backend)
    backend.set_num_threads(args.threads)
    reference_path = sft_path or reference_for(settings, args.reference_checkpoint, args.quiet)[1]
    out = Path(args.out) if args.out else RUNS / settings.task / f"{settings.algo}_{args.backend}"
    summary = train(backend, settings, out, reference_path, args.resume, not args.quiet,
                    args.tensorboard)
    for line in log_warnings(summary["log"]):  # a collapse named where the student sees it
        print(f"duetrl: warning: {line}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    exact = summary.get("exact")
    extra = (f" (exact optimum: reward {exact['mean_reward']:.4f}, KL {exact['kl']:.4f})"
             if exact else "")
    if "mean_true_reward" in summary:  # --reward learned: the task's reward beside it
        extra += (f" (learned reward; the task's true reward {summary['initial_true_reward']:.3f}"
                  f" -> {summary['mean_true_reward']:.3f})")
    print(f"{settings.algo} on {settings.task} ({summary['backend']}, beta {settings.beta}): "
          f"reward {summary['initial_reward']:.3f} -> {summary['mean_reward']:.3f}, KL "
          f"{summary['kl']:.3f} nats{extra}; {summary['updates']} updates in "
          f"{summary['wall_s']:.1f} s ({summary['samples_per_s']:.0f} samples/s)\n"
          f"log {summary['log']}, plot {summary['plot']}, checkpoint {summary['checkpoint']}")
    return 0


def run_sample(args: argparse.Namespace) -> int:
    import numpy as np

    from duetrl.core.backend import load_backend
    from duetrl.core.checkpoint import read_file
    from duetrl.core.interfaces.gpt_config import GPTConfig
    from duetrl.core.rlhf.mdp import SequenceMDP, rollout
    from duetrl.core.rlhf.tasks import get_task

    path = args.checkpoint
    if path is None:
        if args.task is None:
            raise ValueError("--task: give a task or a --checkpoint")
        path = str(default_reference_path(args.task))
    arrays, metadata = read_file(path)
    settings = metadata.get("settings", {})
    task = get_task(args.task or settings.get("task") or metadata.get("task", ""))
    mdp = SequenceMDP.for_task(task, settings.get("reference", "pretrained"))
    config = GPTConfig.from_dict(metadata["config"])
    params = {k.partition(".")[2]: v for k, v in arrays.items() if k.startswith("params.")}
    backend = load_backend(args.backend)
    backend.set_num_threads(args.threads)
    model = backend.GPT(config)
    backend.import_params(model, params)
    prompts = task.prompts(args.num, np.random.default_rng((args.seed, 6)))
    data = rollout(backend, model, None, mdp, prompts, 1, seed=args.seed)
    rows = [
        {"prompt": p, "completion": c, "reward": float(r), "success": bool(s)}
        for p, c, r, s in zip(data.prompts, data.completions, data.rewards, data.success)
    ]
    if args.json:
        print(json.dumps({"samples": rows, "mean_reward": float(data.rewards.mean())}))
        return 0
    for row in rows:
        print(f"{row['reward']:.3f}  {row['prompt']!r} -> {row['completion']!r}")
    print(f"mean reward {data.rewards.mean():.3f} over {len(rows)} samples ({task.name})")
    return 0


def run_reward_model(args: argparse.Namespace) -> int:
    from duetrl.core.backend import load_backend
    from duetrl.core.cli.rlhf_sft import check_sft_flags
    from duetrl.core.rlhf.reward_training import (
        RewardModelSettings,
        reward_model_fields,
        train_reward_model,
    )

    values = given_flags(args, reward_model_fields())
    settings = RewardModelSettings(**values)
    sft_path = check_sft_flags(args, settings.task)
    if sft_path is not None and args.sft_pairs < 1:
        raise ValueError(f"--sft-pairs: expected a positive int, got {args.sft_pairs}")
    backend = load_backend(args.backend)
    backend.set_num_threads(args.threads)
    extra = None
    if sft_path is not None:  # pairs of the SFT policy's own samples, labelled by the rule
        from duetrl.core.rlhf.pipeline import policy_pairs
        from duetrl.core.rlhf.sft import load_sft

        config, params = load_sft(sft_path, settings.task, flag="--sft-checkpoint")
        model = backend.GPT(config)
        backend.import_params(model, params)
        extra = policy_pairs(backend, model, settings.task, args.sft_pairs, settings.seed)
    path = Path(args.out) if args.out else default_reward_model_path(settings.task)
    _, figures = train_reward_model(backend, settings, path, progress=not args.quiet,
                                    resume=args.resume, tensorboard=args.tensorboard,
                                    extra_pairs=extra)
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    if sft_path is not None:
        print(f"({len(extra)} of the pairs are the SFT model's own samples, {sft_path})")
    print(f"reward model for {settings.task} ({backend.NAME}, {figures['parameters']} "
          f"parameters, {figures['pairs']} pairs, {figures['seconds']:.1f} s): pairwise "
          f"accuracy {figures['train_accuracy']:.3f} on its pairs, "
          f"{figures['held_out_accuracy']:.3f} held out; saved {figures['checkpoint']}\n"
          f"use it: duetrl rlhf train --task {settings.task} --reward learned --reward-model "
          f"{figures['checkpoint']}")
    return 0


def _floats(text: str, name: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{name}: expected comma-separated numbers, got {text!r}") from None
    if not values or any(v < 0 for v in values):
        raise ValueError(f"{name}: expected one or more numbers >= 0, got {text!r}")
    return values


def run_overoptimisation(args: argparse.Namespace) -> int:
    from duetrl.core.backend import load_backend
    from duetrl.core.rlhf.overoptimisation import (
        overoptimisation_sweep,
        overoptimisation_table,
        plot_overoptimisation,
    )
    from duetrl.core.rlhf.reward_training import RewardModelSettings, train_reward_model
    from duetrl.core.rlhf.settings import RLHFSettings

    betas = _floats(args.betas, "--betas")
    settings = RLHFSettings(task=args.task, algo=args.algo, updates=args.updates)
    backend = load_backend(args.backend)
    backend.set_num_threads(args.threads)
    reference, _ = reference_for(settings, args.reference_checkpoint, args.quiet)
    path = args.reward_model
    if path is None:
        target = default_reward_model_path(settings.task)
        if not target.is_file():
            print(f"duetrl: no reward model at {target}; training one (duetrl rlhf "
                  f"reward-model --task {settings.task})", file=sys.stderr)
            train_reward_model(backend, RewardModelSettings(task=settings.task), target)
        path = str(target)
    elif not Path(path).is_file():
        raise FileNotFoundError(f"--reward-model: no file at {path!r}; make one with duetrl "
                                f"rlhf reward-model --task {settings.task} --out {path}")
    out = Path(args.out) if args.out else RUNS / settings.task / "overoptimisation.png"
    histories = overoptimisation_sweep(backend, reference, path, betas, args.updates,
                                       args.algo, args.seed, progress=not args.quiet,
                                       out=out.with_suffix(""))
    plot = plot_overoptimisation(histories, out, f"{args.algo} against a learned reward "
                                 f"({backend.NAME}, {args.updates} updates per beta)")
    rows = overoptimisation_table(histories)
    if args.json:
        print(json.dumps({"rows": rows, "plot": str(plot), "reward_model": path}, indent=2))
        return 0
    print(f"{'beta':>8} {'KL':>7} {'learned r':>10} {'true r':>8} {'true r peak':>12}")
    for r in rows:
        print(f"{r['beta']:8g} {r['kl']:7.2f} {r['learned_reward']:10.3f} "
              f"{r['true_reward']:8.3f} {r['peak_true_reward']:12.3f}")
    print(f"plot {plot}")
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from duetrl.core.rlhf.compare import compare_rlhf, format_compare

    settings = settings_from_args(args, updates=30)
    reference, _ = reference_for(settings, args.reference_checkpoint, quiet=True)
    result = compare_rlhf(settings, reference, args.threads, quiet=args.quiet or args.json)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_compare(result, args.every))
    return 0


