"""Canonical parameters: one layout both backends speak, saved without pickle.

A *parameter dictionary* maps a dotted name to a NumPy array, ``{"q_linear.kernel": (d, d),
"q_linear.bias": (d,), ...}``. Names follow the modules' attribute names; a dense layer's
kernel has the layout ``(in, out)`` (the math ``y = x @ W + b``), so torch's ``(out, in)``
weight is transposed exactly once, in ``backends/torch``. LayerNorm parameters are
``scale``/``bias``, an embedding table is ``embeddings``.

Files are safetensors: written to a temporary file, flushed, then renamed over the target, so
an interrupted save never destroys the previous file; loading reads tensors only, no pickle,
and :func:`validate_params` says which parameter is missing, unexpected or misshapen.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

Params = dict[str, np.ndarray]
"""A canonical parameter dictionary."""


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, or does not fit the model it is loaded into."""


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` then atomically rename ``tmp_path`` onto ``path``.

    The temporary file sits in the target's folder (a rename is atomic only within one file
    system); on any error it is removed and the old ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def save_params(
    params: Mapping[str, Any], path: str | os.PathLike, metadata: Mapping[str, Any] | None = None
) -> Path:
    """Save a parameter dictionary to a safetensors file, atomically.

    :param params: ``{name: array}``; arrays are stored with their own dtype and shape.
    :param path: target file (``.safetensors``); its folder is created.
    :param metadata: JSON-serialisable facts stored beside the tensors (config, step, ...).
    :returns: the path written.
    """
    from safetensors.numpy import save_file

    arrays = {name: np.ascontiguousarray(np.asarray(value)) for name, value in params.items()}
    meta = {"duetrl": json.dumps(dict(metadata or {}), sort_keys=True)}
    return atomic_write(path, lambda tmp: save_file(arrays, tmp, metadata=meta))


def load_params(path: str | os.PathLike) -> tuple[Params, dict[str, Any]]:
    """Load a parameter dictionary and its metadata from a safetensors file.

    :raises CheckpointError: if the file does not exist or is not a readable safetensors file.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint: no file at {str(path)!r}")
    try:
        with safe_open(str(path), framework="numpy") as f:
            params = {name: f.get_tensor(name) for name in f.keys()}
            raw_meta = (f.metadata() or {}).get("duetrl", "{}")
        metadata = json.loads(raw_meta)
    except CheckpointError:
        raise
    except Exception as error:  # safetensors raises several types for a damaged file
        raise CheckpointError(
            f"checkpoint: {str(path)!r} is not a valid safetensors file ({error})"
        ) from error
    return params, metadata


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
