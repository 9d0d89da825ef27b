"""Handing out an assignment and packaging its autograder.

``make_assignment("returns", "tf", "hw1")`` writes into ``hw1/``:

* ``returns.py``: the student's copy of ``backends/tf/returns.py``, every graded body a TODO;
* ``README.md``: the statement with the equations, and how to test and submit;
* ``test_returns_public.py``: the public cases, run with ``pytest`` (or ``python`` on it).

``make_autograder("returns", "bundle")`` writes Gradescope's ``setup.sh`` and
``run_autograder`` and the hidden tests' secret (``hidden.json``: the seed of the hidden
cases); zip the folder's contents and upload them.
"""

from __future__ import annotations

import json
import secrets
import stat
from pathlib import Path

from duetrl.core import __version__
from duetrl.core.coursework.extract import student_source
from duetrl.core.coursework.integrity import solution_path
from duetrl.core.coursework.specs import ASSIGNMENTS, BACKEND_NAMES, get_assignment

_FRAMEWORK = {"torch": "PyTorch", "tf": "TensorFlow/Keras 3"}


def list_assignments() -> list[tuple[str, str, str]]:
    """``(name, outline sections, title)`` of every assignment."""
    return [(a.name, a.sections, a.title) for a in ASSIGNMENTS.values()]


def _check_backend(backend: str) -> str:
    if backend not in BACKEND_NAMES:
        raise ValueError(f"backend: expected one of {list(BACKEND_NAMES)}, got {backend!r}")
    return backend


def student_copy(name: str, backend: str, solution: bool = False) -> str:
    """The text of the student's file of assignment ``name`` in ``backend``
    (``solution=True``: the same file with the project's solution in it, for instructors)."""
    assignment = get_assignment(name)
    _check_backend(backend)
    source = solution_path(backend, assignment.module).read_text(encoding="utf-8")
    extras = [(solution_path(backend, module).read_text(encoding="utf-8"), todo)
              for module, todo in assignment.extras]
    header = (f"# duetrl assignment {assignment.name!r} ({_FRAMEWORK[backend]}): "
              f"{assignment.title} (outline {assignment.sections}).\n"
              "# Replace every `raise NotImplementedError(\"TODO ...\")` with your code; keep "
              "the signatures.\n"
              f"# Check your work: pytest test_{assignment.module}_public.py   Then submit "
              f"this file ({assignment.student_file}).")
    # the solution modules' own imports are left out: the harness refuses them, and a graded
    # function imported from one would shadow (or be) the student's answer
    dropped = tuple(f"duetrl.backends.{backend}.{m}" for m in assignment.forbidden_modules)
    return student_source(source, list(assignment.todos[backend]), list(assignment.keep),
                          header, extras, drop_imports=dropped, strip=not solution)


_PUBLIC_TEST = '''"""Public tests of the duetrl assignment {name!r}: pytest {test_name}.

The grader runs these and hidden ones (other inputs, edge cases) on your {file}.
"""

import sys
from pathlib import Path

import pytest

from duetrl.core.coursework.public import check_public_case, public_case_names

HERE = Path(__file__).resolve().parent
NAMES = public_case_names({name!r})


@pytest.mark.parametrize("index", range(len(NAMES)), ids=NAMES)
def test_public(index):
    passed, message = check_public_case({name!r}, {backend!r}, HERE / {file!r}, index)
    assert passed, message


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
'''


def make_assignment(name: str, backend: str, out: str | Path, solution: bool = False) -> list[Path]:
    """Write the student's copy, the statement and the public tests into ``out``.

    :param solution: also write ``solution/<file>``, the filled-in file (for instructors).

    :returns: the files written.
    :raises FileExistsError: when ``out`` already holds the student's file (no overwrite).
    """
    assignment = get_assignment(name)
    _check_backend(backend)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    student = out / assignment.student_file
    if student.exists():
        raise FileExistsError(f"out: {student} exists; choose another folder")
    test_name = f"test_{assignment.module}_public.py"
    student.write_text(student_copy(name, backend), encoding="utf-8")
    readme = (assignment.statement.strip() + "\n\n## Your file\n\n"
              f"`{assignment.student_file}` ({_FRAMEWORK[backend]}): fill in every `TODO`. "
              "You may use the helpers it imports; importing or copying the project's own "
              "solution (`duetrl.backends.*`, `duetrl.core.reference`) is detected and fails.\n\n"
              "## Check, then submit\n\n"
              f"    pytest {test_name}\n"
              f"    duetrl grade {name} --submission {assignment.student_file}\n\n"
              "The grader also runs hidden tests: other random inputs and edge cases, so a "
              "solution that only fits the public cases loses their points. Each test has a "
              "time limit; a crash, an infinite loop or NaN fails that test only.\n")
    (out / "README.md").write_text(readme, encoding="utf-8")
    (out / test_name).write_text(_PUBLIC_TEST.format(
        name=name, backend=backend, file=assignment.student_file, test_name=test_name),
        encoding="utf-8")
    written = [student, out / "README.md", out / test_name]
    if solution:
        (out / "solution").mkdir(exist_ok=True)
        written.append(out / "solution" / assignment.student_file)
        written[-1].write_text(student_copy(name, backend, solution=True), encoding="utf-8")
    return written


_SETUP = """#!/usr/bin/env bash
# Gradescope runs this once, when the autograder image is built.
set -euo pipefail
cd "$(dirname "$0")"
apt-get update -qq && apt-get install -y -qq python3 python3-pip python3-venv > /dev/null || true
python3 -m venv /opt/duetrl
if ls duetrl-*.whl > /dev/null 2>&1; then
    /opt/duetrl/bin/pip install -q duetrl-*.whl   # a wheel built with: pip wheel --no-deps .
else
    /opt/duetrl/bin/pip install -q "duetrl=={version}"
fi
"""

_RUN = """#!/usr/bin/env bash
# Gradescope runs this for every submission. AUTOGRADER_ROOT (default /autograder) and
# DUETRL_PYTHON (default /opt/duetrl/bin/python) can be overridden to try it locally.
set -uo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
PYTHON="${{DUETRL_PYTHON:-/opt/duetrl/bin/python}}"
mkdir -p "$ROOT/results"
"$PYTHON" -m duetrl grade {name} --submission "$ROOT/submission" \\
    --hidden "$ROOT/source/hidden.json" --format gradescope \\
    --out "$ROOT/results/results.json"{backend}
status=$?
if [ ! -s "$ROOT/results/results.json" ]; then
    # the grader itself failed: say so rather than leave Gradescope without a result
    printf '{{"score": 0, "output": "the autograder failed (status %s); tell your instructor"}}' \\
        "$status" > "$ROOT/results/results.json"
fi
exit 0
"""


def make_autograder(name: str, out: str | Path, seed: int | None = None,
                    backend: str | None = None) -> list[Path]:
    """Write Gradescope's autograder for ``name`` into ``out``: ``setup.sh``,
    ``run_autograder`` and ``hidden.json`` (the hidden cases' secret seed).

    :param seed: the hidden seed (default: a fresh random one).
    :param backend: force a backend; by default each submission's own imports decide.
    """
    get_assignment(name)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    setup = out / "setup.sh"
    run = out / "run_autograder"
    hidden = out / "hidden.json"
    setup.write_text(_SETUP.format(version=__version__))
    run.write_text(_RUN.format(name=name, backend=f" --backend {backend}" if backend else ""))
    for path in (setup, run):
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    hidden.write_text(json.dumps({"assignment": name, "seed": int(
        secrets.randbits(31) if seed is None else seed), "duetrl": __version__}, indent=2))
    return [setup, run, hidden]
