"""Student copies from marked solutions, and the copy detector that guards them.

The reference solution of every assignment is the project's own code (``backends/<name>/*.py``).
A student's copy keeps a module's imports, its helper definitions and the signature and
docstring of each function to write, and replaces that function's body with a ``TODO``:

* the whole body after the docstring, or
* only the lines between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` when the body has them
  (so set-up lines such as argument checks stay in the student's copy).

Nothing is copied by hand, so the student's copy and the solution never drift.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

BEGIN_MARKER = "# BEGIN SOLUTION"
END_MARKER = "# END SOLUTION"


@dataclass(frozen=True)
class Todo:
    """One definition to strip: ``name`` (``"f"`` or ``"Class.method"``), renamed to ``rename``."""

    name: str
    hint: str = ""
    rename: str | None = None


def _find(tree: ast.Module, name: str) -> ast.FunctionDef | ast.ClassDef:
    """The top-level definition ``name``, or the method ``Class.method``."""
    head, _, method = name.partition(".")
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name == head:
            if not method:
                return node
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == method:
                    return item
    raise KeyError(f"name: no definition {name!r} in the solution module")


def _body_start(node: ast.FunctionDef) -> int:
    """Index (0-based line) where the body starts, after the docstring if there is one."""
    first = node.body[0]
    if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)):
        if len(node.body) == 1:
            return first.end_lineno  # a docstring only
        return node.body[1].lineno - 1
    return first.lineno - 1


def _body_span(lines: list[str], node: ast.FunctionDef) -> tuple[int, int]:
    """``(start, end)`` line indices of the body after the docstring, widened to take in a
    ``# BEGIN SOLUTION`` line just before the first statement and an ``# END SOLUTION`` line
    just after the last (comments are no statements: the syntax tree leaves them out)."""
    start, end = _body_start(node), node.end_lineno
    docstring_end = start
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and \
            isinstance(first.value.value, str) and len(node.body) > 1:
        docstring_end = first.end_lineno
    for i in range(docstring_end, start):
        if lines[i].strip() == BEGIN_MARKER:
            start = i
            break
    i = end
    while i < len(lines) and lines[i].strip().startswith("#") and \
            len(lines[i]) - len(lines[i].lstrip()) > node.col_offset:
        i += 1
        if lines[i - 1].strip() == END_MARKER:
            end = i
            break
    return start, end


def solution_body(source: str, name: str) -> str:
    """The solution lines of ``name`` (the marked region or the body after the docstring)."""
    lines = source.splitlines()
    node = _find(ast.parse(source), name)
    if not isinstance(node, ast.FunctionDef):
        raise ValueError(f"name: {name!r} is a class; name one of its methods")
    start, end = _body_span(lines, node)
    body = lines[start:end]
    marked = [i for i, line in enumerate(body) if line.strip() in (BEGIN_MARKER, END_MARKER)]
    if len(marked) >= 2:
        return "\n".join(body[marked[0] + 1:marked[1]])
    return "\n".join(body)


def _todo_lines(indent: str, todo: Todo, name: str) -> list[str]:
    import textwrap

    wrapped = textwrap.wrap(todo.hint or "write this", 90 - len(indent))
    hint = [f"{indent}# {'TODO: ' if i == 0 else '      '}{line}" for i, line in enumerate(wrapped)]
    return hint + [f'{indent}raise NotImplementedError("TODO: {name}")']


def strip_function(lines: list[str], node: ast.FunctionDef, todo: Todo, name: str,
                   strip: bool = True) -> list[str]:
    """``lines[node]`` with its solution replaced by a TODO that raises NotImplementedError
    (``strip=False``: the solution kept, the markers dropped, the function renamed)."""
    start, end = _body_span(lines, node)
    first = node.lineno - 1
    if node.decorator_list:
        first = node.decorator_list[0].lineno - 1
    body = lines[start:end]
    if not strip:
        body = [line for line in body if line.strip() not in (BEGIN_MARKER, END_MARKER)]
        todo = Todo(todo.name, todo.hint, todo.rename)
        header = lines[first:start]
        if todo.rename:
            header = [re.sub(rf"\bdef {re.escape(node.name)}\b", f"def {todo.rename}", line,
                             count=1) for line in header]
        return header + body
    marked = [i for i, line in enumerate(body) if line.strip() in (BEGIN_MARKER, END_MARKER)]
    if len(marked) >= 2:  # only the marked region is the solution
        indent = re.match(r"\s*", body[marked[0]]).group(0)
        new_body = body[:marked[0]] + _todo_lines(indent, todo, name) + body[marked[1] + 1:]
    else:
        indent = " " * (node.col_offset + 4)
        new_body = _todo_lines(indent, todo, name)
    header = lines[first:start]
    if todo.rename:
        header = [re.sub(rf"\bdef {re.escape(node.name)}\b", f"def {todo.rename}", line, count=1)
                  for line in header]
    return header + new_body


def student_source(
    source: str, todos: list[Todo], keep: list[str], header: str,
    extras: list[tuple[str, Todo]] = (), drop_imports: tuple[str, ...] = (), strip: bool = True,
) -> str:
    """The student's copy of one solution module.

    :param source: the solution module's text.
    :param todos: the definitions whose solution is stripped (functions or ``Class.method``).
    :param keep: top-level definitions copied verbatim (helpers the student may use).
    :param header: a comment block put first (how to run the public tests, what to fill in).
    :param extras: ``(other module source, Todo)`` pairs: functions of other solution modules
        appended (renamed by ``Todo.rename``) as more TODOs.
    :param drop_imports: module prefixes whose import lines are left out of the copy.
    :param strip: False gives the instructor's solution file, of the same shape.
    :returns: Python source with every solution replaced by ``raise NotImplementedError``.
    """
    tree = ast.parse(source)
    lines = source.splitlines()
    import_ends: dict[str, int] = {"": 0}  # after the module's last import (of each package)
    wanted_classes = {t.name.split(".")[0] for t in todos if "." in t.name}
    by_name = {t.name: t for t in todos}
    out = [header.rstrip(), ""]
    previous_end = 0
    for node in tree.body:
        first = (node.decorator_list[0].lineno if getattr(node, "decorator_list", None)
                 else node.lineno) - 1
        text = lines[first:node.end_lineno]
        if not isinstance(node, ast.FunctionDef | ast.ClassDef):
            text = lines[previous_end:first] + text  # the blank lines and comments before it
        previous_end = (_body_span(lines, node)[1] if isinstance(node, ast.FunctionDef)
                        else node.end_lineno)  # a trailing END marker is the function's
        if isinstance(node, ast.Import | ast.ImportFrom):
            module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
            if _dropped(module or "", drop_imports):
                continue
            out += text
            import_ends[(module or "").split(".")[0]] = import_ends[""] = len(out)
        elif isinstance(node, ast.FunctionDef):
            if node.name in by_name:
                out += ["", ""] + strip_function(lines, node, by_name[node.name], node.name,
                                               strip)
            elif node.name in keep or not strip:  # the solution keeps its own helpers
                out += ["", ""] + text
        elif isinstance(node, ast.ClassDef):
            if node.name not in wanted_classes and node.name not in keep:
                continue
            stripped = list(text)
            methods = [m for m in node.body if isinstance(m, ast.FunctionDef)
                       and f"{node.name}.{m.name}" in by_name]
            for method in sorted(methods, key=lambda m: -m.lineno):  # bottom up: indices hold
                m_first = (method.decorator_list[0].lineno if method.decorator_list
                           else method.lineno) - 1
                new = strip_function(lines, method, by_name[f"{node.name}.{method.name}"],
                                     f"{node.name}.{method.name}", strip)
                stripped[m_first - first:_body_span(lines, method)[1] - first] = new
            out += ["", ""] + stripped
        elif isinstance(node, ast.Expr) and node is tree.body[0]:
            out += text  # the module docstring: the equations the student implements
        else:
            out += text  # constants, TYPE_CHECKING blocks
    bound = _top_level_names(tree) | {t.rename or t.name for _, t in extras}
    needed: list[str] = []
    for extra_source, todo in extras:
        extra_lines = extra_source.splitlines()
        extra_tree = ast.parse(extra_source)
        node = _find(extra_tree, todo.name)
        out += ["", ""] + strip_function(extra_lines, node, todo, todo.rename or todo.name,
                                          strip)
        needed += [line for line in _imports_for(extra_tree, node, bound, drop_imports)
                   if line not in needed]
    for line in reversed(needed):  # beside the imports of the same package, else after all
        where = import_ends.get(line.split()[1].split(".")[0], import_ends[""])
        out[where:where] = [line]
    return "\n".join(out).rstrip() + "\n"


def _dropped(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _top_level_names(tree: ast.Module) -> set[str]:
    """The names a module's top level binds: imports, definitions, assignments."""
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def _imports_for(tree: ast.Module, node: ast.FunctionDef, bound: set[str],
                 drop_imports: tuple[str, ...]) -> list[str]:
    """Import lines of an extra's own module that bind the names its function uses and the
    student's file lacks (``F`` for ``F.log_softmax``), one name a line, none from a dropped
    module: an extra is copied without its module's imports, so it would not run otherwise."""
    used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} - bound
    lines = []
    for statement in tree.body:
        if isinstance(statement, ast.Import):
            lines += [f"import {a.name}" + (f" as {a.asname}" if a.asname else "")
                      for a in statement.names if (a.asname or a.name).split(".")[0] in used
                      and not _dropped(a.name, drop_imports)]
        elif isinstance(statement, ast.ImportFrom) and not statement.level:
            module = statement.module or ""
            names = [a for a in statement.names if (a.asname or a.name) in used]
            if names and not _dropped(module, drop_imports):
                lines += [f"from {module} import {a.name}" + (f" as {a.asname}" if a.asname
                                                               else "") for a in names]
    return lines


