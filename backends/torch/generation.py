"""Fast generation in PyTorch (outline 9.1.3): a key/value cache, and decoding with it.

Without a cache, every new token recomputes attention over the whole prefix: O(T^2) work per
token. With one, the keys and values of past positions are kept, so a new token only computes
its own q, k, v and attends to the cache. The cache is preallocated to ``block_size``
positions and written at a position index (the TF twin needs fixed shapes; torch follows).
Token choice (greedy, temperature, top-k, top-p) happens on host arrays in
``duetrl.core.lm.sampling``, so both backends pick the same tokens.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from duetrl.backends.torch.attention import MultiHeadAttention, fused_attention
from duetrl.backends.torch.gpt import GPT
from duetrl.core.lm.config import check_token_shape
from duetrl.core.lm.sampling import Generation
from duetrl.core.lm.sampling import generate as sample_from


def new_kv_cache(model: GPT, batch_size: int) -> torch.Tensor:
    """Zeros ``(n_layer, 2, B, heads, block_size, head_dim)``: keys [:, 0] and values [:, 1]."""
    c = model.config
    shape = (c.n_layer, 2, batch_size, c.n_head, c.block_size, c.head_dim)
    return torch.zeros(shape, dtype=model.wte.weight.dtype)


def split_heads(attn: MultiHeadAttention, x: torch.Tensor) -> torch.Tensor:
    """(B, T, D) -> (B, T, heads, head_dim) -> (B, heads, T, head_dim)."""
    return x.view(x.shape[0], x.shape[1], attn.num_heads, attn.head_dim).transpose(1, 2)


def cached_self_attention(
    attn: MultiHeadAttention, x: torch.Tensor, layer_cache: torch.Tensor, start: int
) -> torch.Tensor:
    """Causal self-attention of new positions start..start+T_new-1 over the cache.

    Writes the new keys/values into ``layer_cache`` (2, B, heads, block_size, head_dim) and
    lets query i attend to key j when j <= start + i. Uses ``attn``'s own Linear layers.
    """
    bs, t_new = x.shape[0], x.shape[1]
    end = start + t_new

    q = split_heads(attn, attn.q_linear(x))  # (B, heads, T_new, head_dim)
    k = split_heads(attn, attn.k_linear(x))
    v = split_heads(attn, attn.v_linear(x))

    layer_cache[0, :, :, start:end] = k  # write at the position index
    layer_cache[1, :, :, start:end] = v
    keys, values = layer_cache[0, :, :, :end], layer_cache[1, :, :, :end]  # (B, heads, end, hd)
    mask = torch.ones(t_new, end, dtype=torch.bool).tril(start)  # key j <= start + i
    output = fused_attention(q, keys, values, mask)  # (B, heads, T_new, head_dim)

    # (B, heads, T_new, head_dim) -> (B, T_new, heads, head_dim) -> (B, T_new, D)
    output = output.transpose(1, 2).reshape(bs, t_new, attn.d_model)
    return attn.out(output)


def forward_with_cache(
    model: GPT, idx: torch.Tensor, cache: torch.Tensor, start: int
) -> torch.Tensor:
    """Logits ``(B, T_new, V)`` of tokens ``idx`` (B, T_new) at positions start.., using and
    filling ``cache`` (see :func:`new_kv_cache`). Dropout is off: this is inference."""
    t_new = idx.shape[1]
    positions = torch.arange(start, start + t_new)  # (T_new,)
    x = model.wte(idx) + model.wpe(positions)  # (B, T_new, D)
    for layer, block in enumerate(model.blocks):
        z = block.ln_1(x)
        x = x + cached_self_attention(block.attn, z, cache[layer], start)
        x = x + block.mlp(block.ln_2(x))
    return F.linear(model.ln_f(x), model.wte.weight)  # (B, T_new, V)


class Decoder:
    """A stateful ``next_logits(new_tokens, start) -> (B, V)`` NumPy logits, for
    ``duetrl.core.lm.sampling.generate``: with a KV cache, or recomputing the whole prefix."""

    def __init__(self, model: GPT, batch_size: int, use_cache: bool = True) -> None:
        self.model, self.use_cache = model, use_cache
        self.cache = new_kv_cache(model, batch_size) if use_cache else None
        self.tokens = torch.zeros((batch_size, 0), dtype=torch.long)  # the prefix so far

    @torch.inference_mode()
    def __call__(self, new_tokens: np.ndarray, start: int) -> np.ndarray:
        new_tokens = torch.as_tensor(new_tokens, dtype=torch.long)
        check_token_shape((new_tokens.shape[0], start + new_tokens.shape[1]), self.model.config)
        if self.use_cache:
            logits = forward_with_cache(self.model, new_tokens, self.cache, start)
        else:
            self.tokens = torch.cat([self.tokens, new_tokens], dim=1)  # (B, start + T_new)
            logits = self.model(self.tokens)
        return logits[:, -1].double().numpy()  # (B, V) of the last position


def generate(
    model: GPT, prompt: np.ndarray, max_new_tokens: int, use_cache: bool = True, **sampling: Any
) -> Generation:
    """Generate tokens and their log-probabilities; see ``duetrl.core.lm.sampling.generate``.

    Args:
        model: a :class:`duetrl.backends.torch.gpt.GPT` (put in eval mode here).
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
