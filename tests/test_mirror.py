"""The mirror as a contract: same public names, same signatures, few differing lines.

``backends/torch/X.py`` and ``backends/tf/X.py`` must define the same public functions,
classes and methods with the same parameters (names, order, kinds, defaults), differ in
less than MIRROR_LIMIT of their lines, and spell tensors in type hints through the ``Tensor``
alias. What each framework forces is allowed and listed here:
torch's ``forward`` is Keras' ``call``, only Keras methods take ``training``, Keras layers have
``build`` and ``get_config`` and accept ``**kwargs`` (name, dtype) in ``__init__``.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
from typing import Any

import pytest

from duetrl.core.mirror import (
    MIRROR_EXCEPTIONS,
    MIRROR_LIMIT,
    backend_folder,
    compare_pair,
    mirror_names,
    side_by_side,
)

FRAMEWORK_HOOKS = {
    "build", "get_config", "from_config", "reset_parameters",
    "compute_output_shape", "__call__",
}
"""Methods one framework requires and the other has no use for."""


def _parameters(value: Any) -> list[tuple[str, str, str]] | str:
    if isinstance(value, property):
        return "property"
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    parameters = inspect.signature(value).parameters.values()
    return [(p.name, p.kind.name, repr(p.default)) for p in parameters]


def _public_signatures(module_name: str) -> dict[str, Any]:
    """``{name: parameters}`` of a module's public functions, classes and their methods."""
    module = importlib.import_module(module_name)
    found: dict[str, Any] = {}
    for name, value in vars(module).items():
        value = getattr(value, "python_function", value)  # a tf.function: the Python it wraps
        if name.startswith("_") or getattr(value, "__module__", None) != module_name:
            continue
        if inspect.isfunction(value):
            found[name] = _parameters(value)
        elif inspect.isclass(value):
            found[name] = "class"
            for method, member in vars(value).items():
                member = getattr(member, "python_function", member)
                public = not method.startswith("_") or method == "__init__"
                if not public or method in FRAMEWORK_HOOKS:
                    continue
                if callable(member) or isinstance(member, (property, staticmethod, classmethod)):
                    parameters = _parameters(member)
                    if method == "call":
                        method = "forward"  # torch's forward is Keras' call
                    if isinstance(parameters, list):
                        # Keras threads `training` through calls; torch uses module.train()
                        parameters = [p for p in parameters if p[0] != "training"]
                    if method == "__init__" and isinstance(parameters, list):
                        # a Keras layer forwards **kwargs (name, dtype) to keras.layers.Layer
                        parameters = [p for p in parameters if p[1] != "VAR_KEYWORD"]
                    found[f"{name}.{method}"] = parameters
    return found


@pytest.mark.parametrize("name", mirror_names())
def test_mirrored_files_have_the_same_signatures(name: str, backends) -> None:
    torch_api = _public_signatures(f"duetrl.backends.torch.{name}")
    tf_api = _public_signatures(f"duetrl.backends.tf.{name}")
    splits = {
        key: (torch_api.get(key, "missing"), tf_api.get(key, "missing"))
        for key in sorted(set(torch_api) | set(tf_api))
        if torch_api.get(key, "missing") != tf_api.get(key, "missing")
    }
    assert not splits, "\n".join(f"{name}.{k}: torch {t} | tf {f}" for k, (t, f) in splits.items())


@pytest.mark.parametrize("name", mirror_names())
def test_mirrored_files_differ_only_where_the_frameworks_do(name: str) -> None:
    pair = compare_pair(name)
    limit = MIRROR_EXCEPTIONS.get(name, MIRROR_LIMIT)
    assert pair.differing < limit, side_by_side(pair, only_differences=True)


def _framework_tensor_annotations(source: str) -> list[str]:
    """``line: annotation`` of each argument or return annotation that spells ``torch.Tensor``
    or ``tf.Tensor`` (a quoted annotation is parsed too)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        arguments = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
        arguments += [a for a in (node.args.vararg, node.args.kwarg) if a is not None]
        annotations = [a.annotation for a in arguments] + [node.returns]
        for annotation in filter(None, annotations):
            line = annotation.lineno
            if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
                annotation = ast.parse(annotation.value, mode="eval").body
            for part in ast.walk(annotation):
                if (isinstance(part, ast.Attribute) and part.attr == "Tensor"
                        and isinstance(part.value, ast.Name) and part.value.id in ("torch", "tf")):
                    found.append(f"{line}: {ast.unparse(annotation)}")
                    break
    return found


def test_the_tensor_check_reads_annotations_only() -> None:
    source = (
        "def f(x: torch.Tensor, y: 'tf.Tensor | None' = None) -> tuple[tf.Tensor, int]:\n"
        "    return isinstance(x, torch.Tensor), tf.TensorSpec\n"
        "def g(x: Tensor, *args: Tensor, **kwargs: Any) -> Tensor: ...\n"
    )
    assert [line.split(": ", 1)[1] for line in _framework_tensor_annotations(source)] == [
        "torch.Tensor", "tf.Tensor | None", "tuple[tf.Tensor, int]"
    ]


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("name", mirror_names())
def test_backend_files_spell_tensors_through_the_alias(name: str, backend: str) -> None:
    """Type hints say ``Tensor`` (``from torch import Tensor`` / ``from tensorflow import
    Tensor``), so the twins' signatures read the same line for line."""
    path = backend_folder(backend) / f"{name}.py"
    found = _framework_tensor_annotations(path.read_text())
    assert not found, f"backends/{backend}/{name}.py: use the Tensor alias in " + "; ".join(found)


def test_mirror_measure_counts_lines_only_on_one_side() -> None:
    """The measure itself: a file against itself differs in 0 lines; rows cover both files."""
    pair = compare_pair("attention")
    assert pair.torch_lines == sum(row.torch_line is not None for row in pair.rows)
    assert pair.tf_lines == sum(row.tf_line is not None for row in pair.rows)
    changed = sum(row.tag != "=" and row.torch_line is not None for row in pair.rows)
    assert changed == pair.only_torch
    with pytest.raises(ValueError, match="NAME: expected one of .*attention.* got 'nope'"):
        compare_pair("nope")


def test_diff_command_prints_both_files_and_the_share() -> None:
    result = subprocess.run([sys.executable, "-m", "duetrl", "diff", "attention", "--width", "140"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "backends/torch/attention.py" in result.stdout and "backends/tf/attention.py" in result.stdout
    assert "import torch" in result.stdout and "import tensorflow as tf" in result.stdout
    assert "differing" in result.stdout.splitlines()[-1]
    table = subprocess.run([sys.executable, "-m", "duetrl", "diff", "--all"],
                           capture_output=True, text=True)
    assert table.returncode == 0 and set(mirror_names()) <= {
        line.split()[0] for line in table.stdout.splitlines()[1:]
    }
