"""The one-character bugs tools/mutate.py plants, as rewrites of a module's syntax tree.

Each operator turns one node into a slightly wrong one, the way a tired author would:

    comparison   <  <->  <=,  >  <->  >=,  ==  <->  !=,  is <-> is not,  in <-> not in
    arithmetic   + <-> -,  * <-> /,  // -> /,  ** -> *,  & <-> |,  ^ -> |  (also in  x op= y)
    update       x op= y  ->  x = y                       (an accumulation forgotten)
    sign/negate  -x -> x,  not x -> x,  ~x -> x
    logic        and <-> or
    number       n -> n + 1 and n -> n - 1 for an int,  x -> x + 1 for a float
    boolean      True <-> False
    reduction    max <-> min, argmax <-> argmin, maximum <-> minimum, sum <-> mean,
                 any <-> all, floor <-> ceil           (a mean for a max)
    argument     a keyword argument dropped             (axis=-1, ddof=1 ignored)
    return       return x -> return None

Left alone, because a wrong one there is a wrong message, not a wrong number: strings and
f-strings, the arguments of ``raise``, docstrings, type annotations, decorators, imports and
``if TYPE_CHECKING:`` blocks.

A mutant is named by where it is and what it changes, never by a line number, so the names of
the equivalent mutants (tools/mutants_equivalent.toml) survive edits elsewhere in the file:

    "<function>: <the changed line, stripped> | <what changed>"      (+ " #2" for a repeat)
"""

from __future__ import annotations

import ast
import copy
from dataclasses import dataclass

COMPARE_SWAPS = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
BINOP_SWAPS = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div,
    ast.Pow: ast.Mult,
    ast.BitAnd: ast.BitOr,
    ast.BitOr: ast.BitAnd,
    ast.BitXor: ast.BitOr,
}
NAME_SWAPS = {
    "max": "min",
    "min": "max",
    "argmax": "argmin",
    "argmin": "argmax",
    "maximum": "minimum",
    "minimum": "maximum",
    "sum": "mean",
    "mean": "sum",
    "any": "all",
    "all": "any",
    "floor": "ceil",
    "ceil": "floor",
}
SYMBOL = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Pow: "**",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.And: "and",
    ast.Or: "or",
    ast.USub: "-",
    ast.Not: "not",
    ast.Invert: "~",
}


@dataclass(frozen=True)
class Mutant:
    """One planted bug: its stable name, the line it changes and the first line of its statement
    (1-based: a test that runs neither never runs the mutant), and its function."""

    index: int
    name: str
    line: int
    statement_line: int
    function: str


def _is_text(node: ast.AST) -> bool:
    return isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str | bytes)
    )


