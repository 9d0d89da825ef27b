"""Helpers the chapter tutorials share: quick mode, where figures go, and the claims of the
text checked against the full run (``claim``).

Tutorials are jupytext percent-format ``.py`` files in ``tutorials/``. The test suite runs each
one with ``DUETRL_QUICK=1`` (small sizes, few steps); ``duetrl notebooks`` turns them into
``.ipynb`` files.
"""

from __future__ import annotations

import math
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


class ClaimError(AssertionError):
    """A figure the tutorial's text quotes from its full run, not reproduced by the run."""


def _number(argument: str, value: object) -> float:
    """``value`` as a finite float, or a one-line error naming ``argument``."""
    if isinstance(value, (bool, str, bytes)) or not hasattr(value, "__float__"):
        raise TypeError(f"{argument}: expected a real number, got {type(value).__name__} "
                        f"{value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{argument}: expected a finite number, got {number}")
    return number


def claim(name: str, value: float, expected: float, tolerance: float) -> None:
    """Check a figure the text quotes from the full run: ``|value - expected| <= tolerance``.

    The published book is the full build (``make book``): there a claim that does not hold
    stops the build with the figure (``ClaimError``), instead of a page whose text says one
    number and whose output shows another. In quick mode (``DUETRL_QUICK=1``: the test suite,
    the quick build) the run is too short for the text's figures: nothing is checked and
    nothing printed (the page's quick-build note already says its numbers are not the text's).

    :param name: what the text claims, as a reader would look for it (``"RLOO E[r], 300
        updates"``).
    :param value: what this run measured.
    :param expected: the figure the text quotes.
    :param tolerance: the largest ``|value - expected|`` the text's wording allows (0.0005
        for a figure quoted to three decimals; the margin the text states, when it states one).

    Example::

        claim("RLOO E[r] after 300 updates", learned["mean_reward"], 0.697, 0.03)
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"name: expected the claim's words, got {name!r}")
    value = _number("value", value)
    expected = _number("expected", expected)
    tolerance = _number("tolerance", tolerance)
    if tolerance < 0:
        raise ValueError(f"tolerance: expected a number >= 0, got {tolerance}")
    if quick_mode():
        return
    # 1e-12: float rounding exactly at the edge (0.6975 - 0.697 is 0.0005000000000000004)
    if abs(value - expected) > tolerance + 1e-12 * max(1.0, abs(expected)):
        raise ClaimError(f"the text claims {name} = {expected:g} (within {tolerance:g}); this "
                         f"run measured {value:g}: rerun and correct the text, or the code")


# --- Results a tutorial reads instead of training (the full build's budget) -------------------
#
# A few tutorials quote runs that take hours (ch09_3's sweep: 30 PPO runs). The published book
# cannot train them at build time, so in full mode such a tutorial reads the per-run summaries
# that a named command wrote to ``tutorials/results/`` (``tools/store_sweep_runs.py``), and
# computes its tables, figures and claims from them; ``DUETRL_RETRAIN=1`` trains instead.

RETRAIN_VARIABLE = "DUETRL_RETRAIN"
"""Set to ``1`` to make a tutorial train what it would otherwise read from ``results_dir()``."""

SWEEP_RUNS_FORMAT = "duetrl-sweep-runs/1"
"""The ``format`` field of a stored sweep's JSON (``tools/store_sweep_runs.py`` writes it)."""


def retrain() -> bool:
    """True when a tutorial should train what it would otherwise read (``DUETRL_RETRAIN=1``)."""
    return os.environ.get(RETRAIN_VARIABLE, "0") == "1"


def results_dir() -> Path:
    """The folder of stored results: ``DUETRL_RESULTS``, else the repository's
    ``tutorials/results`` (next to ``core/`` in a checkout)."""
    if os.environ.get("DUETRL_RESULTS"):
        return Path(os.environ["DUETRL_RESULTS"])
    return Path(__file__).resolve().parents[1] / "tutorials" / "results"


def stored_path(path: str | Path, made_by: str = "") -> Path:
    """``path``, a stored result the full build reads instead of training (a JSON file, a
    checkpoint), if it exists.

    :raises FileNotFoundError: no such file; the message names ``made_by``, the command that
        makes it, and ``DUETRL_RETRAIN=1``, which trains here instead.
    """
    path = Path(path)
    if not path.is_file():
        how = f" (made by: {made_by})" if made_by else ""
        raise FileNotFoundError(f"{path}: no stored results{how}; or set "
                                f"{RETRAIN_VARIABLE}=1 to train here instead")
    return path


