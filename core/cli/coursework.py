"""``duetrl assignments list|make|autograder`` and ``duetrl grade``: coursework for instructors.

    duetrl assignments list
    duetrl assignments make returns --backend tf --out hw1
    duetrl assignments autograder returns --out gradescope/returns
    duetrl grade returns --submission hw1/returns.py [--backend tf] [--format text|json|gradescope]
    duetrl grade returns --batch submissions/ --csv grades.csv

Frameworks load only in the grader's child processes, never in this one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from duetrl.core.cli.flags import add_run_flags


def register(commands: argparse._SubParsersAction, compare: argparse._SubParsersAction) -> None:
    from duetrl.core.coursework.specs import ASSIGNMENTS

    names = sorted(ASSIGNMENTS)
    parser = commands.add_parser("assignments", help="hand out assignments; build an autograder")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", help="the assignments").set_defaults(run=run_list)
    make = actions.add_parser("make", help="write a student's copy, statement and public tests")
    make.add_argument("name", choices=names)
    add_run_flags(make, "out", "backend", backend=None, out_required=True,
                  out_help="folder to write into")
    make.add_argument("--solution", action="store_true",
                      help="also write solution/FILE, the filled-in file (instructors only)")
    make.set_defaults(run=run_make)
    bundle = actions.add_parser("autograder", help="write Gradescope's setup.sh, run_autograder "
                                "and the hidden tests' secret")
    bundle.add_argument("name", choices=names)
    add_run_flags(bundle, "out", "seed", "backend", out_required=True,
                  out_help="folder to write into (zip its contents)",
                  seed=None, seed_help="hidden seed (default: random)",
                  backend=None, backend_required=False,
                  backend_help="force a backend (default: read from each submission)")
    bundle.set_defaults(run=run_autograder)

    grade = commands.add_parser("grade", help="grade a submission (or a folder of them) against "
                                "the float64 reference, with hidden tests")
    grade.add_argument("name", choices=names)
    source = grade.add_mutually_exclusive_group(required=True)
    source.add_argument("--submission", help="the student's .py file or a folder holding it")
    source.add_argument("--batch", help="a folder of submissions: one .py or folder per student")
    grade.add_argument("--csv", help="with --batch: the grades, one row per student")
    add_run_flags(grade, "out", "seed", "backend",
                  out_help="write the report here (default: print it)",
                  seed=None, seed_help="hidden seed (instructors)",
                  backend=None, backend_required=False,
                  backend_help="the framework: torch or tf (default: read from the "
                               "submission's imports)")
    grade.add_argument("--format", choices=("text", "json", "gradescope"), default="text")
    grade.add_argument("--hidden", help="the hidden tests' secret (hidden.json of the bundle)")
    grade.add_argument("--memory-mb", type=float, default=None,
                       help="memory a submission may use beyond its framework's (default 2048)")
    grade.add_argument("--no-integrity", action="store_true",
                       help="skip the copy/import checks (to grade the project's own solution)")
    grade.add_argument("--time-limit", type=float, default=None,
                       help="seconds per test instead of each test's own limit")
    grade.add_argument("--submission-time", type=float, default=None,
                       help="seconds all the tests of one submission share (default: twice "
                            "the longest test's limit); a hung submission costs at most this")
    grade.add_argument("--env", default=None, help="learning assignments: another environment")
    grade.add_argument("--budget", type=int, default=None,
                       help="learning assignments: environment-step budget")
    grade.add_argument("--target", type=float, default=None,
                       help="learning assignments: greedy return to reach")
    grade.set_defaults(run=run_grade)


def run_list(args: argparse.Namespace) -> int:
    from duetrl.core.coursework.make import list_assignments

    rows = list_assignments()
    width = max(len(r[0]) for r in rows)
    for name, sections, title in rows:
        print(f"{name:<{width}}  {sections:<11} {title}")
    return 0


def run_make(args: argparse.Namespace) -> int:
    from duetrl.core.coursework.make import make_assignment

    try:
        written = make_assignment(args.name, args.backend, args.out, args.solution)
    except FileExistsError as error:
        raise ValueError(str(error)) from None
    for path in written:
        print(path)
    return 0


def run_autograder(args: argparse.Namespace) -> int:
    from duetrl.core.coursework.make import make_autograder

    for path in make_autograder(args.name, args.out, args.seed, args.backend):
        print(path)
    print(f"zip the contents of {args.out} (and a duetrl wheel, if not from the registry) "
          "and upload it as the Gradescope autograder", file=sys.stderr)
    return 0


def run_grade(args: argparse.Namespace) -> int:
    import dataclasses

    from duetrl.core.coursework.grader import grade, grade_batch
    from duetrl.core.coursework.reports import format_report
    from duetrl.core.coursework.sandbox import DEFAULT_MEMORY_MB
    from duetrl.core.coursework.specs import get_assignment

    learning = None
    spec = get_assignment(args.name).learning
    overrides = {k: v for k, v in (("env_id", args.env), ("budget_steps", args.budget),
                                   ("target", args.target)) if v is not None}
    if overrides:
        if spec is None:
            raise ValueError(f"--env/--budget/--target: {args.name} is not a learning assignment")
        learning = dataclasses.replace(spec, **overrides)
    options = {"backend": args.backend, "seed": args.seed, "hidden": args.hidden,
               "memory_mb": args.memory_mb or DEFAULT_MEMORY_MB, "learning": learning,
               "integrity": not args.no_integrity, "time_limit_s": args.time_limit,
               "budget_s": args.submission_time}
    if args.batch:
        if not args.csv:
            raise ValueError("--csv: required with --batch")
        reports = grade_batch(args.name, args.batch, args.csv, **options)
        for report in reports:
            print(f"{Path(report.submission).stem}: {report.score:g} / {report.max_score:g}")
        print(f"wrote {args.csv}", file=sys.stderr)
        return 0
    report = grade(args.name, args.submission, **options)
    text = format_report(report, args.format)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    else:
        print(text)
    return 0
