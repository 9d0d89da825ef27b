"""Fast generation (outline 9.1.3): a key/value cache, and decoding with it.

Without a cache, every new token recomputes attention over the whole prefix: O(T^2) work per
token. With one, the keys and values of past positions are kept, so a new token only computes
its own q, k, v and attends to the cache. The cache is preallocated to ``block_size``
positions and written at a position index, so its shape never changes (``tf.function``
traces once). Both backends return the written cache, ``(output, cache)``: PyTorch writes
it in place and returns the same tensor, TensorFlow (immutable tensors) returns a new one, or
writes in place into the ``tf.Variable`` a ``Decoder`` keeps per layer; use the returned
cache either way (the twin: ``duetrl diff generation``). A decoding step reads
the weights as plain tensors, q/k/v fused into one matrix (:func:`decoding_weights`). Token
choice (greedy, temperature, top-k, top-p) happens on host arrays in
``duetrl.core.sampling``, so both backends pick the same tokens.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import tensorflow as tf
from keras import activations, ops
from tensorflow import Tensor

from duetrl.backends.tf.attention import MultiHeadAttention, fused_attention
from duetrl.backends.tf.gpt import GPT
from duetrl.core.interfaces.gpt_config import GPTConfig, check_token_ids
from duetrl.core.sampling import Generation
from duetrl.core.sampling import generate as sample_from


def new_kv_cache(model: GPT, batch_size: int) -> Tensor:
    """Zeros ``(n_layer, 2, B, heads, block_size, head_dim)``: keys [:, 0] and values [:, 1]."""
    c = model.config
    shape = (c.n_layer, 2, batch_size, c.n_head, c.block_size, c.head_dim)
    return tf.zeros(shape, dtype=model.wte.embeddings.dtype)


def split_heads(attn: MultiHeadAttention, x: Tensor) -> Tensor:
    """(B, T, D) -> (B, T, heads, head_dim) -> (B, heads, T, head_dim)."""
    x = tf.reshape(x, (tf.shape(x)[0], tf.shape(x)[1], attn.num_heads, attn.head_dim))
    return tf.transpose(x, (0, 2, 1, 3))


def attend_with_cache(
    q: Tensor, k: Tensor, v: Tensor, layer_cache: Tensor, start: int
) -> tuple[Tensor, Tensor]:
    """Write keys/values ``(B, heads, T_new, head_dim)`` at positions start..end-1 of
    ``layer_cache`` (2, B, heads, block_size, head_dim), then let query i attend to key j
    when j <= start + i. Returns the output (B, heads, T_new, head_dim) and the layer cache.
    ``layer_cache`` None: no cache, the new positions are the whole sequence (key j <= i)."""
    if layer_cache is None:
        causal = tf.linalg.band_part(tf.ones((tf.shape(q)[2],) * 2, q.dtype), -1, 0)  # (T, T)
        return fused_attention(q, k, v, causal), None
    (bs, heads, t_new), block_size = tf.unstack(tf.shape(q)[:3]), layer_cache.shape[3]
    positions = start + tf.range(t_new)  # (T_new,)
    # the index (kv, b, head, start + i) of every written row: a tensor start, never a
    # slice bound, which XLA would compile once per value of start
    grid = tf.meshgrid(tf.range(2), tf.range(bs), tf.range(heads), positions, indexing="ij")
    indices, new_rows = tf.stack(grid, axis=-1), tf.stack([k, v])  # (2, B, heads, T_new, 4|hd)
    if isinstance(layer_cache, tf.Variable):  # the Decoder's: write in place, no copy
        layer_cache.scatter_nd_update(indices, new_rows)
    else:  # a tensor is immutable: a new one
        layer_cache = tf.tensor_scatter_nd_update(layer_cache, indices, new_rows)
    keys, values = layer_cache[0], layer_cache[1]  # (B, heads, block, hd): XLA wants fixed shapes
    mask = tf.range(block_size)[None, :] <= positions[:, None]  # key j <= start + i
    return fused_attention(q, keys, values, tf.cast(mask, q.dtype)), layer_cache


def cached_self_attention(
    attn: MultiHeadAttention, x: Tensor, layer_cache: Tensor, start: int
) -> tuple[Tensor, Tensor]:
    """Causal self-attention of new positions start..start+T_new-1 over the cache.

    Writes the new keys/values into ``layer_cache`` (2, B, heads, block_size, head_dim) and
    lets query i attend to key j when j <= start + i. Uses ``attn``'s own projections.
    Returns the output (B, T_new, D) and the written layer cache.
    """
    bs, t_new = tf.shape(x)[0], tf.shape(x)[1]
    q = split_heads(attn, attn.q_linear(x))  # (B, heads, T_new, head_dim)
    k = split_heads(attn, attn.k_linear(x))
    v = split_heads(attn, attn.v_linear(x))
    output, layer_cache = attend_with_cache(q, k, v, layer_cache, start)

    # (B, heads, T_new, head_dim) -> (B, T_new, heads, head_dim) -> (B, T_new, D)
    output = tf.reshape(tf.transpose(output, (0, 2, 1, 3)), (bs, t_new, attn.d_model))
    return attn.out(output), layer_cache


def decoding_weights(model: GPT) -> dict[str, Any]:
    """The parameters a decoding step reads, as plain tensors: ``wte``, ``wpe``, ``ln_f``
    (gamma, beta) and per block ``(ln_1 gamma, beta, W_qkv, b_qkv, W_out, b_out, ln_2 gamma,
    beta, W_fc, b_fc, W_proj, b_proj)``, q/k/v fused: one matmul instead of three. A snapshot
    of the fused matrices: take it again after the weights change."""
    blocks = []
    for block in model.blocks:
        a, mlp = block.attn, block.mlp
        qkv = (a.q_linear, a.k_linear, a.v_linear)
        w_qkv = tf.concat([linear.kernel for linear in qkv], axis=1)  # (D, 3D): Keras' (in, out)
        b_qkv = tf.concat([linear.bias for linear in qkv], axis=0)  # (3D,)
        blocks.append(
            (block.ln_1.gamma, block.ln_1.beta, w_qkv, b_qkv, a.out.kernel, a.out.bias,
             block.ln_2.gamma, block.ln_2.beta, mlp.fc.kernel, mlp.fc.bias,
             mlp.proj.kernel, mlp.proj.bias)
        )  # fmt: skip
    ln_f = (model.ln_f.gamma, model.ln_f.beta)
    wte, wpe = model.wte.embeddings, model.wpe.embeddings
    weights = {"wte": wte, "wpe": wpe, "ln_f": ln_f, "blocks": blocks}
    return tf.nest.map_structure(tf.convert_to_tensor, weights)  # values, not variables


def decode_step(
    config: GPTConfig, weights: dict[str, Any], idx: Tensor, cache: Tensor, start: int
) -> tuple[Tensor, Tensor]:
    """:func:`forward_with_cache` on :func:`decoding_weights`: the same equations as the
    model's layers, written with the functional ops (about 15 per block for one token)."""
    x, cache = decode_hidden(config, weights, idx, cache, start)
    return tf.tensordot(x, weights["wte"], [[2], [1]]), cache  # (B, T_new, V): the tied head


