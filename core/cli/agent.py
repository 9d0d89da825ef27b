"""``duetrl agent train|eval|watch`` and ``duetrl compare agent``: an LM that scores the
admissible commands of a text environment, trained by PPO (outline 3.2.3; GLAM).

    duetrl agent pretrain --out runs/agent/world_lm.safetensors    # the LM of policy lm
    duetrl agent train --env duetrl/KeyDoor-v0 --policy lm-scratch --backend tf --json
    duetrl agent train --policy lm --pretrained runs/agent/world_lm.safetensors
    duetrl agent train --policy mlp                              # the baseline without an LM
    duetrl agent eval runs/agent/KeyDoor-v0/lm-scratch_torch/checkpoint.safetensors
    duetrl agent watch runs/agent/KeyDoor-v0/lm-scratch_torch/checkpoint.safetensors --seed 3
    duetrl compare agent --updates 5

Every field of ``AgentSettings`` (core/agents/settings.py) is a ``train`` flag; ``train`` is a
run of ``duetrl.core.run``: log.csv as it goes, summary.json, success.png, a usable checkpoint
on Ctrl-C, ``--resume`` and ``--tensorboard``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from duetrl.core.cli.flags import add_dataclass_flags, add_run_flags, given_flags

RUNS = Path("runs/agent")


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    from duetrl.core.agents.settings import settings_fields

    add_dataclass_flags(parser, settings_fields(),
                        "agent settings (core/agents/settings.py AgentSettings)")


def register(commands: argparse._SubParsersAction, compare: argparse._SubParsersAction) -> None:
    agent = commands.add_parser("agent", help="an LM acting in a text environment: train, eval, "
                                              "watch")
    sub = agent.add_subparsers(dest="agent_command", metavar="AGENT_COMMAND", required=True)

    train = sub.add_parser("train", help="PPO on an LM policy that scores admissible commands")
    add_run_flags(train, "backend", "out", "threads", "json", "quiet", "resume", "tensorboard",
                  out_help="run folder (default: runs/agent/<env>/<policy>_<backend>)",
                  json_help="print the summary (success_rate, env_steps, wall_s, ...) as JSON")
    _add_settings_flags(train)  # --seed: a settings field
    train.add_argument("--pretrained", dest="lm_checkpoint", metavar="FILE", default=None,
                       help="policy lm: the pretrained GPT (duetrl agent pretrain); the same as "
                            "--lm-checkpoint")
    train.set_defaults(run=run_train, algorithm="agent")  # a sweep's algorithm column

    pretrain = sub.add_parser(
        "pretrain", help="pretrain the LM policy's GPT on true sentences about the text worlds")
    add_run_flags(pretrain, "backend", "out", "seed", "threads", "json", "quiet",
                  out="runs/agent/world_lm.safetensors", out_help="the checkpoint file",
                  json_help="print the summary (val_loss, checkpoint, ...) as JSON")
    from duetrl.core.agents.pretrain import PretrainSettings

    add_dataclass_flags(pretrain, dataclasses.fields(PretrainSettings),
                        "pretraining settings (core/agents/pretrain.py PretrainSettings)")
    pretrain.set_defaults(run=run_pretrain)

    evaluate = sub.add_parser("eval", help="greedy success rate of a trained agent")
    evaluate.add_argument("checkpoint", help="an agent's checkpoint.safetensors")
    evaluate.add_argument("--episodes", type=int, default=50, help="seeded episodes")
    add_run_flags(evaluate, "backend", "threads", "json", json_help="print the figures as JSON")
    evaluate.set_defaults(run=run_eval)

    watch = sub.add_parser("watch", help="play one episode, showing each command's probability")
    watch.add_argument("checkpoint", help="an agent's checkpoint.safetensors")
    watch.add_argument("--sample", action="store_true", help="sample actions (default: greedy)")
    add_run_flags(watch, "backend", "seed", "threads", "json",
                  seed_help="seeds the episode (and the sampling noise)",
                  json_help="print the steps as JSON")
    watch.set_defaults(run=run_watch)

    cmp = compare.add_parser("agent", help="an LM agent's PPO in torch and tf, in lockstep")
    add_run_flags(cmp, "threads", "json", "quiet", json_help="print the rows and summary as JSON")
    _add_settings_flags(cmp)
    cmp.set_defaults(run=run_compare)


def settings_from_args(args: argparse.Namespace, **defaults):
    """AgentSettings with every flag the user gave (then ``defaults``) applied, validated."""
    from duetrl.core.agents.settings import AgentSettings, settings_fields

    return AgentSettings(**{**defaults, **given_flags(args, settings_fields())})


def _backend(args: argparse.Namespace):
    from duetrl.core.backend import load_backend

    backend = load_backend(args.backend)
    backend.set_num_threads(args.threads)
    return backend


def run_train(args: argparse.Namespace) -> int:
    from duetrl.core.agents.train import train

    settings = settings_from_args(args)
    out = Path(args.out) if args.out else (
        RUNS / settings.env.split("/")[-1] / f"{settings.policy}_{args.backend}")
    summary = train(_backend(args), settings, out, args.resume, not args.quiet, args.tensorboard)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{settings.policy} on {settings.env} ({summary['backend']}): greedy success rate "
          f"{summary['success_rate']:.2f} over {summary['eval_episodes']} episodes after "
          f"{summary['updates']} updates, {summary['env_steps']} env steps in "
          f"{summary['wall_s']:.1f} s ({summary['env_steps_per_s']:.0f} env steps/s)\n"
          f"log {summary['log']}, plot {summary['plot']}, checkpoint {summary['checkpoint']}")
    return 0


def run_pretrain(args: argparse.Namespace) -> int:
    from duetrl.core.agents.pretrain import PretrainSettings, pretrain

    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(PretrainSettings)
              if getattr(args, f.name, None) is not None}
    settings = PretrainSettings(**values)
    summary = pretrain(_backend(args), settings, args.out, seed=args.seed,
                       progress=not args.quiet)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    print(f"pretrained the agent's GPT ({summary['parameters']} parameters, "
          f"{summary['vocab_size']} words) on {summary['corpus_tokens']} tokens of world "
          f"sentences: val loss {summary['val_loss']:.3f} after {summary['updates']} steps; saved "
          f"{args.out} (use it with `duetrl agent train --policy lm --pretrained {args.out}`)")
    return 0


def _trainer(args: argparse.Namespace):
    """An LMAgentRun with the checkpoint's settings and weights."""
    from duetrl.core.agents.settings import LM_AGENT_KIND, AgentSettings
    from duetrl.core.agents.train import LMAgentRun
    from duetrl.core.checkpoint import load_checkpoint

    if not Path(args.checkpoint).is_file():
        raise FileNotFoundError(f"checkpoint: no file at {args.checkpoint!r}; train one with "
                                "`duetrl agent train`")
    checkpoint = load_checkpoint(args.checkpoint, LM_AGENT_KIND)
    saved = dict(checkpoint.metadata["settings"], lm_checkpoint="", num_envs=1)
    if saved["policy"] == "lm":
        saved["lm_checkpoint"] = ""  # the weights come from this checkpoint
    trainer = LMAgentRun(_backend(args), AgentSettings(**saved))
    trainer.load_weights(checkpoint)
    return trainer


