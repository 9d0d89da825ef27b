"""Command-line flags from a settings dataclass: one ``--flag`` per field, its help from the
field's metadata, ``None`` when not given (so the dataclass default applies)."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterable


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
