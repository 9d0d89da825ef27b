"""The attention contract (outline 2.1.2, 4.1.1, listing 5.1).

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V

=========  ==============================  ===========================================
Symbol     Shape                           Description
=========  ==============================  ===========================================
q          (batch, q_len, d_model)         queries (for self-attention q = k = v = x)
k          (batch, k_len, d_model)         keys
v          (batch, k_len, d_model)         values
mask       broadcastable to                1 = attend, 0 = masked (as listing 5.1);
           (batch, q_len, k_len)           masked scores become ``MASK_FILL_VALUE``
output     (batch, q_len, d_model)         W_o concat_h(Attention(Q W_q^h, K W_k^h, V W_v^h))
weights    (batch, heads, q_len, k_len)    the softmax, returned on request
=========  ==============================  ===========================================

The shape checks live here, once, so that both backends raise the very same message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class AttentionModule(Protocol):
    """Multi-head attention as both backends implement it: ``MultiHeadAttention(d_model,
    num_heads)`` with sub-layers ``q_linear``, ``k_linear``, ``v_linear`` and ``out``."""

    d_model: int
    num_heads: int
    head_dim: int

    def __call__(
        self, q: Any, k: Any, v: Any, mask: Any = None, return_attention_weights: bool = False
    ) -> Any: ...


def check_attention_config(d_model: int, num_heads: int) -> None:
    """Raise ValueError unless ``d_model`` is a positive multiple of ``num_heads``."""
    if not isinstance(d_model, int) or d_model <= 0:
        raise ValueError(f"d_model: expected a positive int, got {d_model!r}")
    if not isinstance(num_heads, int) or num_heads <= 0:
        raise ValueError(f"num_heads: expected a positive int, got {num_heads!r}")
    if d_model % num_heads != 0:
        raise ValueError(
            f"d_model: expected a multiple of num_heads={num_heads}, got d_model={d_model} "
            f"(d_model % num_heads = {d_model % num_heads})"
        )


def _broadcastable(shape: Sequence[int], target: Sequence[int]) -> bool:
    if len(shape) > len(target):
        return False
    return all(s in (1, t) for s, t in zip(reversed(shape), reversed(target)))


def check_attention_inputs(
    q_shape: Sequence[int],
    k_shape: Sequence[int],
    v_shape: Sequence[int],
    mask_shape: Sequence[int] | None,
    d_model: int,
) -> None:
    """Validate the shapes of an attention call; raise ValueError naming the argument.

    :param q_shape: shape of ``q``, expected ``(batch, q_len, d_model)``.
    :param k_shape: shape of ``k``, expected ``(batch, k_len, d_model)``.
    :param v_shape: shape of ``v``, expected ``(batch, k_len, d_model)``.
    :param mask_shape: shape of ``mask`` or None; broadcastable to ``(batch, q_len, k_len)``.
    :param d_model: the module's model width.
    """
    for name, shape in (("q", q_shape), ("k", k_shape), ("v", v_shape)):
        shape = tuple(shape)
        if len(shape) != 3:
            raise ValueError(
                f"{name}: expected rank 3 (batch, length, d_model={d_model}), "
                f"got shape {shape} (rank {len(shape)})"
            )
        if shape[-1] != d_model:
            raise ValueError(
                f"{name}: expected last dimension d_model={d_model}, got shape {shape}"
            )
    q_shape, k_shape, v_shape = tuple(q_shape), tuple(k_shape), tuple(v_shape)
    if not (q_shape[0] == k_shape[0] == v_shape[0]):
        raise ValueError(
            f"q, k, v: expected the same batch size, got shapes {q_shape}, {k_shape}, {v_shape}"
        )
    if k_shape[1] != v_shape[1]:
        raise ValueError(
            f"v: expected the same length as k ({k_shape[1]}), got shape {v_shape}"
        )
    if mask_shape is not None:
        target = (q_shape[0], q_shape[1], k_shape[1])
        if not _broadcastable(tuple(mask_shape), target):
            raise ValueError(
                f"mask: expected a shape broadcastable to (batch, q_len, k_len) = {target}, "
                f"got shape {tuple(mask_shape)}"
            )
