"""Scaled dot-product and multi-head attention in float64 NumPy (outline 4.1.1, listing 5.1).

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V

    MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W_o + b_o,
    head_i = Attention(Q W_q^i + b_q^i, K W_k^i + b_k^i, V W_v^i + b_v^i)
"""

from __future__ import annotations

import numpy as np

from duetrl.core.constants import MASK_FILL_VALUE
from duetrl.core.initializers import dense_params
from duetrl.core.interfaces.attention import check_attention_config, check_attention_inputs

ATTENTION_LAYERS = ("q_linear", "k_linear", "v_linear", "out")


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """softmax(x)_i = exp(x_i - max x) / sum_j exp(x_j - max x): the max shift avoids overflow."""
    shifted = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=axis, keepdims=True)


def causal_mask(length: int, dtype: str = "float64") -> np.ndarray:
    """Lower-triangular ``(length, length)`` mask: position t may attend to positions <= t."""
    return np.tril(np.ones((length, length), dtype=dtype))


def scaled_dot_product_attention(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    mask: np.ndarray | None = None,
    return_attention_weights: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """softmax(q k^T / sqrt(d_k)) v over the last two axes.

    :param q: ``(..., q_len, d_k)``.
    :param k: ``(..., k_len, d_k)``.
    :param v: ``(..., k_len, d_v)``.
    :param mask: broadcastable to ``(..., q_len, k_len)``; 1 = attend, 0 = masked. Masked
        scores are *replaced* by ``MASK_FILL_VALUE`` (so a fully masked row is uniform).
    :param return_attention_weights: also return the softmax ``(..., q_len, k_len)``.
    :returns: ``(..., q_len, d_v)``, and the weights on request.
    """
    d_k = q.shape[-1]
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(d_k)  # (..., q_len, k_len)
    if mask is not None:
        scores = np.where(mask == 0, MASK_FILL_VALUE, scores)
    weights = softmax(scores, axis=-1)
    output = weights @ v  # (..., q_len, d_v)
    return (output, weights) if return_attention_weights else output


def head_broadcast_mask(mask: np.ndarray) -> np.ndarray:
    """A mask broadcastable to (B, q_len, k_len) as (B or 1, 1, q_len or 1, k_len)."""
    mask = mask.reshape((1,) * (3 - mask.ndim) + mask.shape)  # rank 3
    return mask[:, None]  # (B, 1, q_len, k_len)


def init_multi_head_attention_params(d_model: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Canonical float64 parameters of ``MultiHeadAttention(d_model, num_heads)``.

    Glorot-uniform kernels ``(d_model, d_model)`` and small uniform biases (non-zero, so that
    tests exercise them), drawn from ``numpy.random.default_rng(seed)``.
    """
    rng = np.random.default_rng(seed)
    params: dict[str, np.ndarray] = {}
    for name in ATTENTION_LAYERS:
        params.update(dense_params(rng, name, d_model, d_model, bias_scale=0.1))
    return params


def multi_head_attention(
    params: dict[str, np.ndarray],
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    num_heads: int,
    mask: np.ndarray | None = None,
    return_attention_weights: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Multi-head attention of listing 5.1 with canonical ``params``.

    :param params: ``{q_linear,k_linear,v_linear,out}.{kernel (d, d), bias (d,)}``.
    :param q: ``(batch, q_len, d_model)``; ``k``, ``v``: ``(batch, k_len, d_model)``.
    :param num_heads: h; ``head_dim = d_model // h``.
    :param mask: broadcastable to ``(batch, q_len, k_len)``, 1 = attend, 0 = masked.
    :returns: ``(batch, q_len, d_model)``; with the weights ``(batch, h, q_len, k_len)``.
    """
    d_model = params["q_linear.kernel"].shape[0]
    check_attention_config(d_model, num_heads)
    check_attention_inputs(q.shape, k.shape, v.shape, None if mask is None else mask.shape, d_model)
    head_dim = d_model // num_heads

    def project(x: np.ndarray, name: str) -> np.ndarray:
        y = x @ params[f"{name}.kernel"] + params[f"{name}.bias"]  # (B, T, d_model)
        b, t, _ = y.shape
        return y.reshape(b, t, num_heads, head_dim).transpose(0, 2, 1, 3)  # (B, h, T, head_dim)

    qh, kh, vh = project(q, "q_linear"), project(k, "k_linear"), project(v, "v_linear")
    head_mask = None if mask is None else head_broadcast_mask(mask)
    heads, weights = scaled_dot_product_attention(qh, kh, vh, head_mask, True)
    b, _, t_q, _ = heads.shape
    concat = heads.transpose(0, 2, 1, 3).reshape(b, t_q, d_model)  # (B, T_q, d_model)
    output = concat @ params["out.kernel"] + params["out.bias"]
    return (output, weights) if return_attention_weights else output
