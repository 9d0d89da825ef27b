"""Helpers the chapter tutorials share: quick mode and where figures go.

Tutorials are jupytext percent-format ``.py`` files in ``tutorials/``. The test suite runs each
one with ``DUETRL_QUICK=1`` (small sizes, few steps); ``duetrl notebooks`` turns them into
``.ipynb`` files.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def quick_mode() -> bool:
    """True when the tutorial should run in seconds (the test suite sets ``DUETRL_QUICK=1``)."""
    return os.environ.get("DUETRL_QUICK", "0") == "1"


def figure_dir() -> Path:
    """The folder tutorials save figures to (``DUETRL_FIGURES`` or ``runs/figures``)."""
    path = Path(os.environ.get("DUETRL_FIGURES", "runs/figures"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def in_notebook_kernel() -> bool:
    """True inside a Jupyter kernel (a notebook, or the book's build executing a tutorial)."""
    ipython = sys.modules.get("IPython")  # never imported here: only look if already loaded
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, "kernel", None) is not None


def show_saved_figure(path: str | Path) -> None:
    """Show the saved PNG ``path`` as the cell's output when running in a notebook kernel.

    Figures are drawn on matplotlib's file-only Agg backend, so a notebook (and the book, which
    runs each tutorial as a notebook) would otherwise show nothing: displaying the file itself
    puts exactly the saved figure inline. Outside a kernel this does nothing.
    """
    if in_notebook_kernel():
        from IPython.display import Image, display

        display(Image(filename=str(path)))