class _Planter(ast.NodeTransformer):
    """Walks a tree in a fixed order, numbering every possible mutation; applies number
    ``target`` (or none, when ``target`` is -1, to list them all)."""

    def __init__(
        self,
        source_lines: list[str],
        target: int = -1,
        functions: tuple[str, ...] = (),
        exclude: tuple[str, ...] = (),
    ) -> None:
        self.lines, self.target, self.functions = source_lines, target, functions
        self.exclude = exclude
        self.found: list[Mutant] = []
        self.scope: list[str] = []
        self.statement: ast.stmt | None = None
        self.seen: dict[str, int] = {}

    # ---- bookkeeping: where we are, and whether this place is mutated at all ----
    def _in_scope(self) -> bool:
        name = ".".join(self.scope)

        def inside(names: tuple[str, ...]) -> bool:
            return any(name == f or name.startswith(f + ".") for f in names)

        return (not self.functions or inside(self.functions)) and not inside(self.exclude)

    def _offer(self, node: ast.AST, what: str) -> bool:
        """Number one mutation of ``node``; True when it is the one to apply."""
        if not self._in_scope():
            return False
        line = getattr(node, "lineno", None) or self.statement.lineno
        text = self.lines[line - 1].strip()
        function = ".".join(self.scope) or "<module>"
        name = f"{function}: {text} | {what}"
        self.seen[name] = self.seen.get(name, 0) + 1
        if self.seen[name] > 1:
            name += f" #{self.seen[name]}"
        self.found.append(Mutant(len(self.found), name, line, self.statement.lineno, function))
        return len(self.found) - 1 == self.target

    # ---- what is never mutated ----
    def _visit_body(self, node: ast.AST) -> ast.AST:
        body = getattr(node, "body", None)
        if body and isinstance(body[0], ast.Expr) and _is_text(body[0].value):
            node.body = [body[0], *[self.visit(s) for s in body[1:]]]  # keep the docstring
            return node
        return self.generic_visit(node)

    def _visit_def(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> ast.AST:
        self.scope.append(node.name)
        if isinstance(node, ast.ClassDef):
            node.bases = [self.visit(b) for b in node.bases]
        else:  # default values are code; annotations and decorators are not mutated
            node.args.defaults = [self.visit(d) for d in node.args.defaults]
            node.args.kw_defaults = [
                d if d is None else self.visit(d) for d in node.args.kw_defaults
            ]
        body = node.body
        start = 1 if body and isinstance(body[0], ast.Expr) and _is_text(body[0].value) else 0
        node.body = body[:start] + [self.visit(s) for s in body[start:]]
        self.scope.pop()
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _visit_def
    visit_Module = _visit_body

    def visit(self, node: ast.AST) -> ast.AST:
        if isinstance(node, ast.stmt):
            self.statement = node
        return super().visit(node)

    def visit_If(self, node: ast.If) -> ast.AST:
        if isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            return node
        return self.generic_visit(node)

    def visit_Raise(self, node: ast.Raise) -> ast.AST:
        return node

    def visit_Import(self, node: ast.AST) -> ast.AST:
        return node

    visit_ImportFrom = visit_Import

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        if node.value is not None:
            node.value = self.visit(node.value)
        return node

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        return node

    def visit_Assign(self, node: ast.Assign) -> ast.AST:
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return node
        return self.generic_visit(node)

    # ---- the operators ----
    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        for i, op in enumerate(node.ops):
            swap = COMPARE_SWAPS.get(type(op))
            if swap and self._offer(node, f"`{SYMBOL[type(op)]}` -> `{SYMBOL[swap]}`"):
                node.ops[i] = swap()
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        swap = BINOP_SWAPS.get(type(node.op))
        if (
            swap
            and not (_is_text(node.left) or _is_text(node.right))
            and self._offer(node, f"`{SYMBOL[type(node.op)]}` -> `{SYMBOL[swap]}`")
        ):
            node.op = swap()
        return node

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        self.generic_visit(node)
        symbol = SYMBOL.get(type(node.op), "?")
        swap = BINOP_SWAPS.get(type(node.op))
        if swap and self._offer(node, f"`{symbol}=` -> `{SYMBOL[swap]}=`"):
            node.op = swap()
        if self._offer(node, f"`{symbol}=` -> `=`"):
            return ast.copy_location(ast.Assign([node.target], node.value), node)
        return node

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        self.generic_visit(node)
        if type(node.op) in (ast.USub, ast.Not, ast.Invert) and self._offer(
            node, f"`{SYMBOL[type(node.op)]}` dropped"
        ):
            return node.operand
        return node

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        self.generic_visit(node)
        swap = ast.Or if isinstance(node.op, ast.And) else ast.And
        if self._offer(node, f"`{SYMBOL[type(node.op)]}` -> `{SYMBOL[swap]}`"):
            node.op = swap()
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        value = node.value
        if isinstance(value, bool):
            if self._offer(node, f"`{value}` -> `{not value}`"):
                return ast.copy_location(ast.Constant(not value), node)
        elif isinstance(value, int):
            for new in (value + 1, value - 1):
                if self._offer(node, f"`{value}` -> `{new}`"):
                    return ast.copy_location(ast.Constant(new), node)
        elif isinstance(value, float) and self._offer(node, f"`{value!r}` -> `{value + 1!r}`"):
            return ast.copy_location(ast.Constant(value + 1.0), node)
        return node

    def _swap_name(self, node: ast.AST, current: str) -> str | None:
        new = NAME_SWAPS.get(current)
        return new if new and self._offer(node, f"`{current}` -> `{new}`") else None

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        func = node.func
        if isinstance(func, ast.Attribute) and (new := self._swap_name(node, func.attr)):
            node.func = ast.copy_location(ast.Attribute(func.value, new, func.ctx), func)
        elif isinstance(func, ast.Name) and (new := self._swap_name(node, func.id)):
            node.func = ast.copy_location(ast.Name(new, func.ctx), func)
        for i, keyword in enumerate(node.keywords):
            if keyword.arg and self._offer(node, f"argument `{keyword.arg}=` dropped"):
                node.keywords = node.keywords[:i] + node.keywords[i + 1 :]
                break
        return node

    def visit_Return(self, node: ast.Return) -> ast.AST:
        self.generic_visit(node)
        if node.value is not None and not (
            isinstance(node.value, ast.Constant) and node.value.value is None
        ):
            if self._offer(node, "returns None"):
                node.value = None
        return node


def list_mutants(
    source: str, functions: tuple[str, ...] = (), exclude: tuple[str, ...] = ()
) -> list[Mutant]:
    """Every mutant of ``source``: inside ``functions`` (qualified names; all if empty), outside
    ``exclude``."""
    planter = _Planter(source.splitlines(), -1, functions, exclude)
    planter.visit(ast.parse(source))
    return planter.found


def mutated_tree(
    source: str, index: int, functions: tuple[str, ...] = (), exclude: tuple[str, ...] = ()
) -> ast.Module:
    """The syntax tree of ``source`` with mutant number ``index`` planted (-1: none)."""
    tree = ast.parse(source)
    planter = _Planter(source.splitlines(), index, functions, exclude)
    tree = planter.visit(copy.deepcopy(tree))
    return ast.fix_missing_locations(tree)
