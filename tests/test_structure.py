"""The house rules: core imports no framework, the two backends mirror each other."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import duetrl.core as core
from duetrl.core import interfaces

ROOT = Path(__file__).parent.parent
FRAMEWORKS = ("torch", "tensorflow", "keras")


def test_core_imports_no_framework() -> None:
    """Import every core module in a fresh interpreter; no framework may come with them."""
    modules = [m.name for m in pkgutil.walk_packages(core.__path__, "duetrl.core.")]
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


# each Protocol of core/interfaces and the backend class(es) that implement it
IMPLEMENTATIONS = {
    "AttentionModule": ["MultiHeadAttention"],
    "PolicyModule": ["PolicyNet"],
    "Agent": ["Agent"],
    "LanguageModel": ["GPT"],
    "LanguageModelTrainer": ["LMTrainer"],
}


def _protocols() -> dict[str, type]:
    found = {}
    for info in pkgutil.iter_modules(interfaces.__path__, "duetrl.core.interfaces."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if isinstance(value, type) and getattr(value, "_is_protocol", False) and (
                value.__module__ == info.name
            ):
                found[name] = value
    return found


def test_every_interface_has_an_implementation_in_both_backends(backends) -> None:
    """Each Protocol in duetrl.core.interfaces is implemented, method for method, by both backends."""
    protocols = _protocols()
    assert sorted(protocols) == sorted(IMPLEMENTATIONS), "map each new Protocol here"
    for protocol_name, protocol in protocols.items():
        methods = [n for n, v in vars(protocol).items() if callable(v) and not n.startswith("_")]
        for class_name in IMPLEMENTATIONS[protocol_name]:
            for backend in backends.values():
                implementation = getattr(backend, class_name)
                for method in methods:
                    assert callable(getattr(implementation, method, None)), (
                        f"{backend.NAME}.{class_name} lacks {protocol_name}.{method}"
                    )
