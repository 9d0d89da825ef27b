"""Multi-head attention: the outline's listing 5.1, repaired, written once per framework.

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V

The listing forgot ``import math`` and ``import torch.nn.functional as F``. Both backends keep
its class, attribute names and steps, so ``duetrl diff attention`` shows exactly what differs
between the two frameworks.
"""

import math

import tensorflow as tf
from keras import layers
from tensorflow import Tensor

from duetrl.backends.tf.runtime import resolve_dtype
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
    scores = tf.matmul(q, k, transpose_b=True) / math.sqrt(d_k)  # (..., q_len, k_len)
    if mask is not None:
        # the fill *replaces* the score, so a fully masked row is uniform, never NaN
        scores = tf.where(mask == 0, tf.cast(MASK_FILL_VALUE, scores.dtype), scores)
    attention_weights = tf.nn.softmax(scores, axis=-1)
    output = tf.matmul(attention_weights, v)  # (..., q_len, d_v)
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
    return scaled_dot_product_attention(q, k, v, mask)


def head_broadcast_mask(mask: Tensor) -> Tensor:
    """A mask broadcastable to (B, q_len, k_len) as (B or 1, 1, q_len or 1, k_len)."""
    for _ in range(3 - mask.ndim):  # rank 3
        mask = mask[None]
    return mask[:, None]  # one mask for every head


class MultiHeadAttention(layers.Layer):
    """Multi-head attention (listing 5.1): h heads of width d_model / h, then a projection.

    Args:
        d_model: model width; must be a multiple of ``num_heads``.
        num_heads: number of heads h.
        dtype: parameter dtype (``"float32"`` by default, ``"float64"`` for tests).

    Example:
        >>> attention = MultiHeadAttention(d_model=64, num_heads=4)
        >>> y = attention(x, x, x, mask)  # x: (batch, time, 64) -> y: (batch, time, 64)
    """

    def __init__(self, d_model: int, num_heads: int, dtype: str | None = None, **kwargs) -> None:
        super().__init__(dtype=resolve_dtype(dtype), **kwargs)
        check_attention_config(d_model, num_heads)
        self.d_model = d_model
        self.num_heads = num_heads
        self.head_dim = d_model // num_heads

        # pinned initialiser (duetrl.core.initializers): Glorot-uniform kernels, zero biases
        pinned = dict(kernel_initializer="glorot_uniform", bias_initializer="zeros")
        self.q_linear = layers.Dense(d_model, dtype=resolve_dtype(dtype), **pinned)
        self.k_linear = layers.Dense(d_model, dtype=resolve_dtype(dtype), **pinned)
        self.v_linear = layers.Dense(d_model, dtype=resolve_dtype(dtype), **pinned)
        self.out = layers.Dense(d_model, dtype=resolve_dtype(dtype), **pinned)
        for linear in (self.q_linear, self.k_linear, self.v_linear, self.out):
            linear.build((None, d_model))  # the weights now: their sizes are known
        self.built = True  # every sublayer is built: no build() call left to Keras

    def __call__(self, q, k, v, mask=None, **kwargs):  # before Keras wraps our error message
        check_attention_inputs(
            q.shape, k.shape, v.shape, None if mask is None else mask.shape, self.d_model
        )
        return super().__call__(q, k, v, mask, **kwargs)

    def call(self, q, k, v, mask=None, return_attention_weights=False):
        bs = tf.shape(q)[0]

        # (B, T, d_model) -> (B, T, heads, head_dim) -> (B, heads, T, head_dim)
        q = tf.reshape(self.q_linear(q), (bs, -1, self.num_heads, self.head_dim))
        k = tf.reshape(self.k_linear(k), (bs, -1, self.num_heads, self.head_dim))
        v = tf.reshape(self.v_linear(v), (bs, -1, self.num_heads, self.head_dim))

        q = tf.transpose(q, (0, 2, 1, 3))
        k = tf.transpose(k, (0, 2, 1, 3))
        v = tf.transpose(v, (0, 2, 1, 3))

        if mask is not None:
            mask = head_broadcast_mask(tf.cast(mask, q.dtype))
        if return_attention_weights:
            output, attention_weights = scaled_dot_product_attention(q, k, v, mask, True)
        else:
            output = fused_attention(q, k, v, mask)

        # (B, heads, T, head_dim) -> (B, T, heads, head_dim) -> (B, T, d_model)
        output = tf.reshape(tf.transpose(output, (0, 2, 1, 3)), (bs, -1, self.d_model))
        output = self.out(output)
        if return_attention_weights:
            return output, attention_weights
        return output

    def get_config(self) -> dict:
        return {**super().get_config(), "d_model": self.d_model, "num_heads": self.num_heads}
