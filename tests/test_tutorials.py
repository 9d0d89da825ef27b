"""Every tutorial runs top to bottom in quick mode, and converts into a notebook.

Each tutorial runs in a process of its own, forked from one that has already imported both
frameworks (tests/prewarmed.py): ~9 s of imports once per test process, not once per tutorial.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest
from prewarmed import run_python

TUTORIALS = sorted((Path(__file__).parent.parent / "tutorials").glob("*.py"))


def _has_cjk_font() -> bool:
    from duetrl.core.figure_language import cjk_font

    try:
        cjk_font()
    except RuntimeError:
        return False
    return True


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs_in_quick_mode(path: Path, tmp_path: Path) -> None:
    env = {**os.environ, "DUETRL_QUICK": "1", "DUETRL_FIGURES": str(tmp_path), "MPLBACKEND": "Agg"}
    if _has_cjk_font():  # make browser installs one; without it the twins would draw boxes
        # every figure's Chinese twin is drawn too, so a figure string with no entry in
        # docs/locale/zh_CN/LC_MESSAGES/figures.po fails here, not in the book build
        env["DUETRL_FIGURE_LANGUAGES"] = "zh_CN"
    result = run_python([str(path)], cwd=tmp_path, env=env, timeout=600)
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


# ---- the exercises: checked, and one of them in the student's framework --------------------
# Static (the file is parsed, not run): every tutorial ends with exercises whose every assert
# is a checker's verdict (no answer written into an assert), and offers at least one exercise
# in PyTorch *and* in TensorFlow, both handed to the same checker, so a student picks either.


def exercise_statements(path: Path) -> list[ast.stmt]:
    """The top-level statements after the tutorial's ``## Exercises`` heading."""
    source = path.read_text()
    lines = source.splitlines()
    heading = next((n for n, line in enumerate(lines, 1) if line.strip() == "# ## Exercises"),
                   None)
    assert heading is not None, f"{path.name} has no '## Exercises' section"
    return [node for node in ast.parse(source).body if node.lineno > heading]


def checker_calls(node: ast.AST) -> list[ast.Call]:
    """The checker calls in an expression (through ``not`` and ``and``): ``check_exercise_N(
    answer)``, or ``compare(N, answer, reference, ...)`` of ``duetrl.core.exercises``."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return checker_calls(node.operand)
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
        calls = [checker_calls(value) for value in node.values]
        return [c for group in calls for c in group] if all(calls) else []
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and (node.func.id.startswith("check_exercise_") or node.func.id == "compare")):
        return [node]
    return []


def checked_answer(call: ast.Call) -> tuple[str, ast.expr | None]:
    """``(which exercise, the answer handed to the checker)`` of a checker call."""
    if call.func.id == "compare":  # compare(number, answer, reference, cases, what, ...)
        number = call.args[0] if call.args else None
        key = f"exercise {ast.unparse(number)}" if number is not None else "compare"
        return key, call.args[1] if len(call.args) > 1 else None
    return call.func.id, call.args[0] if call.args else None


def frameworks_used(function: ast.AST) -> set[str]:
    """``{"torch", "tf"}``, as far as the function's body calls into either framework."""
    names = {n.value.id for n in ast.walk(function)
             if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)}
    return {"torch" if "torch" in names else "", "tf" if names & {"tf", "keras"} else ""} - {""}


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_every_assert_of_the_exercises_is_a_checkers_verdict(path: Path) -> None:
    statements = exercise_statements(path)
    source = path.read_text()
    assert re.search(r"^from duetrl\.core(\.[\w.]+)?\.(exercises|exercise_sets\.\w+) import",
                     source, re.MULTILINE), f"{path.name}: its checks are not duetrl's checkers"
    asserts = [node for s in statements for node in ast.walk(s) if isinstance(node, ast.Assert)]
    bare = [ast.unparse(a)[:70] for a in asserts if not checker_calls(a.test)]
    assert not bare, f"{path.name}: asserts that are not a checker's verdict: {bare}"
    assert any(checker_calls(a.test) for a in asserts), f"{path.name}: no checked exercise"


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_one_exercise_at_least_is_offered_in_torch_and_in_tf(path: Path) -> None:
    statements = exercise_statements(path)
    functions = {s.name: frameworks_used(s) for s in statements if isinstance(s, ast.FunctionDef)}
    checked: dict[str, set[str]] = {}  # exercise -> the frameworks of the answers it checks
    for node in (n for s in statements for n in ast.walk(s) if isinstance(n, ast.Assert)):
        if isinstance(node.test, ast.UnaryOp):
            continue  # a wrong answer shown failing is not an offered answer
        for call in checker_calls(node.test):
            exercise, answer = checked_answer(call)
            if isinstance(answer, ast.Name) and answer.id in functions:
                checked.setdefault(exercise, set()).update(functions[answer.id])
            elif isinstance(answer, ast.Lambda):
                checked.setdefault(exercise, set()).update(frameworks_used(answer))
    both = [name for name, used in checked.items() if used >= {"torch", "tf"}]
    assert both, (f"{path.name}: no exercise checks an answer written in torch and one in tf "
                  f"(checked answers by framework: {checked})")
