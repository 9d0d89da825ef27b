"""Canonical parameters: one layout both backends speak, saved without pickle.

A *parameter dictionary* maps a dotted name to a NumPy array, ``{"q_linear.kernel": (d, d),
"q_linear.bias": (d,), ...}``. Names follow the modules' attribute names; a dense layer's
kernel has the layout ``(in, out)`` (the math ``y = x @ W + b``), so torch's ``(out, in)``
weight is transposed exactly once, in ``backends/torch``. LayerNorm parameters are
``scale``/``bias``, an embedding table is ``embeddings``.

Files (safetensors, atomic, no pickle) are :mod:`duetrl.core.checkpoint`'s job; here
:func:`validate_params` says which parameter is missing, unexpected or misshapen.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, or does not fit the model it is loaded into
    (defined here, below ``duetrl.core.checkpoint``, which re-exports it: both raise it)."""


Params = dict[str, np.ndarray]
"""A canonical parameter dictionary."""


def describe(params: Mapping[str, Any]) -> dict[str, tuple[tuple[int, ...], str]]:
    """``{name: (shape, dtype name)}`` of a parameter dictionary: the spec to validate against."""
    return {name: (tuple(np.shape(v)), str(np.asarray(v).dtype)) for name, v in params.items()}


def _listing(names: list[str], most: int = 8) -> str:
    """``['a', 'b', ...]``: at most ``most`` names, then how many more."""
    shown = repr(names[:most])
    return shown if len(names) <= most else f"{shown[:-1]}, ... {len(names) - most} more]"


def check_names(params: Mapping[str, Any], expected: Mapping[str, Any], source: str) -> None:
    """Raise CheckpointError naming the missing and unexpected parameter names, if any."""
    missing = sorted(set(expected) - set(params))
    unexpected = sorted(set(params) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{source}: parameters do not match the model: missing {_listing(missing)}, "
            f"unexpected {_listing(unexpected)}"
        )


def validate_params(
    params: Mapping[str, Any],
    expected: Mapping[str, tuple[tuple[int, ...], str]],
    source: str = "params",
    check_dtype: bool = True,
) -> None:
    """Check that ``params`` has exactly the expected names, shapes and dtypes.

    :param params: the dictionary to check.
    :param expected: ``{name: (shape, dtype)}``, as :func:`describe` returns.
    :param source: what is checked, for the message (e.g. a file name).
    :param check_dtype: also compare dtypes.
    :raises CheckpointError: naming every missing and unexpected parameter, or the first
        parameter with a wrong shape or dtype.
    """
    check_names(params, expected, source)
    for name, (shape, dtype) in expected.items():
        value = np.asarray(params[name])
        if tuple(value.shape) != tuple(shape):
            raise CheckpointError(
                f"{source}: parameter {name!r} has shape {tuple(value.shape)}, "
                f"expected {tuple(shape)}"
            )
        if check_dtype and str(value.dtype) != str(dtype):
            raise CheckpointError(
                f"{source}: parameter {name!r} has dtype {value.dtype}, expected {dtype}"
            )
        if np.issubdtype(value.dtype, np.floating) and not np.all(np.isfinite(value)):
            raise CheckpointError(f"{source}: parameter {name!r} contains NaN or inf")