def run_eval(args: argparse.Namespace) -> int:
    if args.episodes < 1:
        raise ValueError(f"--episodes: expected a positive int, got {args.episodes}")
    trainer = _trainer(args)
    figures = {"checkpoint": args.checkpoint, "env": trainer.settings.env,
               **trainer.success_rate(args.episodes)}
    trainer.close()
    if args.json:
        print(json.dumps(figures))
        return 0
    print(f"{figures['env']}: greedy success rate {figures['success_rate']:.2f} over "
          f"{args.episodes} episodes (mean return {figures['eval_return']:.3f})")
    return 0


def run_watch(args: argparse.Namespace) -> int:
    from duetrl.core.agents.train import transcript

    trainer = _trainer(args)
    steps = transcript(trainer, args.seed, greedy=not args.sample)
    trainer.close()
    if args.json:
        print(json.dumps({"steps": steps}))
        return 0
    print(f"goal: {steps[0]['goal']}" if steps else "no steps")
    for number, step in enumerate(steps, 1):
        print(f"\n[{number}] {step['text']}")
        for k, (command, p) in enumerate(zip(step["commands"], step["probabilities"])):
            mark = ">" if k == step["action"] else " "
            print(f"  {mark} {p:6.3f}  {command}")
        if step["reward"]:
            print(f"  reward {step['reward']:+.2f}")
    if steps:
        print(f"\n{'success' if steps[-1]['success'] else 'no success'} after {len(steps)} steps")
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from duetrl.core.agents.train import LMAgentRun
    from duetrl.core.backend import load_backend
    from duetrl.core.run import compare
    from duetrl.core.tolerances import TOLERANCES

    settings = settings_from_args(args)
    trainers = {}
    for name in ("torch", "tf"):  # torch first: import torch before tensorflow
        backend = load_backend(name)
        backend.set_num_threads(args.threads)
        trainers[name] = LMAgentRun(backend, settings)
    result = compare(trainers, lambda t: t.state().tensors["params"],
                     TOLERANCES["float32_model"], quiet=args.quiet,
                     description=f"compare agent ({settings.env})")
    for trainer in trainers.values():
        trainer.close()
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    for row in result["rows"]:
        print(f"update {row['update']:3d}  success torch {row['success_rate_torch']:.2f} tf "
              f"{row['success_rate_tf']:.2f}  loss torch {row['loss_torch']:.6f} tf "
              f"{row['loss_tf']:.6f}  max|dtheta| {row['max_param_diff']:.2e}")
    b = result["backends"]
    print(f"lockstep within {result['tolerance']:g} for {result['updates_within_tolerance']} "
          f"updates; greedy success torch {b['torch']['success_rate']:.2f}, tf "
          f"{b['tf']['success_rate']:.2f}; ms/update torch {b['torch']['ms_per_update']:.0f}, "
          f"tf {b['tf']['ms_per_update']:.0f}")
    return 0
