"""Settings dataclasses, written one way: each field carries its default and its help text.

    @dataclass
    class PPOSettings:
        learning_rate: float = setting(2.5e-4, "Adam step size")

The command line turns every field into a flag whose ``--help`` is this text
(``duetrl.core.cli.flags.add_dataclass_flags``); the sweep file and the docs read the same.
"""

from __future__ import annotations

import dataclasses
from typing import Any


def setting(default: Any, help: str) -> Any:  # noqa: A002  (the argparse word, on purpose)
    """A dataclass field with ``default`` and the one-line ``help`` the CLI shows for it."""
    return dataclasses.field(default=default, metadata={"help": help})
