"""Command-line flags written once: the run flags every command shares, and one ``--flag`` per
field of a settings dataclass.

The run flags (``--out --seed --backend --threads --json --quiet --resume --tensorboard``)
have the same spelling, help text and checks in every command; a command picks the ones it
takes and, where it must, its own default (``add_run_flags(parser, "out", "seed", out="runs")``).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterable

from duetrl.core.backend import BACKENDS

RUN_FLAGS = ("out", "seed", "backend", "threads", "json", "quiet", "resume", "tensorboard")
"""The flags :func:`add_run_flags` knows, in the order ``--help`` lists them."""


def non_negative_int(text: str) -> int:
    """argparse type: an int >= 0 (a seed, a thread count), else a message naming the value."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an int >= 0, got {value}")
    return value


def add_run_flags(
    parser: argparse.ArgumentParser,
    *names: str,
    out: str | None = None,
    out_help: str = "the run folder",
    threads: int = 1,
    backend: str | None = "torch",
    seed: int | None = 0,
    out_required: bool = False,
    backend_required: bool | None = None,
    backend_help: str = "the framework: torch or tf",
    seed_help: str = "seeds weights, data and sampling noise",
    json_help: str = "print the summary as JSON",
) -> None:
    """Add the run flags ``names`` (a subset of :data:`RUN_FLAGS`) to ``parser``.

    :param out: ``--out``'s default (None: the command chooses, e.g. ``runs/<algo>-...``).
    :param out_help: what ``--out`` names, e.g. ``"checkpoint file"``.
    :param threads: ``--threads``' default (0 lets the framework decide).
    :param backend: ``--backend``'s default (None: required, unless ``backend_required`` is
        False: then the command decides, e.g. from the imports of a student's file).
    :param seed: ``--seed``'s default (None: chosen by the command, e.g. at random; say how in
        ``seed_help``).
    :param out_required: ``--out`` must be given.
    :param backend_required: ``--backend`` must be given (default: when ``backend`` is None).
    :param backend_help: what ``--backend`` chooses.
    :param seed_help: what the seed seeds.
    :param json_help: what ``--json`` prints.
    :raises ValueError: for a name that is not a run flag.
    """
    unknown = [name for name in names if name not in RUN_FLAGS]
    if unknown:
        raise ValueError(f"names: expected some of {list(RUN_FLAGS)}, got {unknown}")
    for name in sorted(names, key=RUN_FLAGS.index):
        if name == "out":
            default = f" (default: {out})" if out else ""
            parser.add_argument("--out", default=out, required=out_required, metavar="PATH",
                                help=out_help + default)
        elif name == "seed":
            parser.add_argument("--seed", type=non_negative_int, default=seed, metavar="INT",
                                help=seed_help + (f" (default: {seed})" if seed is not None
                                                  else ""))
        elif name == "backend":
            required = backend is None if backend_required is None else backend_required
            parser.add_argument("--backend", choices=list(BACKENDS), default=backend,
                                required=required,
                                help=backend_help + (f" (default: {backend})" if backend else ""))
        elif name == "threads":
            parser.add_argument("--threads", type=non_negative_int, default=threads, metavar="N",
                                help=f"CPU threads for the framework, 0 = its own choice "
                                     f"(default: {threads})")
        elif name == "json":
            parser.add_argument("--json", action="store_true", help=json_help)
        elif name == "quiet":
            parser.add_argument("--quiet", action="store_true", help="no progress bar")
        elif name == "resume":
            parser.add_argument("--resume", action="store_true",
                                help="continue from the checkpoint in --out")
        elif name == "tensorboard":
            parser.add_argument("--tensorboard", action="store_true",
                                help="also write the logged metrics as TensorBoard scalars "
                                     "into the run folder (the same tags for torch and tf)")


def add_dataclass_flags(
    parser: argparse.ArgumentParser, fields: Iterable[dataclasses.Field], title: str
) -> None:
    """Add ``--field-name`` for each field, in an argument group called ``title``.

    A boolean field gets ``--name`` / ``--no-name``; any other field parses as the type of its
    default.
    """
    group = parser.add_argument_group(title)
    for field in fields:
        flag = "--" + field.name.replace("_", "-")
        help_text = f"{field.metadata.get('help', '')} (default: {field.default})"
        if isinstance(field.default, bool):
            group.add_argument(flag, dest=field.name, action=argparse.BooleanOptionalAction,
                               default=None, help=help_text)
        else:
            group.add_argument(flag, dest=field.name, type=type(field.default), default=None,
                               help=help_text)


def given_flags(args: argparse.Namespace, fields: Iterable[dataclasses.Field]) -> dict:
    """``{field: value}`` of the :func:`add_dataclass_flags` flags the user gave (None = not
    given, so the dataclass default applies)."""
    return {f.name: getattr(args, f.name) for f in fields
            if getattr(args, f.name, None) is not None}