def decode_hidden(
    config: GPTConfig, weights: dict[str, Any], idx: Tensor, cache: Tensor | None, start: int
) -> tuple[Tensor, Tensor | None]:
    """:func:`decode_step` up to LN_f(h_L) ``(B, T_new, D)``, the head's input, and the cache
    (None: no cache, ``idx`` is the whole sequence, as ``GPT.hidden_states`` takes it)."""
    bs, t_new, heads, eps = tf.shape(idx)[0], tf.shape(idx)[1], config.n_head, config.layer_norm_eps
    d = config.n_embd
    approximate = config.gelu == "tanh"
    # positions gathered, not sliced: XLA compiles a slice [start:] once per value of start
    x = tf.gather(weights["wte"], idx) + tf.gather(weights["wpe"], start + tf.range(t_new))
    x = tf.reshape(x, (-1, d))  # (B T_new, D) rows: 2-D matmuls (a broadcast one's gradient
    cache_layers = []  # would multiply a (B, in, out) stack and sum it)
    for layer, block in enumerate(weights["blocks"]):
        ln1_g, ln1_b, w_qkv, b_qkv, w_out, b_out, ln2_g, ln2_b, w_fc, b_fc, w_proj, b_proj = block
        z = ops.layer_normalization(x, ln1_g, ln1_b, epsilon=eps)
        qkv = tf.reshape(tf.matmul(z, w_qkv) + b_qkv, (bs, t_new, 3, heads, d // heads))
        q, k, v = tf.unstack(tf.transpose(qkv, (2, 0, 3, 1, 4)))  # 3 x (B, heads, T_new, head_dim)
        layer_cache = None if cache is None else cache[layer]
        output, layer_cache = attend_with_cache(q, k, v, layer_cache, start)
        # (B, heads, T_new, head_dim) -> (B, T_new, heads, head_dim) -> (B, T_new, D)
        output = tf.reshape(tf.transpose(output, (0, 2, 1, 3)), (-1, d))  # (B T_new, D)
        x = x + tf.matmul(output, w_out) + b_out
        z = ops.layer_normalization(x, ln2_g, ln2_b, epsilon=eps)
        z = activations.gelu(tf.matmul(z, w_fc) + b_fc, approximate=approximate)
        x = x + tf.matmul(z, w_proj) + b_proj
        cache_layers.append(layer_cache)
    x = tf.reshape(ops.layer_normalization(x, *weights["ln_f"], epsilon=eps), (bs, t_new, d))
    return x, cache if cache is None or isinstance(cache, list) else tf.stack(cache_layers)


def last_logits(
    config: GPTConfig, weights: dict[str, Any], idx: Tensor, cache: Tensor, start: int
) -> tuple[Tensor, Tensor]:
    """:func:`decode_step`'s logits of the last new position ``(B, V)``, and the cache."""
    logits, cache = decode_step(config, weights, idx, cache, start)
    return logits[:, -1], cache


def forward_with_cache(model: GPT, idx: Tensor, cache: Tensor, start: int) -> tuple[Tensor, Tensor]:
    """Logits ``(B, T_new, V)`` of tokens ``idx`` (B, T_new) at positions start.., using
    ``cache`` (see :func:`new_kv_cache`); returns ``(logits, new cache)``. Dropout is off."""
    return decode_step(model.config, decoding_weights(model), idx, cache, start)


XLA_DECODE_AFTER: int | None = 1000
"""TensorFlow compiles a model's one-token step with XLA once it has run this many times in
the plain graph (0: from the first token; None: never; PyTorch runs every step eagerly). XLA
takes ~0.75x the graph's time per token, but its compile costs ~1.5 s of CPU that a short
run never earns back: like a skier who rents until the rent nears the price of skis, the
graph serves first. The prompt's step (any length) stays a graph: XLA would compile it once
per prompt length."""

_COMPILED_STEPS = weakref.WeakKeyDictionary()  # model -> {(batch, kind): step}


def _compiled_step(model: GPT, batch_size: int, kind: str) -> Any:
    """The model (``"full"``): eager in PyTorch, a ``tf.function``'s concrete function in
    TensorFlow (a plain call spends ~0.3 ms finding the trace); the cached kinds live in
    ``_DecodingState``."""
    steps = _COMPILED_STEPS.setdefault(model, {})
    if (batch_size, kind) not in steps:
        signature = [tf.TensorSpec((batch_size, None), tf.int64)]
        step = lambda idx: model(idx, training=False)[:, -1]  # noqa: E731
        function = tf.function(step, input_signature=signature, autograph=False)
        steps[(batch_size, kind)] = function.get_concrete_function()
    return steps[(batch_size, kind)]


class _DecodingState:
    """A cached ``Decoder``'s weights and KV cache, and the steps that use them; reused by
    the model's later decoders. TensorFlow keeps both in ``tf.Variable``\\ s that its compiled
    steps capture: binding ~(4 + 12 x n_layer) tensors as arguments costs more than a small
    step, and XLA would copy a cache argument in and out every token (TensorFlow has no
    buffer donation). PyTorch writes its cache tensor in place and calls its ops eagerly."""

    def __init__(self, model: GPT, batch_size: int) -> None:
        self.config, self.batch_size = model.config, batch_size
        variable = lambda value: tf.Variable(value, trainable=False)  # noqa: E731
        self.weights = tf.nest.map_structure(variable, decoding_weights(model))
        self.cache = [variable(layer) for layer in new_kv_cache(model, batch_size)]
        self.steps: dict[str, Any] = {}  # kind -> step
        self.decode_calls = 0  # one-token steps run, by every Decoder that held this state
        self.load_graph = None  # load's traced function, made at the first load

    def load(self, model: GPT) -> None:
        """Take the model's weights (a snapshot, the fused q/k/v at least) and zero the
        cache (keys past the prompt are masked, but 0 x NaN left by another run is NaN).
        TensorFlow: one traced call; eager, the ~(4 + 12 x n_layer) assignments and the fusing
        cost 5.6 ms a generation, a sixth of a GRPO update at the reference size."""
        if self.load_graph is None:
            model_ref = weakref.ref(model)  # the graph holds the variables, not the model
            load = tf.function(lambda: self._assign(model_ref()), autograph=False)
            self.load_graph = load.get_concrete_function()
        self.load_graph()

    def _assign(self, model: GPT) -> None:
        for variable, value in zip(tf.nest.flatten(self.weights),
                                   tf.nest.flatten(decoding_weights(model))):  # fmt: skip
            variable.assign(value)
        for layer_cache in self.cache:
            layer_cache.assign(tf.zeros_like(layer_cache))

    def step(self, kind: str) -> Any:
        """``last_logits``' logits for kind ``"prefill"`` (any length) or ``"decode"``
        (TensorFlow: the prompt's graph, traced once for any length, until XLA compiles the
        one-token step after ``XLA_DECODE_AFTER`` calls)."""
        if kind == "decode":
            self.decode_calls += 1
            xla = XLA_DECODE_AFTER is not None and self.decode_calls > XLA_DECODE_AFTER
            kind = "decode_xla" if xla else "prefill"  # one trace for any length until XLA
        if kind not in self.steps:
            length = None if kind == "prefill" else 1
            signature = [tf.TensorSpec((self.batch_size, length), tf.int64)]
            signature += [tf.TensorSpec((), tf.int32)]
            step = lambda idx, start: last_logits(  # noqa: E731
                self.config, self.weights, idx, self.cache, start
            )[0]
            jit = kind == "decode_xla"
            function = tf.function(
                step, input_signature=signature, jit_compile=jit, autograph=False
            )
            self.steps[kind] = function.get_concrete_function()
        return self.steps[kind]


_FREE_STATES = weakref.WeakKeyDictionary()  # model -> {batch: [states no Decoder holds]}


def _take_state(decoder: Decoder, model: GPT, batch_size: int) -> _DecodingState:
    """A free state of ``model`` and ``batch_size`` (made once, reused by every later
    ``Decoder``), loaded with the model's weights; it is free again once ``decoder`` is gone."""
    free = _FREE_STATES.setdefault(model, {}).setdefault(batch_size, [])
    state = free.pop() if free else _DecodingState(model, batch_size)
    state.load(model)
    weakref.finalize(decoder, free.append, state)
    return state


class Decoder:
    """A stateful ``next_logits(new_tokens, start) -> (B, V)`` NumPy logits, for
    ``duetrl.core.sampling.generate``: with a KV cache, or recomputing the whole prefix."""

    def __init__(self, model: GPT, batch_size: int, use_cache: bool = True) -> None:
        self.model, self.use_cache = model, use_cache
        self.state = _take_state(self, model, batch_size) if use_cache else None
        self.cache = self.state.cache if use_cache else None  # written in place
        self.weights = self.state.weights if use_cache else None  # taken once
        self.tokens = np.zeros((batch_size, 0), dtype=np.int64)  # the prefix so far (host)
        self.batch_size = batch_size

    def __call__(self, new_tokens: np.ndarray, start: int) -> np.ndarray:
        new_tokens = np.asarray(new_tokens, dtype=np.int64)  # (B, T_new)
        check_token_ids(new_tokens.shape, self.model.config, "new_tokens", new_tokens, start)
        if self.use_cache:
            kind = "decode" if new_tokens.shape[1] == 1 else "prefill"
            idx = tf.constant(new_tokens)
            step = self.state.step(kind)
            logits = step(idx, tf.constant(start, tf.int32))  # writes self.cache in place
        else:
            self.tokens = np.concatenate([self.tokens, new_tokens], axis=1)  # (B, start + T_new)
            logits = _compiled_step(self.model, self.batch_size, "full")(tf.constant(self.tokens))
        return logits.numpy().astype(np.float64)  # (B, V) of the last position


def generate(
    model: GPT, prompt: np.ndarray, max_new_tokens: int, use_cache: bool = True, **sampling: Any
) -> Generation:
    """Generate tokens and their log-probabilities; see ``duetrl.core.sampling.generate``.

    Args:
        model: a ``GPT`` of this backend (dropout off here).
        prompt: token ids ``(T,)`` or ``(B, T)``.
        max_new_tokens: number of tokens to add (prompt + new <= block_size).
        use_cache: use the KV cache (same tokens, much faster).
        **sampling: ``greedy``, ``temperature``, ``top_k``, ``top_p``, ``seed``.

    Returns:
        a ``duetrl.core.sampling.Generation``
        (tokens, new_tokens, log_probs, sampling_log_probs).
    """
    prompt = np.asarray(prompt)
    batch_size = prompt.shape[0] if prompt.ndim == 2 else 1
    decoder = Decoder(model, batch_size, use_cache)
    return sample_from(decoder, prompt, max_new_tokens, model.config, **sampling)
