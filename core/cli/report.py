"""``duetrl report SWEEP_DIR``: honest statistics over the seeds of a sweep (outline 8.3.3).

    duetrl report runs/sweep-ppo                       tables, figures in runs/sweep-ppo/report/
    duetrl report runs/sweep-ppo --metric env_steps --reps 5000 --json
    duetrl report runs/sweeps/lm_agent                 LM agents: success_rate, its curves
    duetrl report runs/sweeps/lm_agent --metric heldout_sampled_success_rate --curve entropy

The score (``--metric``, a column of results.csv) is by default ``final_mean_return`` when the
sweep has it, else ``success_rate`` (``duetrl agent train``); the learning curves (``--curve``,
a column of each run's log.csv, against env_steps) by default ``success_rate`` when the score is
a success rate, else ``mean_return`` (RL) or ``reward`` (RLHF).

Per method (algorithm, backend, swept settings): mean, IQM and median over seeds with
stratified-bootstrap confidence intervals (rliable), performance profiles, the probability
of improvement between methods that differ in one factor, and learning curves with bands.
The statistics live in ``core/scale/statistics.py``, the tables and figures in
``core/scale/report.py``; pandas and rliable load only when it runs.
"""

from __future__ import annotations

import argparse
import json

from duetrl.core.cli.flags import add_run_flags


def register(commands: argparse._SubParsersAction, compare: argparse._SubParsersAction) -> None:
    if commands is None:
        return
    parser = commands.add_parser(
        "report", help="aggregate a sweep over seeds: IQM, bootstrap CIs, P(X > Y), curves")
    parser.add_argument("sweep_dir", metavar="SWEEP_DIR", help="folder written by duetrl sweep")
    parser.add_argument("--metric", default="auto",
                        help="numeric column of results.csv to compare methods on (default "
                             "auto: final_mean_return, else success_rate)")
    parser.add_argument("--curve", default="auto",
                        help="column of each run's log.csv drawn as IQM learning curves "
                             "(default auto: success_rate for a success-rate metric, else "
                             "mean_return or reward)")
    parser.add_argument("--reps", type=int, default=2000,
                        help="bootstrap resamples per confidence interval")
    add_run_flags(parser, "out", "seed", "json", seed=0, seed_help="seeds the bootstrap",
                  out_help="output folder (default: SWEEP_DIR/report)",
                  json_help="print report.json instead")
    parser.set_defaults(run=run_report)


def run_report(args: argparse.Namespace) -> int:
    from duetrl.core.scale.report import format_markdown, make_report

    report = make_report(args.sweep_dir, args.metric, args.reps, args.seed, args.out,
                         args.curve)
    if args.json:
        with open(report["files"]["json"]) as f:
            print(json.dumps(json.load(f), indent=2))
    else:
        print(format_markdown(report))
        print(f"written: {report['files']['markdown']}, {report['files']['json']}")
    return 0
