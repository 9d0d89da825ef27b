"""Every tutorial runs top to bottom in quick mode, and converts into a notebook."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TUTORIALS = sorted((Path(__file__).parent.parent / "tutorials").glob("*.py"))


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs_in_quick_mode(path: Path, tmp_path: Path) -> None:
    env = {**os.environ, "DUETRL_QUICK": "1", "DUETRL_FIGURES": str(tmp_path), "MPLBACKEND": "Agg"}
    result = subprocess.run(
        [sys.executable, str(path)], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=600,
    )
    output = f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert result.returncode == 0, f"{path.name} failed:\n{output}"
    assert list(tmp_path.glob("*.png")), f"{path.name} saved no figure"


def test_tutorials_convert_to_notebooks(tmp_path: Path) -> None:
    import nbformat

    from duetrl.core.cli.notebooks import convert_tutorials

    written = convert_tutorials(Path(__file__).parent.parent / "tutorials", tmp_path)
    assert len(written) == len(TUTORIALS)
    for path in written:
        notebook = nbformat.read(path, as_version=4)
        assert any(cell.cell_type == "markdown" for cell in notebook.cells)
        assert any(cell.cell_type == "code" for cell in notebook.cells)