# ---- copy detection ---------------------------------------------------------------------


def _normal_lines(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


class _Renamer(ast.NodeTransformer):
    """Variables and arguments renamed in order of appearance: renaming hides no copy."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def _rename(self, name: str) -> str:
        return self.names.setdefault(name, f"v{len(self.names)}")

    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = self._rename(node.id)
        return node

    def visit_arg(self, node: ast.arg) -> ast.arg:
        node.arg = self._rename(node.arg)
        node.annotation = None
        return node


def _shape_of(body: list[ast.stmt]) -> str:
    module = ast.Module(body=[s for s in body if not (
        isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))], type_ignores=[])
    return ast.dump(_Renamer().visit(module), annotate_fields=False)


def copied_from_solution(student: str, solution: str) -> str | None:
    """Why ``student`` (a function's body) is a copy of ``solution`` (its marked body), or None.

    Two tests: the solution's comment lines and long lines, whitespace aside, appear in the
    student's body (a pasted copy keeps them); or the two bodies have the same syntax tree
    with variables renamed, for a solution of five statements or more (short bodies can match
    by chance).
    """
    solution_lines = _normal_lines(solution)
    student_lines = set(_normal_lines(student))
    telling = [line for line in solution_lines if "#" in line or len(line) >= 40]
    if len(telling) >= 2:
        found = sum(line in student_lines for line in telling)
        if found / len(telling) >= 0.8:
            return f"{found} of its {len(telling)} distinctive lines are the solution's"
    try:
        sol_tree = ast.parse("def f():\n" + _indent(solution)).body[0]
        stu_tree = ast.parse("def f():\n" + _indent(student)).body[0]
    except SyntaxError:
        return None
    if len(list(ast.walk(sol_tree))) > 1 and len(sol_tree.body) >= 5 and \
            _shape_of(sol_tree.body) == _shape_of(stu_tree.body):
        return "its code is the solution's with the variables renamed"
    return None


def _indent(text: str) -> str:
    import textwrap

    return textwrap.indent(textwrap.dedent(text), "    ") or "    pass"


def function_body(source: str, name: str) -> str | None:
    """The body (after the docstring) of ``name`` in ``source``; None when absent."""
    try:
        node = _find(ast.parse(source), name)
    except (KeyError, SyntaxError):
        return None
    lines = source.splitlines()
    return "\n".join(lines[_body_start(node):node.end_lineno])


def read_module(path: Path) -> str:
    """A solution module's text (UTF-8)."""
    return Path(path).read_text(encoding="utf-8")
