"""Moving parameters between a model and the canonical dictionary (duetrl.core.weights).

Canonical names are the attribute paths (``q_linear.kernel``); LayerNorm parameters are
``scale``/``bias``, an embedding table ``embeddings``. A canonical kernel is ``(in, out)``:
torch's Linear weight ``(out, in)`` is transposed here, once; Keras' Dense kernel already is
``(in, out)``. The twin in the other backend: ``duetrl diff weights``.
"""

from collections.abc import Iterator, Mapping
from typing import Any

import keras
import numpy as np

from duetrl.core.checkpoint import CheckpointError
from duetrl.core.tolerances import to_numpy
from duetrl.core.weights import check_names

# framework parameter name -> canonical name, per layer type
_RENAMES = {
    keras.layers.LayerNormalization: {"gamma": "scale", "beta": "bias"},
}
# the parameter stored transposed, per layer type: none, Keras' kernels are (in, out)
_TRANSPOSED = {}


def _sublayers(model: keras.Layer, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Yield (attribute path, layer) for ``model`` and every layer it holds, depth first."""
    yield prefix, model
    for attribute, value in vars(model).items():
        path = f"{prefix}.{attribute}" if prefix else attribute
        if isinstance(value, keras.Layer) and not attribute.startswith("_"):
            yield from _sublayers(value, path)
        elif isinstance(value, list | tuple) and not attribute.startswith("_"):
            for index, item in enumerate(value):
                if isinstance(item, keras.Layer):
                    yield from _sublayers(item, f"{path}.{index}")


def _own_parameters(layer: keras.Layer) -> Iterator[tuple[str, keras.Variable]]:
    """Yield (name, parameter) of the parameters ``layer`` holds itself (not its sublayers)."""
    for variable in layer._trainable_variables + layer._non_trainable_variables:
        yield variable.name, variable


def _assign(parameter: keras.Variable, value: np.ndarray) -> None:
    """Overwrite ``parameter`` in place with ``value``, in the parameter's dtype."""
    parameter.assign(value.astype(parameter.dtype))


def _canonical_parameters(model: Any) -> Iterator[tuple[str, Any, bool]]:
    """Yield (canonical name, parameter, transpose?) for every parameter, shared ones once."""
    if not model.built:  # Keras creates parameters lazily, at build; torch at construction
        model.build()
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


def export_params(model: keras.Layer) -> dict[str, np.ndarray]:
    """Return ``{canonical name: numpy array}`` (copies) of every parameter of ``model``."""
    params = {}
    for name, parameter, transpose in _canonical_parameters(model):
        value = to_numpy(parameter)
        params[name] = np.array(value.T if transpose else value, order="C")  # a copy
    return params


def import_params(model: keras.Layer, params: Mapping[str, np.ndarray]) -> keras.Layer:
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

