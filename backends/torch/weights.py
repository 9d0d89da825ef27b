"""Moving parameters between a PyTorch module and the canonical dictionary (duetrl.core.weights).

Canonical names are the attribute paths (``q_linear.kernel``); a Linear weight ``(out, in)``
is transposed here, once, into the canonical ``(in, out)`` kernel.
"""

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn as nn

from duetrl.core.weights import CheckpointError, check_names

# framework parameter name -> canonical name, per layer type
_RENAMES = {
    nn.Linear: {"weight": "kernel"},
    nn.LayerNorm: {"weight": "scale"},
    nn.Embedding: {"weight": "embeddings"},
}
_TRANSPOSED = {(nn.Linear, "weight")}  # torch (out, in) <-> canonical (in, out)


def _canonical_parameters(module):
    """Yield (canonical name, parameter, transpose?) for every parameter, shared ones once."""
    seen = set()
    for prefix, sub in module.named_modules():
        renames = next((r for t, r in _RENAMES.items() if isinstance(sub, t)), {})
        for name, parameter in sub.named_parameters(recurse=False):
            if id(parameter) in seen:  # tied weights are stored once, under their first name
                continue
            seen.add(id(parameter))
            canonical = renames.get(name, name)
            transpose = any(isinstance(sub, t) and name == n for t, n in _TRANSPOSED)
            yield (f"{prefix}.{canonical}" if prefix else canonical), parameter, transpose


def export_params(module: nn.Module) -> dict[str, np.ndarray]:
    """Return ``{canonical name: numpy array}`` (copies) of every parameter of ``module``."""
    params = {}
    for name, parameter, transpose in _canonical_parameters(module):
        value = parameter.detach().cpu().numpy()
        params[name] = np.ascontiguousarray(value.T if transpose else value).copy()
    return params


def import_params(
    module: nn.Module, params: Mapping[str, np.ndarray]
) -> nn.Module:
    """Copy a canonical dictionary into ``module`` in place, exactly; returns ``module``.

    Raises:
        CheckpointError: naming missing or unexpected parameters, or a wrong shape.
    """
    targets = {name: (p, t) for name, p, t in _canonical_parameters(module)}
    check_names(params, targets, "params")
    with torch.no_grad():
        for name, (parameter, transpose) in targets.items():
            value = np.asarray(params[name])
            value = value.T if transpose else value
            if tuple(value.shape) != tuple(parameter.shape):
                expected = tuple(parameter.shape[::-1]) if transpose else tuple(parameter.shape)
                raise CheckpointError(
                    f"params: parameter {name!r} has shape {tuple(np.shape(params[name]))}, "
                    f"expected {expected}"
                )
            parameter.copy_(torch.from_numpy(np.ascontiguousarray(value)).to(parameter.dtype))
    return module
