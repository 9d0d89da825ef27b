"""The GPT configuration, once for both backends, and the input checks every backend shares.

The fields can express GPT-2's architecture exactly (``GPTConfig.gpt2_small()``); a tiny
config for tests is one line: ``GPTConfig(vocab_size=16, block_size=8, n_layer=2, n_head=2,
n_embd=32)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from duetrl.core.constants import LAYER_NORM_EPS

GELU_VARIANTS = ("tanh", "none")


@dataclass(frozen=True)
class GPTConfig:
    """A GPT-style decoder: token + position embeddings, ``n_layer`` pre-LayerNorm blocks,
    a final LayerNorm and an output head tied to the token embeddings."""

    vocab_size: int = 256  # number of token ids; GPT-2: 50257
    block_size: int = 128  # longest context (number of learned positions); GPT-2: 1024
    n_layer: int = 4  # number of Transformer blocks; GPT-2 small: 12
    n_head: int = 4  # attention heads per block; GPT-2 small: 12
    n_embd: int = 256  # model width d_model; GPT-2 small: 768
    dropout: float = 0.0  # dropout rate after embeddings, attention output and MLP
    bias: bool = True  # biases in Linear layers and LayerNorms (GPT-2: True; only True supported)
    layer_norm_eps: float = LAYER_NORM_EPS  # LayerNorm epsilon (GPT-2: 1e-5, Keras default 1e-3)
    gelu: str = "tanh"  # GELU variant: "tanh" approximation (GPT-2's gelu_new) or exact "none"
    mlp_ratio: int = 4  # MLP hidden width = mlp_ratio * n_embd (GPT-2: 4)

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd", "mlp_ratio"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        if self.n_embd % self.n_head != 0:
            raise ValueError(
                f"n_embd: expected a multiple of n_head={self.n_head}, got n_embd={self.n_embd}"
            )
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"dropout: expected a rate in [0, 1), got {self.dropout!r}")
        if self.bias is not True:
            raise ValueError(
                f"bias: only True is supported (the attention layers always have biases), "
                f"got {self.bias!r}"
            )
        if not float(self.layer_norm_eps) > 0:
            raise ValueError(
                f"layer_norm_eps: expected a positive float, got {self.layer_norm_eps!r}"
            )
        if self.gelu not in GELU_VARIANTS:
            raise ValueError(f"gelu: expected one of {list(GELU_VARIANTS)}, got {self.gelu!r}")

    @property
    def head_dim(self) -> int:
        """Width of one attention head, n_embd / n_head."""
        return self.n_embd // self.n_head

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain JSON-serialisable values (stored in checkpoints)."""
        return {k: (v.item() if hasattr(v, "item") else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> GPTConfig:
        """Rebuild a config from :meth:`to_dict`; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"config: unknown fields {unknown}; known fields are {sorted(known)}")
        return cls(**values)

    @classmethod
    def gpt2_small(cls) -> GPTConfig:
        """GPT-2 small (124M parameters) exactly."""
        return cls(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768)


def check_token_ids(ids: Any, config: GPTConfig, name: str = "idx") -> np.ndarray:
    """Validate token ids ``(batch, time)`` for a model with ``config``; returns them as int64.

    :raises ValueError: for a wrong rank, an empty sequence, a context longer than
        ``block_size`` (never silently truncated) or ids outside ``[0, vocab_size)``.
    """
    array = np.asarray(ids)
    if array.ndim != 2:
        raise ValueError(
            f"{name}: expected token ids of shape (batch, time), got shape {array.shape}"
        )
    if array.shape[1] == 0 or array.shape[0] == 0:
        raise ValueError(
            f"{name}: expected at least one token per sequence, got shape {array.shape}"
        )
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name}: expected integer token ids, got dtype {array.dtype}")
    if array.shape[1] > config.block_size:
        raise ValueError(
            f"{name}: context of {array.shape[1]} tokens is longer than the model's block_size="
            f"{config.block_size}; shorten it (duetrl never truncates silently)"
        )
    check_id_range(array, config.vocab_size, name)
    return array.astype(np.int64)


def check_id_range(ids: np.ndarray, vocab_size: int, name: str = "idx") -> None:
    """Raise ValueError naming the first token id outside ``[0, vocab_size)``."""
    bad = (ids < 0) | (ids >= vocab_size)
    if np.any(bad):
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name}: token ids must lie in [0, vocab_size={vocab_size}), got {int(ids[where])} "
            f"at index {where}"
        )


def check_token_shape(shape: tuple, config: GPTConfig, name: str = "idx") -> None:
    """Raise ValueError unless ``shape`` is ``(batch, time)`` with 1 <= time <= block_size
    (``None`` dimensions, as in a traced graph, are accepted)."""
    shape = tuple(shape)
    if len(shape) != 2:
        raise ValueError(f"{name}: expected token ids of shape (batch, time), got shape {shape}")
    time = shape[1]
    if time is not None and time == 0:
        raise ValueError(f"{name}: expected at least one token per sequence, got shape {shape}")
    if time is not None and time > config.block_size:
        raise ValueError(
            f"{name}: context of {time} tokens is longer than the model's block_size="
            f"{config.block_size}; shorten it (duetrl never truncates silently)"
        )


def check_id_bounds(low: int, high: int, vocab_size: int, name: str = "idx") -> None:
    """Raise ValueError if the smallest or largest token id lies outside ``[0, vocab_size)``."""
    if low < 0 or high >= vocab_size:
        bad = low if low < 0 else high
        raise ValueError(f"{name}: token ids must lie in [0, vocab_size={vocab_size}), got {bad}")
