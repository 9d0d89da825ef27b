"""Moving parameters between a model and the canonical dictionary (duetrl.core.weights).

Canonical names are the attribute paths (``q_linear.kernel``); LayerNorm parameters are
``scale``/``bias``, an embedding table ``embeddings``. A canonical kernel is ``(in, out)``:
torch's Linear weight ``(out, in)`` is transposed here, once; Keras' Dense kernel already is
``(in, out)``. The twin in the other backend: ``duetrl diff weights``.
"""

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from duetrl.core.checkpoint import CheckpointError
from duetrl.core.tolerances import to_numpy
from duetrl.core.weights import check_names

# framework parameter name -> canonical name, per layer type
_RENAMES = {
    nn.Linear: {"weight": "kernel"},
    nn.LayerNorm: {"weight": "scale"},
    nn.Embedding: {"weight": "embeddings"},
}
# the parameter stored transposed, per layer type: torch (out, in) <-> canonical (in, out)
_TRANSPOSED = {nn.Linear: "weight"}


def _sublayers(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """Yield (attribute path, layer) for ``model`` and every layer it holds, depth first."""
    yield from model.named_modules()


def _own_parameters(layer: nn.Module) -> Iterator[tuple[str, nn.Parameter]]:
    """Yield (name, parameter) of the parameters ``layer`` holds itself (not its sublayers)."""
    yield from layer.named_parameters(recurse=False)


@torch.no_grad()
def _assign(parameter: nn.Parameter, value: np.ndarray) -> None:
    """Overwrite ``parameter`` in place with ``value``, in the parameter's dtype."""
    parameter.copy_(torch.as_tensor(value, dtype=parameter.dtype))


def _canonical_parameters(model: Any) -> Iterator[tuple[str, Any, bool]]:
    """Yield (canonical name, parameter, transpose?) for every parameter, shared ones once."""
    seen = set()
    for prefix, layer in _sublayers(model):
        renames = next((r for t, r in _RENAMES.items() if isinstance(layer, t)), {})
        transposed = next((n for t, n in _TRANSPOSED.items() if isinstance(layer, t)), None)
        for name, parameter in _own_parameters(layer):
            if id(parameter) in seen:  # tied weights are stored once, under their first name
                continue
            seen.add(id(parameter))
            canonical = renames.get(name, name)
            yield (f"{prefix}.{canonical}" if prefix else canonical), parameter, name == transposed


def export_params(model: nn.Module) -> dict[str, np.ndarray]:
    """Return ``{canonical name: numpy array}`` (copies) of every parameter of ``model``."""
    params = {}
    for name, parameter, transpose in _canonical_parameters(model):
        value = to_numpy(parameter)
        params[name] = np.array(value.T if transpose else value, order="C")  # a copy
    return params


def import_params(model: nn.Module, params: Mapping[str, np.ndarray]) -> nn.Module:
    """Copy a canonical dictionary into ``model`` in place, exactly; returns ``model``.

    Raises:
        CheckpointError: naming missing or unexpected parameters, or a wrong shape.
    """
    targets = {name: (p, t) for name, p, t in _canonical_parameters(model)}
    check_names(params, targets, "params")
    for name, (parameter, transpose) in targets.items():
        value = np.asarray(params[name])
        expected = tuple(parameter.shape)[::-1] if transpose else tuple(parameter.shape)
        if tuple(value.shape) != expected:
            raise CheckpointError(
                f"params: parameter {name!r} has shape {tuple(value.shape)}, expected {expected}"
            )
        _assign(parameter, np.ascontiguousarray(value.T if transpose else value))
    return model
