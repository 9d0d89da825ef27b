"""The public tests a student runs at home, in their own process (no sandbox: it is their code).

The generated ``test_<module>_public.py`` calls :func:`check_public_case` for each public case;
the grader runs the same cases, and hidden ones, in a sandboxed child.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from duetrl.core.coursework.cases import build_cases
from duetrl.core.coursework.compare import case_verdict
from duetrl.core.coursework.specs import get_assignment


def public_case_names(name: str) -> list[str]:
    """The names of the public cases of assignment ``name``."""
    return [case.name for case in build_cases(get_assignment(name), 0, public_only=True)]


def check_public_case(name: str, backend: str, student_file: str | Path,
                      index: int) -> tuple[bool, str]:
    """Run public case ``index`` of ``name`` on the student's file: ``(passed, message)``."""
    from duetrl.core.backend import load_backend
    from duetrl.core.coursework.harness import describe_error, run_call

    assignment = get_assignment(name)
    case = build_cases(assignment, 0, public_only=True)[index]
    module_backend = load_backend(backend)
    module_name = f"student_{assignment.module}"
    module = sys.modules.get(module_name)
    if module is None or getattr(module, "__file__", None) != str(student_file):
        spec = importlib.util.spec_from_file_location(module_name, str(student_file))
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    try:
        outputs = run_call(case.call, case.arrays, module, module_backend)
    except Exception as error:  # noqa: BLE001  (say what went wrong in the student's terms)
        return False, describe_error(error, str(Path(student_file)))
    passed, message = case_verdict(case, "ok", "", outputs)
    return passed, message
