"""``duetrl recommend train|compare|eval``: the LM-based recommender trained with RL from logged
data (outline 6.2; Chen et al. 2019, top-K off-policy correction).

    duetrl recommend train --backend torch --method top_k --k 4     # one run
    duetrl recommend compare --backend torch --seeds 0 1 2 --json   # the four methods, IQM, CIs
    duetrl recommend eval runs/recommend/torch/checkpoint.safetensors

Every field of ``RecommenderSettings`` (core/cases/recommender/train.py) is a flag of ``train``
and ``compare``, its field doc the help. ``train`` is a run of ``duetrl.core.run``: log.csv as
it goes, a progress bar, summary.json (the held-out top-K reward, expected clicks, IPS / SNIPS
and their true values), checkpoints, Ctrl-C, ``--resume``, ``--tensorboard``, recommender.png.
``compare`` trains each method on each seed (a finished run is read back, so it resumes) and
prints the statistics; ``eval`` reports a checkpoint's figures.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from duetrl.core.cli.case_train import add_checkpoint_command, checkpoint_backend, train_case
from duetrl.core.cli.flags import add_dataclass_flags, add_run_flags, given_flags

RUNS = Path("runs/recommend")


def register(commands: argparse._SubParsersAction, compare: argparse._SubParsersAction) -> None:
    from duetrl.core.cases.recommender.train import settings_fields
    from duetrl.core.interfaces.recommender import METHODS

    recommend = commands.add_parser(
        "recommend", help="a GPT recommender trained by RL from logged data (top-K correction)"
    )
    sub = recommend.add_subparsers(
        dest="recommend_command", metavar="RECOMMEND_COMMAND", required=True
    )

    train = sub.add_parser("train", help="train one method on the simulator's logged data")
    add_run_flags(
        train,
        "backend",
        "out",
        "threads",
        "json",
        "quiet",
        "resume",
        "tensorboard",
        out_help="run folder (default: runs/recommend/<backend>)",
        json_help="print the summary as JSON (top_k_reward, ips, snips, ...)",
    )
    train.add_argument(
        "--checkpoint-every",
        type=int,
        default=0,
        metavar="N",
        help="also save a checkpoint every N updates (default: at the end)",
    )
    add_dataclass_flags(train, settings_fields(), "recommender settings (core/cases/recommender)")
    train.set_defaults(run=run_train)

    versus = sub.add_parser("compare", help="every method over seeds: IQM, 95%% CIs, P(X > Y)")
    add_run_flags(
        versus,
        "backend",
        "out",
        "threads",
        "json",
        "quiet",
        out_help="folder of the runs (default: runs/recommend/compare-<backend>)",
        json_help="print the comparison as JSON (statistics and every run)",
    )
    versus.add_argument(
        "--methods",
        nargs="+",
        default=list(METHODS),
        choices=METHODS,
        help="the methods to compare (default: all four)",
    )
    versus.add_argument(
        "--reps",
        type=int,
        default=2000,
        metavar="N",
        help="bootstrap resamples of each confidence interval (default: 2000)",
    )
    versus.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=[0, 1, 2],
        metavar="SEED",
        help="seeds of each method (default: 0 1 2)",
    )
    add_dataclass_flags(
        versus,
        [f for f in settings_fields() if f.name not in ("method", "seed")],
        "recommender settings (core/cases/recommender)",
    )
    versus.set_defaults(run=run_compare)

    add_checkpoint_command(
        sub, "eval", "held-out figures of a checkpoint", run_eval, case="recommend"
    )


def format_figures(f: dict[str, Any], k: int) -> str:
    """The held-out figures in three lines."""
    return (
        f"  top-{k} reward {f['top_k_reward']:.3f} (oracle {f['oracle_top_k_reward']:.3f}, "
        f"logging policy {f['behaviour_top_k_reward']:.3f}); expected clicks of {k} draws "
        f"{f['expected_clicks']:.3f}\n"
        f"  off-line: IPS {f['ips']:.3f}, SNIPS {f['snips']:.3f} (true click rate "
        f"{f['true_click_rate']:.3f}); IPS of the expected clicks "
        f"{f['ips_expected_clicks']:.3f} (true {f['true_expected_clicks']:.3f})"
    )


def run_train(args: argparse.Namespace) -> int:
    from duetrl.core.cases.recommender.train import (
        RecommenderRun,
        RecommenderSettings,
        settings_fields,
    )

    settings = RecommenderSettings(**given_flags(args, settings_fields()))
    return train_case(
        args,
        lambda backend: RecommenderRun(backend, settings),
        RUNS,
        lambda summary: (
            f"recommend {settings.method} ({summary['backend']}): {summary['updates']} "
            f"updates in {summary['wall_s']:.1f} s\n{format_figures(summary, settings.k)}"
        ),
        checkpoint_every=args.checkpoint_every,
    )


def run_compare(args: argparse.Namespace) -> int:
    from duetrl.core.backend import load_backend
    from duetrl.core.cases.recommender.experiment import compare_methods, plot_comparison
    from duetrl.core.cases.recommender.train import RecommenderSettings, settings_fields

    fields = [f for f in settings_fields() if f.name not in ("method", "seed")]
    settings = RecommenderSettings(**given_flags(args, fields))
    backend = load_backend(args.backend)
    backend.set_num_threads(args.threads)
    out = Path(args.out) if args.out else RUNS / f"compare-{args.backend}"

    def progress(summary: dict[str, Any]) -> None:
        if not args.quiet and not args.json:
            print(
                f"  {summary['method']:>10} seed {summary['seed']}: top-{settings.k} reward "
                f"{summary['top_k_reward']:.3f} ({summary['wall_s']:.1f} s)",
                flush=True,
            )

    result = compare_methods(
        backend, settings, out, args.methods, args.seeds, reps=args.reps, on_run=progress
    )
    result["plot"] = str(plot_comparison(result, out / "comparison.png"))
    (out / "comparison.json").write_text(json.dumps(result, indent=2, default=str))
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    stats = result["statistics"]["top_k_reward"]
    for method, entry in stats["methods"].items():
        ci = entry["iqm_ci"]
        band = f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "(one seed: no CI)"
        print(f"{method:>10}: top-{settings.k} reward IQM {entry['iqm']:.3f} {band}")
    for other, entry in stats.get("p_top_k_better", {}).items():
        d = stats["top_k_minus"][other]
        band = f" [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]" if d["ci"] else ""
        print(
            f"top_k - {other}: {d['mean']:+.3f}{band} seed by seed, top_k ahead in "
            f"{d['wins']}/{d['seeds']} seeds; P(top_k > {other}) = {entry['p']:.2f}"
        )
    print(f"plot {result['plot']}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from duetrl.core.cases.recommender.train import RECOMMENDER_KIND, load_run

    backend = checkpoint_backend(args, RECOMMENDER_KIND)
    trainer = load_run(backend, args.checkpoint)
    figures = {"backend": backend.NAME, "updates": trainer.updates, **trainer.evaluate()}
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(
        f"recommend {figures['method']} ({backend.NAME}), {trainer.updates} updates:\n"
        f"{format_figures(figures, trainer.settings.k)}"
    )
    return 0
