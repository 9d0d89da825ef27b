"""Moving parameters between a Keras 3 layer and the canonical dictionary (duetrl.core.weights).

Canonical names are the attribute paths (``q_linear.kernel``); a Dense kernel is already
``(in, out)``, so nothing is transposed here. LayerNormalization's gamma/beta become
``scale``/``bias``.
"""

from collections.abc import Mapping

import keras
import numpy as np

from duetrl.core.weights import CheckpointError, check_names

# framework variable name -> canonical name, per layer type
_RENAMES = {
    keras.layers.LayerNormalization: {"gamma": "scale", "beta": "bias"},
}


def _sublayers(layer, prefix=""):
    """Yield (attribute path, layer) for ``layer`` and every layer it holds, depth first."""
    yield prefix, layer
    for attribute, value in vars(layer).items():
        if attribute.startswith("_"):
            continue
        path = f"{prefix}.{attribute}" if prefix else attribute
        if isinstance(value, keras.layers.Layer):
            yield from _sublayers(value, path)
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                if isinstance(item, keras.layers.Layer):
                    yield from _sublayers(item, f"{path}.{index}")


def _canonical_variables(layer):
    """Yield (canonical name, variable) for every weight, shared ones once."""
    if not layer.built:
        layer.build()  # duetrl layers know their sizes from the constructor
    seen = set()
    for prefix, sub in _sublayers(layer):
        renames = next((r for t, r in _RENAMES.items() if isinstance(sub, t)), {})
        for variable in sub._trainable_variables + sub._non_trainable_variables:
            if id(variable) in seen:  # tied weights are stored once, under their first name
                continue
            seen.add(id(variable))
            canonical = renames.get(variable.name, variable.name)
            yield (f"{prefix}.{canonical}" if prefix else canonical), variable


def export_params(layer: keras.layers.Layer) -> dict[str, np.ndarray]:
    """Return ``{canonical name: numpy array}`` (copies) of every weight of ``layer``."""
    return {name: np.array(variable.numpy()) for name, variable in _canonical_variables(layer)}


def import_params(
    layer: keras.layers.Layer, params: Mapping[str, np.ndarray]
) -> keras.layers.Layer:
    """Copy a canonical dictionary into ``layer`` in place, exactly; returns ``layer``.

    Raises:
        CheckpointError: naming missing or unexpected parameters, or a wrong shape.
    """
    targets = dict(_canonical_variables(layer))
    check_names(params, targets, "params")
    for name, variable in targets.items():
        value = np.asarray(params[name])
        if tuple(value.shape) != tuple(variable.shape):
            raise CheckpointError(
                f"params: parameter {name!r} has shape {tuple(value.shape)}, "
                f"expected {tuple(variable.shape)}"
            )
        variable.assign(value.astype(variable.dtype))
    return layer
