"""``make test`` runs ``pytest -n 2 --dist loadgroup``: the tests of one ``xdist_group`` (the Ray
tests) must all run on one worker. Checked on a small suite of its own, run in a child pytest
with two workers and tests/xdist_groups.py's hook (no framework loaded: a few seconds)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("xdist")

SUITE = {
    "conftest.py": "from xdist_groups import pytest_collection_modifyitems  # noqa: F401\n",
    "test_grouped.py": """
import os
import pytest

pytestmark = pytest.mark.xdist_group("ray")


@pytest.mark.parametrize("i", range(6))
def test_grouped(i):
    with open("workers.txt", "a") as f:
        f.write(f"grouped {os.environ['PYTEST_XDIST_WORKER']}\\n")
""",
    "test_free.py": """
import os
import time
import pytest


@pytest.mark.parametrize("i", range(6))
def test_free(i):
    time.sleep(0.05)
    with open("workers.txt", "a") as f:
        f.write(f"free {os.environ['PYTEST_XDIST_WORKER']}\\n")
""",
}


def test_a_group_runs_on_one_worker(tmp_path: Path) -> None:
    for name, text in SUITE.items():
        (tmp_path / name).write_text(text)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-q", "-p",
         "no:cacheprovider", "-c", os.devnull, "--rootdir", str(tmp_path), str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "12 passed" in result.stdout, result.stdout[-2000:]
    lines = [line.split() for line in (tmp_path / "workers.txt").read_text().splitlines()]
    grouped = {worker for kind, worker in lines if kind == "grouped"}
    assert len([1 for kind, _ in lines if kind == "grouped"]) == 6
    assert len(grouped) == 1, f"the group ran on the workers {sorted(grouped)}"
