"""Fast generation (outline 9.1.3): a key/value cache, and decoding with it.

Without a cache, every new token recomputes attention over the whole prefix: O(T^2) work per
token. With one, the keys and values of past positions are kept, so a new token only computes
its own q, k, v and attends to the cache. The cache is preallocated to ``block_size``
positions and written at a position index, so its shape never changes (``tf.function``
traces once). Both backends return the written cache: ``(output, cache)``; TensorFlow
tensors are immutable, and PyTorch follows (the twin: ``duetrl diff generation``). Token
choice (greedy, temperature, top-k, top-p) happens on host arrays in
``duetrl.core.lm.sampling``, so both backends pick the same tokens.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import tensorflow as tf

from duetrl.backends.tf.attention import MultiHeadAttention, fused_attention
from duetrl.backends.tf.gpt import GPT
from duetrl.core.lm.config import check_token_ids
from duetrl.core.lm.sampling import Generation
from duetrl.core.lm.sampling import generate as sample_from


def new_kv_cache(model: GPT, batch_size: int) -> tf.Tensor:
    """Zeros ``(n_layer, 2, B, heads, block_size, head_dim)``: keys [:, 0] and values [:, 1]."""
    c = model.config
    shape = (c.n_layer, 2, batch_size, c.n_head, c.block_size, c.head_dim)
    return tf.zeros(shape, dtype=model.wte.embeddings.dtype)


def split_heads(attn: MultiHeadAttention, x: tf.Tensor) -> tf.Tensor:
    """(B, T, D) -> (B, T, heads, head_dim) -> (B, heads, T, head_dim)."""
    x = tf.reshape(x, (tf.shape(x)[0], tf.shape(x)[1], attn.num_heads, attn.head_dim))
    return tf.transpose(x, (0, 2, 1, 3))


def cached_self_attention(
    attn: MultiHeadAttention, x: tf.Tensor, layer_cache: tf.Tensor, start: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """Causal self-attention of new positions start..start+T_new-1 over the cache.

    Writes the new keys/values into ``layer_cache`` (2, B, heads, block_size, head_dim) and
    lets query i attend to key j when j <= start + i. Uses ``attn``'s own projections.
    Returns the output (B, T_new, D) and the written layer cache.
    """
    bs, t_new = tf.shape(x)[0], tf.shape(x)[1]
    block_size = layer_cache.shape[3]

    q = split_heads(attn, attn.q_linear(x))  # (B, heads, T_new, head_dim)
    k = split_heads(attn, attn.k_linear(x))
    v = split_heads(attn, attn.v_linear(x))

    # write at the position index; the cache keeps its shape
    positions = start + tf.range(t_new)  # (T_new,)
    placement = tf.one_hot(positions, block_size, dtype=x.dtype)  # (T_new, block)
    keep = 1.0 - tf.reduce_sum(placement, axis=0)[:, None]  # (block, 1): 0 where written
    keys = layer_cache[0] * keep + tf.einsum("tp,bhtd->bhpd", placement, k)  # (B, heads, block, hd)
    values = layer_cache[1] * keep + tf.einsum("tp,bhtd->bhpd", placement, v)
    query_positions = positions[:, None]  # (T_new, 1)
    mask = tf.range(block_size)[None, :] <= query_positions  # key j <= start + i
    output = fused_attention(q, keys, values, tf.cast(mask, x.dtype))  # (B, heads, T_new, head_dim)

    # (B, heads, T_new, head_dim) -> (B, T_new, heads, head_dim) -> (B, T_new, D)
    output = tf.reshape(tf.transpose(output, (0, 2, 1, 3)), (bs, t_new, attn.d_model))
    return attn.out(output), tf.stack([keys, values])


def forward_with_cache(
    model: GPT, idx: tf.Tensor, cache: tf.Tensor, start: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """Logits ``(B, T_new, V)`` of tokens ``idx`` (B, T_new) at positions start.., using
    ``cache`` (see :func:`new_kv_cache`); returns ``(logits, new cache)``. Dropout is off."""
    t_new = tf.shape(idx)[1]
    positions = start + tf.range(t_new)  # (T_new,)
    x = model.wte(idx) + model.wpe(positions)  # (B, T_new, D)
    layer_caches = []
    for layer, block in enumerate(model.blocks):
        z = block.ln_1(x)
        attended, layer_cache = cached_self_attention(block.attn, z, cache[layer], start)
        x = x + attended
        x = x + block.mlp(block.ln_2(x))
        layer_caches.append(layer_cache)
    logits = tf.matmul(model.ln_f(x), model.wte.embeddings, transpose_b=True)  # (B, T_new, V)
    return logits, tf.stack(layer_caches)


_COMPILED_STEPS = weakref.WeakKeyDictionary()  # model -> {(batch, kind): tf.function}


def _compiled_step(model: GPT, batch_size: int, kind: str) -> Any:
    """``forward_with_cache`` (kinds ``"prefill"``, ``"decode"``) or the model on the whole
    prefix (``"full"``) as a ``tf.function`` traced once per model, batch size and kind; XLA
    (``jit_compile``) fuses the many small ops of decoding one token."""
    steps = _COMPILED_STEPS.setdefault(model, {})
    if (batch_size, kind) not in steps:
        cache = new_kv_cache(model, batch_size)
        signature = [tf.TensorSpec((batch_size, 1 if kind == "decode" else None), tf.int64)]
        if kind == "full":
            step = lambda idx: model(idx, training=False)  # noqa: E731
        else:
            step = lambda idx, cache, start: forward_with_cache(model, idx, cache, start)  # noqa: E731
            signature += [tf.TensorSpec(cache.shape, cache.dtype), tf.TensorSpec((), tf.int32)]
        jit = kind == "decode"
        steps[(batch_size, kind)] = tf.function(step, input_signature=signature, jit_compile=jit)
    return steps[(batch_size, kind)]


class Decoder:
    """A stateful ``next_logits(new_tokens, start) -> (B, V)`` NumPy logits, for
    ``duetrl.core.lm.sampling.generate``: with a KV cache, or recomputing the whole prefix."""

    def __init__(self, model: GPT, batch_size: int, use_cache: bool = True) -> None:
        self.model, self.use_cache = model, use_cache
        self.cache = new_kv_cache(model, batch_size) if use_cache else None
        self.tokens = np.zeros((batch_size, 0), dtype=np.int64)  # the prefix so far (host)
        self.batch_size = batch_size

    def __call__(self, new_tokens: np.ndarray, start: int) -> np.ndarray:
        new_tokens = np.asarray(new_tokens, dtype=np.int64)  # (B, T_new)
        check_token_ids(new_tokens.shape, self.model.config, "new_tokens", new_tokens, start)
        if self.use_cache:
            kind = "decode" if new_tokens.shape[1] == 1 else "prefill"
            step = _compiled_step(self.model, self.batch_size, kind)
            logits, self.cache = step(new_tokens, self.cache, tf.constant(start, tf.int32))
        else:
            self.tokens = np.concatenate([self.tokens, new_tokens], axis=1)  # (B, start + T_new)
            logits = _compiled_step(self.model, self.batch_size, "full")(self.tokens)
        return tf.cast(logits[:, -1], tf.float64).numpy()  # (B, V) of the last position


def generate(
    model: GPT, prompt: np.ndarray, max_new_tokens: int, use_cache: bool = True, **sampling: Any
) -> Generation:
    """Generate tokens and their log-probabilities; see ``duetrl.core.lm.sampling.generate``.

    Args:
        model: a ``GPT`` of this backend (dropout off here).
        prompt: token ids ``(T,)`` or ``(B, T)``.
        max_new_tokens: number of tokens to add (prompt + new <= block_size).
        use_cache: use the KV cache (same tokens, much faster).
        **sampling: ``greedy``, ``temperature``, ``top_k``, ``top_p``, ``seed``.

    Returns:
        a ``duetrl.core.lm.sampling.Generation``
        (tokens, new_tokens, log_probs, sampling_log_probs).
    """
    prompt = np.asarray(prompt)
    batch_size = prompt.shape[0] if prompt.ndim == 2 else 1
    decoder = Decoder(model, batch_size, use_cache)
    return sample_from(decoder, prompt, max_new_tokens, model.config, **sampling)
