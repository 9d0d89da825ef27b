"""GPT checkpoints: weights, config, tokeniser, optimiser moments and step in one safetensors
file, written atomically (``duetrl.core.weights``), never pickled, validated on load."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from duetrl.core.lm.config import GPTConfig
from duetrl.core.lm.params import check_params
from duetrl.core.weights import CheckpointError, load_params, save_params

KIND = "duetrl.gpt"
_OPTIM = "optim."


@dataclass
class Checkpoint:
    """What a GPT checkpoint holds.

    config: the model's configuration.
    params: canonical parameters.
    optimizer: AdamW state ``{"step", "m.<name>", "v.<name>"}`` (empty if not saved).
    step: number of optimiser updates done.
    metadata: everything else (tokeniser, training settings, backend, history).
    """

    config: GPTConfig
    params: dict[str, np.ndarray]
    optimizer: dict[str, np.ndarray] = field(default_factory=dict)
    step: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)


def save_checkpoint(path: str | os.PathLike, checkpoint: Checkpoint) -> Path:
    """Write ``checkpoint`` to ``path`` atomically (an interrupted save keeps the old file)."""
    arrays = dict(checkpoint.params)
    arrays.update({_OPTIM + k: v for k, v in checkpoint.optimizer.items()})
    metadata = {
        **checkpoint.metadata,
        "kind": KIND,
        "config": checkpoint.config.to_dict(),
        "step": int(checkpoint.step),
    }
    return save_params(arrays, path, metadata)


def load_checkpoint(
    path: str | os.PathLike, expected_config: GPTConfig | None = None
) -> Checkpoint:
    """Read and validate a checkpoint.

    :param expected_config: if given, the checkpoint's config must equal it.
    :raises CheckpointError: for a missing or damaged file, a file that is not a GPT
        checkpoint, parameters that do not fit its config, or a config other than expected
        (naming the fields that differ).
    """
    arrays, metadata = load_params(path)
    if metadata.get("kind") != KIND or "config" not in metadata:
        raise CheckpointError(
            f"checkpoint: {str(path)!r} is not a duetrl GPT checkpoint (kind "
            f"{metadata.get('kind')!r}, expected {KIND!r})"
        )
    try:
        config = GPTConfig.from_dict(metadata["config"])
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"checkpoint: {str(path)!r} has an invalid config: {error}") from None
    if expected_config is not None and config != expected_config:
        a, b = config.to_dict(), expected_config.to_dict()
        differences = {k: (a[k], b[k]) for k in a if a[k] != b[k]}
        raise CheckpointError(
            f"checkpoint: {str(path)!r} was saved with another config; differing fields "
            f"(checkpoint, expected): {differences}"
        )
    params = {k: v for k, v in arrays.items() if not k.startswith(_OPTIM)}
    optimizer = {k[len(_OPTIM) :]: v for k, v in arrays.items() if k.startswith(_OPTIM)}
    check_params(params, config, source=f"checkpoint {str(path)!r}")
    step = int(metadata.pop("step", 0))
    metadata = {k: v for k, v in metadata.items() if k not in ("kind", "config")}
    return Checkpoint(config, params, optimizer, step, metadata)
