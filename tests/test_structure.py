"""The house rules: core imports no framework, the two backends mirror each other."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import core
from core import interfaces

ROOT = Path(__file__).parent.parent
FRAMEWORKS = ("torch", "tensorflow", "keras")


def test_core_imports_no_framework() -> None:
    """Import every core module in a fresh interpreter; no framework may come with them."""
    modules = [m.name for m in pkgutil.walk_packages(core.__path__, "core.") if m.name != "core.__main__"]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"loaded = [f for f in {FRAMEWORKS!r} if f in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]


def test_core_source_has_no_framework_import_statement() -> None:
    for path in (ROOT / "core").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in FRAMEWORKS, f"{path}: imports {name}"


def test_backend_folders_mirror_file_for_file() -> None:
    torch_files = sorted(p.name for p in (ROOT / "backends/torch").glob("*.py"))
    tf_files = sorted(p.name for p in (ROOT / "backends/tf").glob("*.py"))
    assert torch_files == tf_files


def _public_definitions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    return [
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_")
    ]


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "backends/torch").glob("*.py")))
def test_mirrored_files_define_the_same_public_names_in_the_same_order(name: str) -> None:
    assert _public_definitions(ROOT / "backends/torch" / name) == _public_definitions(
        ROOT / "backends/tf" / name
    )


def test_backend_packages_export_the_same_public_names(backends) -> None:
    assert backends["torch"].__all__ == backends["tf"].__all__
    for name in backends["torch"].__all__:
        assert hasattr(backends["torch"], name) and hasattr(backends["tf"], name), name


def test_every_interface_has_an_implementation_in_both_backends(backends) -> None:
    """Each Protocol in core.interfaces names a class both backends export."""
    protocols = [n for n in interfaces.__all__ if n.endswith("Module")]
    implementations = {"AttentionModule": "MultiHeadAttention"}
    for protocol in protocols:
        assert protocol in implementations, f"map {protocol} to its backend class here"
        for backend in backends.values():
            assert hasattr(backend, implementations[protocol])
