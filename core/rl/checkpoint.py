"""Training checkpoints: parameters, optimiser state and progress in one safetensors file.

Tensors are stored under ``params.<canonical name>`` and ``optim.<name>``; the metadata holds
the algorithm, environment, settings and counters, so ``--resume`` can continue a run and a
checkpoint from another algorithm, environment or network shape is refused with a clear message.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from duetrl.core.weights import CheckpointError, describe, load_params, save_params, validate_params


def save_checkpoint(
    path: str | os.PathLike, params: dict, optimizer_state: dict, metadata: dict[str, Any]
) -> Path:
    """Write params, optimiser state and ``metadata`` atomically (an interrupted save keeps
    the previous file)."""
    tensors = {f"params.{k}": np.asarray(v) for k, v in params.items()}
    tensors.update({f"optim.{k}": np.asarray(v) for k, v in optimizer_state.items()})
    return save_params(tensors, path, metadata)


def load_checkpoint(
    path: str | os.PathLike, algorithm: str, env_id: str, expected_params: dict
) -> tuple[dict, dict, dict]:
    """Read a checkpoint and check it fits: same algorithm, environment and parameter shapes.

    :param expected_params: the current agent's parameters (names, shapes, dtypes to match).
    :returns: ``(params, optimizer state, metadata)``.
    :raises CheckpointError: naming what does not match and what was expected.
    """
    tensors, metadata = load_params(path)
    source = f"checkpoint {str(path)!r}"
    if metadata.get("algorithm") != algorithm:
        raise CheckpointError(
            f"{source}: was written by algorithm {metadata.get('algorithm')!r}, expected "
            f"{algorithm!r}; pick another --out folder or the matching algorithm"
        )
    if metadata.get("env_id") != env_id:
        raise CheckpointError(
            f"{source}: was written for env {metadata.get('env_id')!r}, expected {env_id!r}"
        )
    params = {k[len("params."):]: v for k, v in tensors.items() if k.startswith("params.")}
    optimizer_state = {k[len("optim."):]: v for k, v in tensors.items() if k.startswith("optim.")}
    validate_params(params, describe(expected_params), source=source)
    return params, optimizer_state, metadata
