"""Multi-head attention: the outline's listing 5.1, repaired, written once per framework.

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V

The listing forgot ``import math`` and ``import torch.nn.functional as F``. Both backends keep
its class, attribute names and steps, so ``duetrl diff attention`` shows exactly what differs
between the two frameworks.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from duetrl.backends.torch.runtime import resolve_dtype
from duetrl.core.constants import MASK_FILL_VALUE
from duetrl.core.interfaces.attention import check_attention_config, check_attention_inputs


def scaled_dot_product_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    return_attention_weights: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """softmax(q k^T / sqrt(d_k)) v over the last two axes.

    Args:
        q: ``(..., q_len, d_k)``; k: ``(..., k_len, d_k)``; v: ``(..., k_len, d_v)``.
        mask: broadcastable to ``(..., q_len, k_len)``; 1 = attend, 0 = masked.
        return_attention_weights: also return the softmax ``(..., q_len, k_len)``.

    Returns:
        ``(..., q_len, d_v)``, and the attention weights on request.
    """
    d_k = q.shape[-1]
    scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(d_k)  # (..., q_len, k_len)
    if mask is not None:
        # the fill *replaces* the score, so a fully masked row is uniform, never NaN
        scores = scores.masked_fill(mask == 0, MASK_FILL_VALUE)
    attention_weights = F.softmax(scores, dim=-1)
    output = torch.matmul(attention_weights, v)  # (..., q_len, d_v)
    if return_attention_weights:
        return output, attention_weights
    return output


def fused_attention(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None
) -> Tensor:
    """The same equation through the framework's fused kernel, where it has one.

    Faster (no (q_len, k_len) softmax kept for backward) but returns no weights. A query with
    nothing to attend to gets mean(v), the uniform average of the explicit path (PyTorch's
    kernel alone would give 0). TensorFlow has no fused kernel on CPU: inside ``tf.function``
    Grappler fuses the explicit ops.
    """
    if mask is None:
        return F.scaled_dot_product_attention(q, k, v)
    attend = mask != 0  # the fused kernel's boolean mask: True = attend, as ours
    output = F.scaled_dot_product_attention(q, k, v, attn_mask=attend)
    fully_masked = ~attend.any(dim=-1, keepdim=True)  # (..., q_len, 1)
    return torch.where(fully_masked, v.mean(dim=-2, keepdim=True), output)


def head_broadcast_mask(mask: Tensor) -> Tensor:
    """A mask broadcastable to (B, q_len, k_len) as (B or 1, 1, q_len or 1, k_len)."""
    for _ in range(3 - mask.ndim):  # rank 3
        mask = mask[None]
    return mask[:, None]  # one mask for every head


class MultiHeadAttention(nn.Module):
    """Multi-head attention (listing 5.1): h heads of width d_model / h, then a projection.

    Args:
        d_model: model width; must be a multiple of ``num_heads``.
        num_heads: number of heads h.
        dtype: parameter dtype (``"float32"`` by default, ``"float64"`` for tests).

    Example:
        >>> attention = MultiHeadAttention(d_model=64, num_heads=4)
        >>> y = attention(x, x, x, mask)  # x: (batch, time, 64) -> y: (batch, time, 64)
    """

    def __init__(self, d_model: int, num_heads: int, dtype: str | None = None) -> None:
        super().__init__()
        check_attention_config(d_model, num_heads)
        self.d_model = d_model
        self.num_heads = num_heads
        self.head_dim = d_model // num_heads

        # pinned initialiser (duetrl.core.initializers): Glorot-uniform kernels, zero biases
        self.q_linear = nn.Linear(d_model, d_model, dtype=resolve_dtype(dtype))
        self.k_linear = nn.Linear(d_model, d_model, dtype=resolve_dtype(dtype))
        self.v_linear = nn.Linear(d_model, d_model, dtype=resolve_dtype(dtype))
        self.out = nn.Linear(d_model, d_model, dtype=resolve_dtype(dtype))
        for linear in (self.q_linear, self.k_linear, self.v_linear, self.out):
            nn.init.xavier_uniform_(linear.weight)
            nn.init.zeros_(linear.bias)

    def forward(self, q, k, v, mask=None, return_attention_weights=False):
        check_attention_inputs(
            q.shape, k.shape, v.shape, None if mask is None else mask.shape, self.d_model
        )
        bs = q.shape[0]

        # (B, T, d_model) -> (B, T, heads, head_dim) -> (B, heads, T, head_dim)
        q = self.q_linear(q).view(bs, -1, self.num_heads, self.head_dim)
        k = self.k_linear(k).view(bs, -1, self.num_heads, self.head_dim)
        v = self.v_linear(v).view(bs, -1, self.num_heads, self.head_dim)

        q = q.transpose(1, 2)
        k = k.transpose(1, 2)
        v = v.transpose(1, 2)

        if mask is not None:
            mask = head_broadcast_mask(mask)
        if return_attention_weights:
            output, attention_weights = scaled_dot_product_attention(q, k, v, mask, True)
        else:
            output = fused_attention(q, k, v, mask)

        # (B, heads, T, head_dim) -> (B, T, heads, head_dim) -> (B, T, d_model)
        output = output.transpose(1, 2).reshape(bs, -1, self.d_model)
        output = self.out(output)
        if return_attention_weights:
            return output, attention_weights
        return output
