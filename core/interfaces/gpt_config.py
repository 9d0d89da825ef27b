"""The GPT configuration, once for both backends, and the input checks every backend shares.

The fields can express GPT-2's architecture exactly (``GPTConfig.gpt2_small()``); a tiny
config for tests is one line: ``GPTConfig(vocab_size=16, block_size=8, n_layer=2, n_head=2,
n_embd=32)``.
"""

from __future__ import annotations

from collections.abc import Sequence
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


def check_token_ids(
    shape: Sequence[int | None],
    config: GPTConfig,
    name: str = "idx",
    ids: Any = None,
    more_tokens: int = 0,
) -> None:
    """The one check of token ids for a GPT with ``config``: raise ValueError naming the
    argument ``name``, what was expected and what was given.

    :param shape: the ids' shape, expected ``(batch, time)`` with batch, time >= 1; ``None``
        sizes (a traced graph) pass.
    :param name: the argument's name, for the message (``idx``, ``prompt``, ``new_tokens``).
    :param ids: the ids themselves, anything NumPy reads (an array, a CPU tensor), to check
        their dtype (integer) and values (in ``[0, vocab_size)``); None when unknown (traced).
    :param more_tokens: tokens sharing the context with these (new tokens still to come, or a
        cached prefix): ``time + more_tokens`` must fit in ``block_size``, never truncated.
    """
    shape = tuple(shape)
    if len(shape) != 2:
        raise ValueError(f"{name}: expected token ids of shape (batch, time), got shape {shape}")
    if 0 in shape:
        raise ValueError(f"{name}: expected at least one token per sequence, got shape {shape}")
    if ids is not None and not np.issubdtype(np.asarray(ids).dtype, np.integer):
        raise ValueError(f"{name}: expected integer token ids, got dtype {np.asarray(ids).dtype}")
    time = shape[1]
    if time is not None and time + more_tokens > config.block_size:
        context = f"{time} tokens" + (f" + {more_tokens} more" if more_tokens else "")
        raise ValueError(
            f"{name}: expected at most block_size={config.block_size} tokens in the context, got "
            f"{context} = {time + more_tokens}; shorten it (duetrl never truncates silently)"
        )
    if ids is not None:
        values = np.asarray(ids)
        bad = (values < 0) | (values >= config.vocab_size)
        if np.any(bad):
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"{name}: expected token ids in [0, vocab_size={config.vocab_size}), got "
                f"{int(values[where])} at index {where}"
            )
