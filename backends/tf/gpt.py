"""A GPT-style decoder (outline 2.1.1): nanoGPT's model, duetrl's attention.

    h_0 = W_te[x] + W_pe[0..T-1]
    h'_l = h_{l-1} + Dropout(Attn(LN_1(h_{l-1})))   causal multi-head self-attention
    h_l = h'_l + Dropout(MLP(LN_2(h'_l)))           MLP(z) = GELU(z W_fc + b_fc) W_proj + b_proj
    logits = LN_f(h_L) W_te^T                       the output head is tied to W_te

The twin in the other backend has the same classes, names and steps (``duetrl diff gpt``); the
float64 oracle is ``core/reference/gpt.py``. Dropout is on in training mode: torch's
``model.train()``, Keras' ``training=True``, which a Keras layer hands on to every layer it
calls. Dropout masks come from the framework's own generator, so they differ between backends
(tests use dropout 0).

Mirror exception (framework-forced): Keras creates weights at build time, so the tf twin builds
each layer in ``__init__``, where the sizes are known, and its layers take ``**kwargs``; the
pair differs in 32% of its lines, over the house limit of 30% (its own limit, 33%, is in
``MIRROR_EXCEPTIONS`` of core/mirror.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf
from keras import Model, activations, layers
from tensorflow import Tensor

from duetrl.backends.tf.attention import MultiHeadAttention
from duetrl.backends.tf.runtime import resolve_dtype
from duetrl.backends.tf.weights import import_params
from duetrl.core.interfaces.gpt_config import GPTConfig, check_token_ids
from duetrl.core.interfaces.gpt_params import gpt2_to_canonical, init_gpt_params


class MLP(layers.Layer):
    """The position-wise feed-forward network: Linear(D, 4D), GELU, Linear(4D, D), dropout."""

    def __init__(self, config: GPTConfig, dtype: str | None = None, **kwargs: Any) -> None:
        super().__init__(dtype=resolve_dtype(dtype), **kwargs)
        hidden = config.mlp_ratio * config.n_embd
        self.gelu_approximate = config.gelu == "tanh"  # pinned: GPT-2 uses the tanh approximation
        self.fc = layers.Dense(hidden, dtype=resolve_dtype(dtype))
        self.proj = layers.Dense(config.n_embd, dtype=resolve_dtype(dtype))
        self.dropout = layers.Dropout(config.dropout, dtype=resolve_dtype(dtype))
        self.fc.build((None, config.n_embd))  # weights now: the sizes are known
        self.proj.build((None, hidden))

    def call(self, x: Tensor) -> Tensor:
        x = activations.gelu(self.fc(x), approximate=self.gelu_approximate)  # (B, T, 4D)
        return self.dropout(self.proj(x))  # (B, T, D)


class Block(layers.Layer):
    """A pre-LayerNorm Transformer block: x + Attn(LN_1(x)), then x + MLP(LN_2(x))."""

    def __init__(self, config: GPTConfig, dtype: str | None = None, **kwargs: Any) -> None:
        super().__init__(dtype=resolve_dtype(dtype), **kwargs)
        eps = config.layer_norm_eps  # pinned: torch's default 1e-5, Keras' 1e-3
        self.ln_1 = layers.LayerNormalization(epsilon=eps, dtype=resolve_dtype(dtype))
        self.attn = MultiHeadAttention(config.n_embd, config.n_head, dtype=dtype)
        self.ln_2 = layers.LayerNormalization(epsilon=eps, dtype=resolve_dtype(dtype))
        self.mlp = MLP(config, dtype=dtype)
        self.dropout = layers.Dropout(config.dropout, dtype=resolve_dtype(dtype))
        for layer in (self.ln_1, self.attn, self.ln_2):  # weights now: the sizes are known
            layer.build((None, None, config.n_embd))

    def call(self, x: Tensor, mask: Tensor) -> Tensor:
        # h' = h + Dropout(Attn(LN_1(h))), then h' + Dropout(MLP(LN_2(h')))
        z = self.ln_1(x)
        x = x + self.dropout(self.attn(z, z, z, mask))  # causal self-attention: q = k = v
        return x + self.mlp(self.ln_2(x))


class GPT(Model):
    """A GPT decoder: ``GPT(config)(idx)`` maps token ids (B, T) to logits (B, T, vocab).

    Args:
        config: a :class:`duetrl.core.interfaces.gpt_config.GPTConfig`.
        dtype: parameter dtype (``"float32"`` by default, ``"float64"`` for tests).
        seed: seed of the NumPy initialiser (duetrl.core.interfaces.gpt_params.init_gpt_params),
            so that both backends start from the same weights (None: skip it, for weights about
            to be overwritten, as in :meth:`from_gpt2`).

    Example:
        >>> model = GPT(GPTConfig(vocab_size=16, block_size=8, n_layer=2, n_head=2, n_embd=32))
        >>> logits = model(np.zeros((1, 8), dtype=np.int64))  # (1, 8, 16)
    """

    def __init__(
        self, config: GPTConfig, dtype: str | None = None, seed: int | None = 0, **kwargs: Any
    ) -> None:
        super().__init__(dtype=resolve_dtype(dtype), **kwargs)
        self.config = config
        self.wte = layers.Embedding(config.vocab_size, config.n_embd, dtype=resolve_dtype(dtype))
        self.wpe = layers.Embedding(config.block_size, config.n_embd, dtype=resolve_dtype(dtype))
        self.drop = layers.Dropout(config.dropout, dtype=resolve_dtype(dtype))
        self.blocks = [Block(config, dtype=dtype) for _ in range(config.n_layer)]
        eps = config.layer_norm_eps
        self.ln_f = layers.LayerNormalization(epsilon=eps, dtype=resolve_dtype(dtype))
        # 1 = attend, 0 = masked (listing 5.1); a constant, not a weight
        causal = np.tril(np.ones((config.block_size, config.block_size)))  # (block, block)
        self.causal_mask = tf.constant(causal)
        for layer in (self.wte, self.wpe, self.ln_f):  # weights now: the sizes are known
            layer.build((None, None, config.n_embd))
        self.built = True  # every sublayer is built: no build() call left to Keras
        if seed is not None:
            import_params(self, init_gpt_params(config, seed, dtype or "float32"))

    def call(self, idx: Tensor | np.ndarray, training: bool = False) -> Tensor:
        x = self.hidden_states(idx, training)  # (B, T, D)
        return tf.matmul(x, self.wte.embeddings, transpose_b=True)  # (B, T, V): the tied head

    def hidden_states(self, idx: Tensor | np.ndarray, training: bool = False) -> Tensor:
        """LN_f(h_L) (B, T, D): the last hidden states, the input of the tied head (and of a
        value or reward head, outline 2.3.2)."""
        idx = tf.convert_to_tensor(idx)
        check_token_ids(idx.shape, self.config, ids=idx if tf.executing_eagerly() else None)
        t = tf.shape(idx)[1]
        positions = tf.range(t)  # (T,)
        # h_0 = W_te[x] + W_pe[0..T-1]; logits = LN_f(h_L) W_te^T
        x = self.drop(self.wte(idx) + self.wpe(positions), training=training)  # (B, T, D)
        mask = self.causal_mask[:t, :t]  # (T, T)
        for block in self.blocks:
            x = block(x, mask, training=training)
        return self.ln_f(x)

    @classmethod
    def from_gpt2(cls, state_dict: Mapping[str, Any], n_head: int, dtype: str | None = None) -> GPT:
        """A GPT holding the weights of a Hugging Face ``GPT2LMHeadModel`` state dict.

        Args:
            state_dict: ``{name: torch tensor or NumPy array}``, e.g. ``hf_model.state_dict()``.
            n_head: number of attention heads (12 for GPT-2 small).
            dtype: parameter dtype (``"float32"`` by default).
        """
        config, params = gpt2_to_canonical(state_dict, n_head, dtype or "float32")
        return import_params(cls(config, dtype, seed=None), params)

    def num_parameters(self) -> int:
        """Number of parameters, the tied head counted once."""
        return sum(int(tf.size(v)) for v in self.trainable_variables)

    def get_config(self) -> dict:
        """The configuration as a dict (``get_config``/``from_config``: Keras' serialisation)."""
        return self.config.to_dict()

    @classmethod
    def from_config(cls, values: dict) -> GPT:
        """Rebuild a (freshly initialised) GPT from :meth:`get_config`."""
        return cls(GPTConfig.from_dict(values))