def _read_stored(path: Path, expected_format: str, made_by: str, writer: str) -> dict:
    """A stored-results JSON file, parsed, with its ``format`` checked (one-line errors)."""
    import json

    stored_path(path, made_by)
    try:
        stored = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:  # a cut or overwritten file
        raise ValueError(f"{path}: not JSON ({error}); write it again with {writer}") from None
    if not isinstance(stored, dict) or stored.get("format") != expected_format:
        found = stored.get("format") if isinstance(stored, dict) else type(stored).__name__
        raise ValueError(f"{path}: expected format {expected_format!r}, got {found!r}")
    return stored


def read_sweep_runs(path: str | Path, made_by: str = "") -> dict:
    """The stored summaries of a sweep's runs (``tools/store_sweep_runs.py``'s JSON), checked.

    :param path: the JSON file.
    :param made_by: the command that produces it, named in the error when the file is missing.
    :returns: the file's dict: ``format``, ``source`` and ``runs`` (one dict per finished run:
        ``run_id``, ``seed``, ``backend``, ``settings``, the summary's numbers, ``curve``).
    :raises FileNotFoundError: no such file (the message says how to make it, or to retrain).
    :raises ValueError: not this format, or no runs.
    """
    path = Path(path)
    stored = _read_stored(path, SWEEP_RUNS_FORMAT, made_by, "tools/store_sweep_runs.py")
    runs = stored.get("runs")
    if not isinstance(runs, list) or not runs:
        raise ValueError(f"{path}: expected a non-empty list 'runs'")
    for i, run in enumerate(runs):
        if not isinstance(run, dict):
            raise ValueError(f"{path}: runs[{i}] should be an object, got {type(run).__name__}")
        missing = [key for key in ("run_id", "seed", "settings") if key not in run]
        if missing:
            raise ValueError(f"{path}: runs[{i}] has no {', '.join(missing)}")
    return stored


def write_stored_results(path: str | Path, results_format: str,
                         results: dict[str, list[float]]) -> Path:
    """Store a tutorial's figures that the full build reads instead of training them again:
    ``{"format": results_format, "results": {key: [numbers]}}``, written atomically (an
    interrupted write leaves the old file). Returns the path."""
    import json

    from duetrl.core.checkpoint import atomic_write

    rows = _checked_results(Path(path), results)
    text = json.dumps({"format": results_format, "results": rows}, indent=1) + "\n"
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def read_stored_results(path: str | Path, results_format: str,
                        made_by: str = "") -> dict[str, list[float]]:
    """The ``results`` of a file :func:`write_stored_results` wrote, checked: its format, and
    a non-empty dict of lists of finite numbers.

    :raises FileNotFoundError: no such file (the message names ``made_by``, or to retrain).
    :raises ValueError: not JSON, another format, or results that are not lists of numbers.
    """
    path = Path(path)
    stored = _read_stored(path, results_format, made_by, made_by or "the tutorial")
    return _checked_results(path, stored.get("results"))


def _checked_results(path: Path, results: object) -> dict[str, list[float]]:
    if not isinstance(results, dict) or not results:
        raise ValueError(f"{path}: expected a non-empty object 'results', got {results!r:.60}")
    for key, row in results.items():
        if not isinstance(row, list) or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
                for x in row):
            raise ValueError(f"{path}: results[{key!r}] should be a list of finite numbers, "
                             f"got {row!r:.60}")
    return {str(key): [float(x) for x in row] for key, row in results.items()}


def sweep_runs_by(stored: dict, setting: str) -> dict[str, list[dict]]:
    """The stored runs grouped by one setting's value (``"policy"``), each group sorted by
    seed, groups in order of first appearance."""
    groups: dict[str, list[dict]] = {}
    for run in stored["runs"]:
        if setting not in run["settings"]:
            raise ValueError(f"run {run['run_id']!r} has no setting {setting!r}: it has "
                             f"{sorted(run['settings'])}")
        groups.setdefault(str(run["settings"][setting]), []).append(run)
    return {key: sorted(found, key=lambda run: int(run["seed"])) for key, found in groups.items()}
