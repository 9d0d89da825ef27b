"""``make test`` runs ``pytest -n 2 --dist loadgroup``: the tests of one ``xdist_group`` (the Ray
tests) must all run on one worker, and so must the tests of a module with a module-scoped
fixture (built once, not once per worker). Checked on a small suite of its own, run in a child pytest
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
    "test_shared.py": """
import os
import pytest


@pytest.fixture(scope="module")
def warm_up():
    with open("workers.txt", "a") as f:
        f.write(f"warm-up {os.environ['PYTEST_XDIST_WORKER']}\\n")
    return 1


@pytest.mark.parametrize("i", range(6))
def test_shared(i, warm_up):
    with open("workers.txt", "a") as f:
        f.write(f"shared {os.environ['PYTEST_XDIST_WORKER']}\\n")
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
    assert "18 passed" in result.stdout, result.stdout[-2000:]
    lines = [line.split() for line in (tmp_path / "workers.txt").read_text().splitlines()]
    for kind in ("grouped", "shared"):
        workers = [worker for what, worker in lines if what == kind]
        assert len(workers) == 6 and len(set(workers)) == 1, f"{kind} ran on {workers}"
    # the module fixture of test_shared.py was built once, not once per worker
    assert [what for what, _ in lines].count("warm-up") == 1, lines
