"""A GPT-style decoder in TensorFlow + Keras 3 (outline 2.1.1): nanoGPT's model, duetrl's attention.

    h_0 = W_te[x] + W_pe[0..T-1]
    h'_l = h_{l-1} + Dropout(Attn(LN_1(h_{l-1})))   causal multi-head self-attention
    h_l = h'_l + Dropout(MLP(LN_2(h'_l)))           MLP(z) = GELU(z W_fc + b_fc) W_proj + b_proj
    logits = LN_f(h_L) W_te^T                       the output head is tied to W_te

Compare with ``backends/torch/gpt.py`` line by line; the float64 oracle is
``core/reference/gpt.py``. Dropout masks come from the framework's own generator, so they
differ between backends (tests use dropout 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from duetrl.backends.tf.attention import MultiHeadAttention
from duetrl.backends.tf.runtime import resolve_dtype
from duetrl.backends.tf.weights import import_params
from duetrl.core.lm.config import GPTConfig, check_id_bounds, check_token_shape
from duetrl.core.lm.params import gpt2_to_canonical, init_gpt_params


class MLP(keras.layers.Layer):
    """The position-wise feed-forward network: Linear(D, 4D), GELU, Linear(4D, D), dropout."""

    def __init__(self, config: GPTConfig, dtype: str | None = None, **kwargs: Any) -> None:
        super().__init__(dtype=resolve_dtype(dtype), **kwargs)
        hidden = config.mlp_ratio * config.n_embd
        self.n_embd, self.hidden = config.n_embd, hidden
        self.gelu_approximate = config.gelu == "tanh"  # pinned: GPT-2 uses the tanh approximation
        self.fc = keras.layers.Dense(hidden, dtype=self.dtype_policy)
        self.proj = keras.layers.Dense(config.n_embd, dtype=self.dtype_policy)
        self.dropout = keras.layers.Dropout(config.dropout, dtype=self.dtype_policy)

    def build(self, input_shape: Any = None) -> None:
        self.fc.build((None, self.n_embd))
        self.proj.build((None, self.hidden))

    def call(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        x = keras.activations.gelu(self.fc(x), approximate=self.gelu_approximate)  # (B, T, 4D)
        return self.dropout(self.proj(x), training=training)  # (B, T, D)


class Block(keras.layers.Layer):
    """A pre-LayerNorm Transformer block: x + Attn(LN_1(x)), then x + MLP(LN_2(x))."""

    def __init__(self, config: GPTConfig, dtype: str | None = None, **kwargs: Any) -> None:
        super().__init__(dtype=resolve_dtype(dtype), **kwargs)
        self.n_embd = config.n_embd
        eps = config.layer_norm_eps  # pinned: torch's default 1e-5, Keras' 1e-3
        self.ln_1 = keras.layers.LayerNormalization(epsilon=eps, dtype=self.dtype_policy)
        self.attn = MultiHeadAttention(config.n_embd, config.n_head, dtype=self.dtype_policy)
        self.ln_2 = keras.layers.LayerNormalization(epsilon=eps, dtype=self.dtype_policy)
        self.mlp = MLP(config, dtype=self.dtype_policy)
        self.dropout = keras.layers.Dropout(config.dropout, dtype=self.dtype_policy)

    def build(self, input_shape: Any = None) -> None:
        for layer in (self.ln_1, self.attn, self.ln_2, self.mlp):
            layer.build((None, None, self.n_embd))

    def call(self, x: tf.Tensor, mask: tf.Tensor, training: bool = False) -> tf.Tensor:
        z = self.ln_1(x)
        x = x + self.dropout(self.attn(z, z, z, mask), training=training)  # q = k = v
        return x + self.mlp(self.ln_2(x), training=training)


class GPT(keras.Model):
    """A GPT decoder: ``GPT(config)(idx)`` maps token ids (B, T) to logits (B, T, vocab).

    Args:
        config: a :class:`duetrl.core.lm.config.GPTConfig`.
        dtype: parameter dtype (``"float32"`` by default, ``"float64"`` for tests).
        seed: seed of the NumPy initialiser (duetrl.core.lm.params.init_gpt_params), so that both
            backends start from the same weights (None: skip it, for weights about to be
            overwritten, as in :meth:`from_gpt2`).

    Example:
        >>> model = GPT(GPTConfig(vocab_size=16, block_size=8, n_layer=2, n_head=2, n_embd=32))
        >>> logits = model(tf.zeros((1, 8), dtype=tf.int64))  # (1, 8, 16)
    """

    def __init__(
        self, config: GPTConfig, dtype: str | None = None, seed: int | None = 0, **kwargs: Any
    ) -> None:
        super().__init__(dtype=resolve_dtype(dtype), **kwargs)
        self.config = config
        self.wte = keras.layers.Embedding(config.vocab_size, config.n_embd, dtype=self.dtype_policy)
        self.wpe = keras.layers.Embedding(config.block_size, config.n_embd, dtype=self.dtype_policy)
        self.drop = keras.layers.Dropout(config.dropout, dtype=self.dtype_policy)
        self.blocks = [Block(config, dtype=self.dtype_policy) for _ in range(config.n_layer)]
        self.ln_f = keras.layers.LayerNormalization(
            epsilon=config.layer_norm_eps, dtype=self.dtype_policy
        )
        # 1 = attend, 0 = masked (listing 5.1); a constant, not a weight
        self.causal_mask = tf.linalg.band_part(tf.ones((config.block_size,) * 2), -1, 0)
        self.build()
        if seed is not None:
            import_params(self, init_gpt_params(config, seed, self.dtype_policy.variable_dtype))

    def build(self, input_shape: Any = None) -> None:
        self.wte.build((None, None))
        self.wpe.build((None,))
        for block in self.blocks:
            block.build()
        self.ln_f.build((None, None, self.config.n_embd))
        self.built = True

    def call(self, idx: tf.Tensor | np.ndarray, training: bool = False) -> tf.Tensor:
        idx = tf.convert_to_tensor(idx)
        check_token_shape(tuple(idx.shape), self.config)
        if tf.executing_eagerly():  # a traced graph has no values to check
            check_id_bounds(
                int(tf.reduce_min(idx)), int(tf.reduce_max(idx)), self.config.vocab_size
            )
        t = tf.shape(idx)[1]
        positions = tf.range(t)  # (T,)
        x = self.drop(self.wte(idx) + self.wpe(positions), training=training)  # (B, T, D)
        mask = self.causal_mask[:t, :t]  # (T, T)
        for block in self.blocks:
            x = block(x, mask, training=training)
        x = self.ln_f(x)
        return tf.tensordot(x, self.wte.embeddings, axes=[[2], [1]])  # (B, T, V): the tied head

    @classmethod
    def from_gpt2(cls, state_dict: Mapping[str, Any], n_head: int, dtype: str | None = None) -> GPT:
        """A GPT holding the weights of a Hugging Face ``GPT2LMHeadModel`` state dict.

        Args:
            state_dict: ``{name: torch tensor or NumPy array}``, e.g. ``hf_model.state_dict()``.
            n_head: number of attention heads (12 for GPT-2 small).
        """
        dtype_name = dtype if isinstance(dtype, str) else "float32"
        config, params = gpt2_to_canonical(state_dict, n_head, dtype_name)
        return import_params(cls(config, dtype, seed=None), params)

    def num_parameters(self) -> int:
        """Number of parameters, the tied head counted once."""
        return sum(int(tf.size(v)) for v in self.trainable_variables)

    def get_config(self) -> dict:
        """The configuration as a dict (Keras' serialisation hook)."""
        return self.config.to_dict()

    @classmethod
    def from_config(cls, values: dict) -> GPT:
        """Rebuild a (freshly initialised) GPT from :meth:`get_config`."""
        return cls(GPTConfig.from_dict(values))
