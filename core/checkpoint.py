"""Checkpoints: one file format for every trainer (language model, RL agents, RLHF).

A checkpoint is one safetensors file. Its tensors are grouped, each name ``group.name``:

    params.wte.embeddings        the model's canonical parameters (duetrl.core.weights)
    optim.m.wte.embeddings       the optimiser's state (Adam moments, step)
    value_head.kernel            any further group a trainer needs (a value head, a reference)

Beside the tensors, one JSON object (safetensors' string metadata, key ``"duetrl"``) holds the
``kind`` of checkpoint (``"duetrl.gpt"``, ``"duetrl.rl"``, ...), the format version and the
trainer's own facts: config, step or update counters, settings, history, tokeniser. Together
they are the state a run resumes from.

Writing is atomic: the file is written to a temporary file in the same folder, flushed to disk
(``fsync``), then renamed over the target, so a crash or an error mid-save leaves the previous
checkpoint intact. Reading never unpickles anything; a missing, truncated or corrupt file, a
checkpoint of another kind, other settings (``match``) or other tensor shapes (``expected``)
raises :class:`CheckpointError` naming what was expected and what was found.

Example:
    >>> save_checkpoint("run/model.safetensors", Checkpoint(
    ...     "duetrl.gpt", {"params": params, "optim": optimizer_state}, {"step": 100}))
    >>> checkpoint = load_checkpoint("run/model.safetensors", kind="duetrl.gpt")
    >>> checkpoint.tensors["params"], checkpoint.metadata["step"]
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from duetrl.core.weights import CheckpointError, validate_params

FORMAT_VERSION = 1
"""Version of the layout above, stored in every file; a newer version is refused on load."""

__all__ = [
    "Checkpoint", "CheckpointError", "atomic_write", "load_checkpoint", "read_file",
    "save_checkpoint",
]

METADATA_KEY = "duetrl"
"""The safetensors metadata key holding the JSON object."""

Spec = Mapping[str, tuple[tuple[int, ...], str]]
"""``{name: (shape, dtype name)}`` of one group, as :func:`duetrl.core.weights.describe` returns."""


@dataclass
class Checkpoint:
    """What a checkpoint file holds.

    kind: what wrote it, e.g. ``"duetrl.gpt"`` or ``"duetrl.rl"``; checked on load.
    tensors: ``{group: {name: array}}``, e.g. ``{"params": ..., "optim": ...}``; group names
        have no dot.
    metadata: JSON-serialisable facts: config, counters, settings, history.
    """

    kind: str
    tensors: dict[str, dict[str, np.ndarray]]
    metadata: dict[str, Any] = field(default_factory=dict)


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)``, flush the file to disk, then rename it onto ``path``.

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


def save_checkpoint(path: str | os.PathLike, checkpoint: Checkpoint) -> Path:
    """Write ``checkpoint`` to ``path`` (``.safetensors``) atomically; returns the path.

    :param path: target file; its folder is created.
    :param checkpoint: the kind, tensor groups and metadata to store.
    :raises ValueError: for a group name with a dot or metadata that JSON cannot hold.
    """
    from safetensors.numpy import save_file

    arrays = {}
    for group, tensors in checkpoint.tensors.items():
        if not group or "." in group:
            raise ValueError(f"tensors: expected group names without a dot, got {group!r}")
        for name, value in tensors.items():
            arrays[f"{group}.{name}"] = np.ascontiguousarray(np.asarray(value))
    facts = {**checkpoint.metadata, "kind": checkpoint.kind, "format": FORMAT_VERSION}
    try:
        text = json.dumps(facts, sort_keys=True, allow_nan=True)
    except TypeError as error:
        raise ValueError(f"metadata: expected JSON-serialisable values ({error})") from None
    return atomic_write(path, lambda tmp: save_file(arrays, tmp, metadata={METADATA_KEY: text}))


def read_file(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The raw contents of a checkpoint file: ``({"group.name": array}, metadata)``.

    :raises CheckpointError: if there is no file, or it is not a readable safetensors file.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint: no file at {str(path)!r}")
    try:
        with safe_open(str(path), framework="numpy") as f:
            arrays = {name: f.get_tensor(name) for name in f.keys()}
            text = (f.metadata() or {}).get(METADATA_KEY, "{}")
        metadata = json.loads(text)
    except Exception as error:  # safetensors raises several types for a damaged file
        raise CheckpointError(
            f"checkpoint: {str(path)!r} is not a valid safetensors file ({error})"
        ) from error
    if not isinstance(metadata, dict):
        raise CheckpointError(f"checkpoint: {str(path)!r} has metadata {metadata!r}, not an object")
    return arrays, metadata


def _mismatch(key: str, found: Any, expected: Any) -> str:
    """Why metadata field ``key`` does not match: the differing fields of two dicts, else both."""
    if isinstance(found, Mapping) and isinstance(expected, Mapping):
        keys = sorted(set(found) | set(expected))
        differing = {
            k: (found.get(k, "<absent>"), expected.get(k, "<absent>"))
            for k in keys
            if found.get(k, "<absent>") != expected.get(k, "<absent>")
        }
        return f"was written with another {key}; fields (checkpoint, expected): {differing}"
    return f"was written by {key} {found!r}, expected {expected!r}"


def load_checkpoint(
    path: str | os.PathLike,
    kind: str | None = None,
    match: Mapping[str, Any] | None = None,
    expected: Mapping[str, Spec] | None = None,
    check_dtype: bool = True,
) -> Checkpoint:
    """Read a checkpoint and check that it fits before anything is loaded from it.

    :param path: the ``.safetensors`` file.
    :param kind: the kind it must have (None: any).
    :param match: metadata fields it must hold with these values, e.g. ``{"algorithm": "ppo"}``
        or ``{"config": config.to_dict()}`` (a dict is compared field by field).
    :param expected: ``{group: spec}``: every such group must hold exactly these names and
        shapes (and dtypes, with ``check_dtype``); see :func:`duetrl.core.weights.describe`.
    :param check_dtype: compare dtypes too when checking ``expected``.
    :raises CheckpointError: for a missing, truncated or corrupt file, a newer format, another
        kind, a ``match`` field that differs (naming the differing fields) or tensors that do
        not fit ``expected`` (naming the first one).
    """
    arrays, metadata = read_file(path)
    source = f"checkpoint {str(path)!r}"
    version = metadata.pop("format", None)
    found_kind = metadata.pop("kind", None)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{source}: format version {version!r} is not one this duetrl reads "
            f"(1..{FORMAT_VERSION}); was it written by duetrl?"
        )
    if kind is not None and found_kind != kind:
        raise CheckpointError(f"{source}: is a {found_kind!r} checkpoint, expected {kind!r}")
    for key, value in (match or {}).items():
        if metadata.get(key) != value:
            raise CheckpointError(f"{source}: {_mismatch(key, metadata.get(key), value)}")
    tensors: dict[str, dict[str, np.ndarray]] = {}
    for name, value in arrays.items():
        group, _, rest = name.partition(".")
        tensors.setdefault(group, {})[rest] = value
    for group, spec in (expected or {}).items():
        validate_params(tensors.get(group, {}), spec, f"{source} [{group}]", check_dtype)
    return Checkpoint(str(found_kind), tensors, metadata)


def require_same_settings(saved: Any, now: Mapping[str, Any], source: str,
                          may_change: tuple[str, ...] = (),
                          defaults: Mapping[str, Any] | None = None) -> None:
    """Refuse to resume from a checkpoint written with other settings.

    ``saved``: the settings the checkpoint holds (a dict); ``now``: this run's. Every field but
    ``may_change`` must be equal. A field the checkpoint lacks (it was written before the field
    existed) is compared as ``defaults[field]`` when ``defaults`` has it, else as missing.

    :raises CheckpointError: naming each differing field as (checkpoint, now).
    """
    if not isinstance(saved, Mapping):
        raise CheckpointError(f"checkpoint {source!r}: holds no settings (expected a dict, got "
                              f"{type(saved).__name__}); resume with a checkpoint of this run")
    defaults = defaults or {}
    differing = {}
    for key, value in now.items():
        held = saved.get(key, defaults.get(key))
        if key not in may_change and held != value:
            differing[key] = (held, value)
    if differing:
        changeable = f"; only {list(may_change)} may change on resume" if may_change else ""
        raise CheckpointError(f"checkpoint {source!r}: was written with other settings; fields "
                              f"(checkpoint, now): {differing}{changeable}")
