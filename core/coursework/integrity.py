"""Reading a submission and deciding whether it may be graded at all.

The grader's first steps: find the student's ``.py`` file, tell its backend from its imports,
and refuse it when it imports or copies the solution, or reaches for files, programs or import
tricks. A scan of the syntax tree is only a friendly first message (a name can be computed);
the guarantee lives in the child process (:mod:`duetrl.core.coursework.harness`).
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

from duetrl.core.coursework.extract import copied_from_solution, function_body, solution_body
from duetrl.core.coursework.specs import Assignment

_DANGEROUS_MODULES = ("importlib", "ctypes", "subprocess", "socket", "multiprocessing", "shutil",
                      "pathlib", "glob", "pickle", "gc", "inspect", "sys", "os", "io", "builtins",
                      "marshal", "threading", "signal", "resource", "requests", "urllib")
_DANGEROUS_CALLS = ("open", "exec", "eval", "compile", "__import__", "globals", "vars",
                    "breakpoint", "input")
_DANGEROUS_ATTRIBUTES = ("__subclasses__", "__globals__", "__builtins__", "__code__",
                         "__loader__", "f_back", "f_globals", "modules")


def find_submission_file(assignment: Assignment, submission: str | Path) -> Path:
    """The student's ``.py`` file: ``submission`` itself, or the assignment's file inside a
    folder (Gradescope's ``/autograder/submission``), or the folder's only ``.py`` file."""
    path = Path(submission)
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(f"submission: no file or folder {str(path)!r}")
    named = sorted(path.rglob(assignment.student_file))
    named = [p for p in named if not p.name.startswith("test_")]
    if named:
        return named[0]
    candidates = [p for p in sorted(path.rglob("*.py")) if not p.name.startswith("test_")]
    if len(candidates) == 1:
        return candidates[0]
    raise FileNotFoundError(f"submission: no {assignment.student_file} in {str(path)!r}")


def detect_backend(source: str) -> str:
    """``"torch"`` or ``"tf"`` from the submission's imports.

    :raises ValueError: when it imports both frameworks or neither (pass ``--backend``).
    """
    found = set()
    for node in ast.walk(ast.parse(source)):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "torch" or parts[:3] == ["duetrl", "backends", "torch"]:
                found.add("torch")
            if parts[0] in ("tensorflow", "keras") or parts[:3] == ["duetrl", "backends", "tf"]:
                found.add("tf")
    if len(found) != 1:
        what = "both torch and tensorflow" if found else "neither torch nor tensorflow"
        raise ValueError(f"backend: the submission imports {what}; pass --backend torch|tf")
    return found.pop()


def solution_path(backend: str, module: str) -> Path:
    """The project's own solution file ``duetrl/backends/<backend>/<module>.py``."""
    spec = importlib.util.find_spec(f"duetrl.backends.{backend}")
    return Path(list(spec.submodule_search_locations)[0]) / f"{module}.py"


def integrity_problems(source: str, assignment: Assignment, backend: str) -> list[str]:
    """Why a submission may not be graded: imports of the solution or the oracle, copies of
    the solution's bodies, file/process/import tricks. Empty when it is fine."""
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        return [f"SyntaxError: {error.msg} (line {error.lineno} of your file)"]
    problems = []
    solution_modules = {f"duetrl.backends.{backend}.{m}" for m in assignment.forbidden_modules}
    forbidden_prefixes = sorted(solution_modules) + ["duetrl.core.reference",
                                                     "duetrl.core.coursework"]
    graded = set(assignment.todo_names(backend))
    forbidden_names = set(assignment.forbidden_names) | {n.split(".")[0] for n in graded}
    duetrl_aliases = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                       else [node.module or ""])
            for module in modules:
                if any(module == p or module.startswith(p + ".") for p in forbidden_prefixes):
                    problems.append(f"line {node.lineno}: imports {module}, the solution")
                if module.split(".")[0] in _DANGEROUS_MODULES:
                    problems.append(f"line {node.lineno}: imports {module}, which this "
                                    "assignment does not need")
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    if any(full == p for p in forbidden_prefixes):
                        problems.append(f"line {node.lineno}: imports {full}, the solution")
                    elif alias.name in forbidden_names and (
                            (node.module or "").startswith("duetrl")
                            or alias.name in assignment.forbidden_names):
                        problems.append(f"line {node.lineno}: imports {alias.name} from "
                                        f"{node.module}: write it yourself")
                    if (node.module or "").startswith("duetrl"):
                        duetrl_aliases.add(alias.asname or alias.name)
            else:
                for alias in node.names:
                    if alias.name.startswith("duetrl"):
                        duetrl_aliases.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id in _DANGEROUS_CALLS:
            problems.append(f"line {node.lineno}: calls {node.func.id}(), which this assignment "
                            "does not need")
        elif isinstance(node, ast.Attribute):
            if node.attr in _DANGEROUS_ATTRIBUTES:
                problems.append(f"line {node.lineno}: uses .{node.attr}")
            elif node.attr in assignment.forbidden_names:
                problems.append(f"line {node.lineno}: uses .{node.attr}, a ready-made version "
                                "of what you must write")
            elif node.attr in forbidden_names and isinstance(node.value, ast.Name | ast.Attribute) \
                    and _root_name(node.value) in duetrl_aliases:
                problems.append(f"line {node.lineno}: uses the project's {node.attr}: write it "
                                "yourself")
    solution_source = solution_path(backend, assignment.module).read_text(encoding="utf-8")
    pairs = [(t.name, t.rename or t.name, solution_source) for t in assignment.todos[backend]]
    for module, todo in assignment.extras:
        pairs.append((todo.name, todo.rename or todo.name,
                      solution_path(backend, module).read_text(encoding="utf-8")))
    for solution_name, student_name, text in pairs:
        body = function_body(source, student_name)
        if body is None:
            continue
        why = copied_from_solution(body, solution_body(text, solution_name))
        if why:
            problems.append(f"{student_name} copies the project's solution: {why}")
    return list(dict.fromkeys(problems))


def _root_name(node: ast.expr) -> str:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else ""
