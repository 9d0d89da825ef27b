"""Arrows that point one way: the import graph of ``core`` and ``backends``, read from the syntax
tree (imports inside functions included), has no circle, and each layer imports only below it.

    cli                           duetrl.core.cli: the front end; nothing else in core imports it
    loops, tools                  core/lm, core/rl, core/rlhf, core/run, core/scale, ...
    backends/torch, backends/tf   the two frameworks: foundation only (never the oracle)
    reference                     the float64 oracle: foundation only
    foundation                    contracts (core/interfaces), constants, tolerances, weights ...
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
FOLDERS = {"core": "duetrl.core", "backends": "duetrl.backends"}

FOUNDATION = (
    "duetrl.core.interfaces",
    "duetrl.core.learners",
    "duetrl.core.constants",
    "duetrl.core.tolerances",
    "duetrl.core.initializers",
    "duetrl.core.weights",
    "duetrl.core.checkpoint",
    "duetrl.core.sampling",
    "duetrl.core.backend",
)
"""What both the oracle and the backends may import: the contracts and the shared host-side
pieces (a GPT's config and canonical parameters, the RLHF batch, settings, constants, the
checkpoint format, NumPy sampling). ``duetrl.core.sampling`` takes ``log_softmax`` from the
oracle's ``functional`` module, its one dependency upward, by design (one stable formula).
``duetrl.core.backend`` (standard library only) prepares the process before TensorFlow loads;
``backends/tf/__init__.py`` calls it."""

ORACLE = "duetrl.core.reference"
CLI = "duetrl.core.cli"


def _module_name(path: Path) -> str:
    top, *rest = path.relative_to(ROOT).with_suffix("").parts
    parts = [FOLDERS[top], *rest]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for top in FOLDERS for p in sorted((ROOT / top).rglob("*.py"))}


MODULES = _modules()


def _known(name: str) -> str | None:
    """The longest prefix of ``name`` that is one of our modules (``a.b.func`` -> ``a.b``)."""
    while name not in MODULES:
        if "." not in name:
            return None
        name = name.rsplit(".", 1)[0]
    return name


def imports_of(name: str) -> set[str]:
    """Our modules that module ``name`` imports anywhere in its source (lazy imports too)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from ..y import z
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            # ``from pkg import module`` imports the module; ``from module import name`` the module
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            module = _known(target)
            if module is not None and module != name:
                found.add(module)
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def _within(module: str, prefixes: tuple[str, ...] | str) -> bool:
    prefixes = (prefixes,) if isinstance(prefixes, str) else prefixes
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iteratively: the groups of modules that import each other in a ring."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def test_the_cycle_finder_finds_a_ring_and_a_self_free_chain() -> None:
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_the_graph_sees_lazy_and_relative_imports() -> None:
    # checkpoint imports weights at the top; the CLI imports its command modules by name only,
    # so its entry module is checked through each command module's own imports
    assert "duetrl.core.weights" in GRAPH["duetrl.core.checkpoint"]
    assert "duetrl.core.rlhf.mdp" in GRAPH["duetrl.core.rlhf.train"]
    assert any("duetrl.core.cli" in GRAPH[m] for m in GRAPH if m.startswith("duetrl.core.cli."))


def test_no_import_circle() -> None:
    assert strongly_connected(GRAPH) == []


@pytest.mark.parametrize("name", sorted(m for m in MODULES if not _within(m, CLI)))
def test_core_never_imports_the_cli(name: str) -> None:
    assert not [m for m in GRAPH[name] if _within(m, CLI)], f"{name} imports the command line"


@pytest.mark.parametrize("name", sorted(m for m in MODULES if _within(m, ORACLE)))
def test_the_oracle_imports_only_the_foundation(name: str) -> None:
    above = sorted(m for m in GRAPH[name] if not _within(m, (ORACLE, *FOUNDATION)))
    assert not above, f"{name} (the oracle) imports {above}: move the contract down"


@pytest.mark.parametrize("name", sorted(m for m in MODULES if _within(m, "duetrl.backends")))
def test_backends_import_only_the_foundation_and_their_own_package(name: str) -> None:
    own = ".".join(name.split(".")[:3]) if name.count(".") >= 2 else name  # duetrl.backends.torch
    allowed = (own, "duetrl.backends", *FOUNDATION)
    if name == "duetrl.backends":  # the package picks a backend by name
        allowed = (*allowed, "duetrl.backends.torch", "duetrl.backends.tf", "duetrl.core.backend")
    above = sorted(m for m in GRAPH[name] if not _within(m, allowed))
    assert not above, f"{name} imports {above}: a backend sees only the contracts below it"


def test_the_foundation_imports_nothing_above_it() -> None:
    for name in MODULES:
        if _within(name, FOUNDATION):
            above = sorted(m for m in GRAPH[name] if not _within(m, FOUNDATION))
            if name == "duetrl.core.sampling":
                above.remove("duetrl.core.reference.functional")
            assert not above, f"{name} (foundation) imports {above}"
