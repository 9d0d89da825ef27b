"""``duetrl notebooks``: turn the jupytext tutorials into Jupyter notebooks."""

from __future__ import annotations

import argparse
from pathlib import Path

from duetrl.core.cli.flags import add_run_flags


def register(commands: argparse._SubParsersAction, compare: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("notebooks", help="convert tutorials/*.py into .ipynb notebooks")
    parser.add_argument("--tutorials", default="tutorials", help="folder of jupytext .py files")
    add_run_flags(parser, "out", out="build/notebooks", out_help="folder for the .ipynb files")
    parser.set_defaults(run=run)


def convert_tutorials(tutorials: str | Path, out: str | Path) -> list[Path]:
    """Write one notebook per ``tutorials/*.py`` file into ``out``; returns the paths."""
    import jupytext

    sources = sorted(Path(tutorials).glob("*.py"))
    if not sources:
        raise FileNotFoundError(f"tutorials: no .py files in {str(tutorials)!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sources:
        notebook = jupytext.read(source, fmt="py:percent")
        target = out / f"{source.stem}.ipynb"
        jupytext.write(notebook, target)
        written.append(target)
    return written


def run(args: argparse.Namespace) -> int:
    for path in convert_tutorials(args.tutorials, args.out):
        print(f"wrote {path}")
    return 0
