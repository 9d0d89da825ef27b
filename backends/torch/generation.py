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

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from duetrl.backends.torch.attention import MultiHeadAttention, fused_attention
from duetrl.backends.torch.gpt import GPT
from duetrl.core.lm.config import check_token_ids
from duetrl.core.lm.sampling import Generation
from duetrl.core.lm.sampling import generate as sample_from


def new_kv_cache(model: GPT, batch_size: int) -> torch.Tensor:
    """Zeros ``(n_layer, 2, B, heads, block_size, head_dim)``: keys [:, 0] and values [:, 1]."""
    c = model.config
    shape = (c.n_layer, 2, batch_size, c.n_head, c.block_size, c.head_dim)
    return torch.zeros(shape, dtype=model.wte.weight.dtype)


def split_heads(attn: MultiHeadAttention, x: torch.Tensor) -> torch.Tensor:
    """(B, T, D) -> (B, T, heads, head_dim) -> (B, heads, T, head_dim)."""
    x = x.reshape(x.shape[0], x.shape[1], attn.num_heads, attn.head_dim)
    return x.transpose(1, 2)


def cached_self_attention(
    attn: MultiHeadAttention, x: torch.Tensor, layer_cache: torch.Tensor, start: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Causal self-attention of new positions start..start+T_new-1 over the cache.

    Writes the new keys/values into ``layer_cache`` (2, B, heads, block_size, head_dim) and
    lets query i attend to key j when j <= start + i. Uses ``attn``'s own projections.
    Returns the output (B, T_new, D) and the written layer cache.
    """
    bs, t_new = x.shape[0], x.shape[1]
    end = start + t_new

    q = split_heads(attn, attn.q_linear(x))  # (B, heads, T_new, head_dim)
    k = split_heads(attn, attn.k_linear(x))
    v = split_heads(attn, attn.v_linear(x))

    # write at positions start..end-1 in place: no copy of the cache per token
    layer_cache[:, :, :, start:end] = torch.stack([k, v])  # (2, B, heads, T_new, hd)
    keys, values = layer_cache[0, :, :, :end], layer_cache[1, :, :, :end]  # (B, heads, end, hd)
    mask = None  # one new token attends to every cached one
    if t_new > 1:  # key j <= start + i
        mask = torch.arange(end)[None, :] <= start + torch.arange(t_new)[:, None]
    output = fused_attention(q, keys, values, mask)  # (B, heads, T_new, head_dim)

    # (B, heads, T_new, head_dim) -> (B, T_new, heads, head_dim) -> (B, T_new, D)
    output = output.transpose(1, 2).reshape(bs, t_new, attn.d_model)
    return attn.out(output), layer_cache


def forward_with_cache(
    model: GPT, idx: torch.Tensor, cache: torch.Tensor, start: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits ``(B, T_new, V)`` of tokens ``idx`` (B, T_new) at positions start.., using
    ``cache`` (see :func:`new_kv_cache`); returns ``(logits, cache)``, the cache written in
    place. Dropout is off."""
    t_new = idx.shape[1]
    x = model.wte(idx) + model.wpe.weight[start : start + t_new]  # (B, T_new, D)
    for layer, block in enumerate(model.blocks):
        z = block.ln_1(x)
        attended, _ = cached_self_attention(block.attn, z, cache[layer], start)
        x = x + attended
        x = x + block.mlp(block.ln_2(x))
    logits = F.linear(model.ln_f(x), model.wte.weight)  # (B, T_new, V)
    return logits, cache


class Decoder:
    """A stateful ``next_logits(new_tokens, start) -> (B, V)`` NumPy logits, for
    ``duetrl.core.lm.sampling.generate``: with a KV cache, or recomputing the whole prefix."""

    def __init__(self, model: GPT, batch_size: int, use_cache: bool = True) -> None:
        self.model, self.use_cache = model, use_cache
        self.cache = new_kv_cache(model, batch_size) if use_cache else None
        self.tokens = np.zeros((batch_size, 0), dtype=np.int64)  # the prefix so far (host)
        self.batch_size = batch_size

    @torch.inference_mode()
    def __call__(self, new_tokens: np.ndarray, start: int) -> np.ndarray:
        new_tokens = np.asarray(new_tokens, dtype=np.int64)  # (B, T_new)
        check_token_ids(new_tokens.shape, self.model.config, "new_tokens", new_tokens, start)
        if self.use_cache:
            idx = torch.as_tensor(new_tokens)
            logits, self.cache = forward_with_cache(self.model, idx, self.cache, start)
        else:
            self.tokens = np.concatenate([self.tokens, new_tokens], axis=1)  # (B, start + T_new)
            logits = self.model(self.tokens)
        return logits[:, -1].double().numpy()  # (B, V) of the last position


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
    model.eval()
    prompt = np.asarray(prompt)
    batch_size = prompt.shape[0] if prompt.ndim == 2 else 1
    decoder = Decoder(model, batch_size, use_cache)
    return sample_from(decoder, prompt, max_new_tokens, model.config, **sampling)
