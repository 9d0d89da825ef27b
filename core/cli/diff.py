"""``duetrl diff NAME``: the PyTorch and TensorFlow versions of a backend file, side by side.

Rows that differ are marked (``|`` changed, ``<`` only in torch, ``>`` only in tf), and the
share of differing lines is printed at the end. ``duetrl diff --all`` prints the table of
every pair; it is how the mirror is kept honest (a test holds each pair under the limit).
"""

from __future__ import annotations

import argparse
import json
import shutil

from duetrl.core.cli.flags import add_run_flags
from duetrl.core.mirror import MIRROR_EXCEPTIONS, MIRROR_LIMIT, compare_pair, mirror_table


def register(commands: argparse._SubParsersAction, compare: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "diff", help="show a torch backend file and its tf twin side by side, differences marked"
    )
    parser.add_argument("name", nargs="?", help="backend file, e.g. attention or generation")
    parser.add_argument("--all", action="store_true", help="table of every pair instead")
    parser.add_argument("--only-differences", action="store_true",
                        help="print only the rows that differ")
    parser.add_argument("--width", type=int, default=0,
                        help="total width in characters (default: the terminal's)")
    add_run_flags(parser, "json", json_help="with --all: the table as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.all or args.name is None:
        pairs = mirror_table()
        if args.json:
            print(json.dumps([{"name": p.name, "torch_lines": p.torch_lines,
                               "tf_lines": p.tf_lines, "only_torch": p.only_torch,
                               "only_tf": p.only_tf, "differing": round(p.differing, 4)}
                              for p in pairs], indent=2))
            return 0
        header = ("file", "torch", "tf", "only torch", "only tf", "differing")
        width = max(len(p.name) for p in pairs) + 1
        print("{:<{w}} {:>6} {:>6} {:>11} {:>8} {:>10}".format(*header, w=width))
        for p in pairs:
            limit = MIRROR_EXCEPTIONS.get(p.name, MIRROR_LIMIT)
            flag = "" if p.differing < limit else f"  over {limit:.0%}"
            print(f"{p.name:<{width}} {p.torch_lines:>6} {p.tf_lines:>6} {p.only_torch:>11} "
                  f"{p.only_tf:>8} {p.differing:>10.0%}{flag}")
        total_long = sum(max(p.torch_lines, p.tf_lines) for p in pairs)
        total_diff = sum(max(p.only_torch, p.only_tf) for p in pairs)
        print(f"{'all':<{width}} {'':>6} {'':>6} {'':>11} {'':>8} {total_diff / total_long:>10.0%}")
        return 0
    from duetrl.core.mirror import side_by_side

    width = args.width or max(120, shutil.get_terminal_size((160, 40)).columns)
    print(side_by_side(compare_pair(args.name), width=width,
                       only_differences=args.only_differences))
    return 0
