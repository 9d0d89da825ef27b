"""Helpers the chapter tutorials share: quick mode and where figures go.

Tutorials are jupytext percent-format ``.py`` files in ``tutorials/``. The test suite runs each
one with ``DUETRL_QUICK=1`` (small sizes, few steps); ``duetrl notebooks`` turns them into
``.ipynb`` files.
"""

from __future__ import annotations

import os
from pathlib import Path


def quick_mode() -> bool:
    """True when the tutorial should run in seconds (the test suite sets ``DUETRL_QUICK=1``)."""
    return os.environ.get("DUETRL_QUICK", "0") == "1"


def figure_dir() -> Path:
    """The folder tutorials save figures to (``DUETRL_FIGURES`` or ``runs/figures``)."""
    path = Path(os.environ.get("DUETRL_FIGURES", "runs/figures"))
    path.mkdir(parents=True, exist_ok=True)
    return path
