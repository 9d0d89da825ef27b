"""A BERT-style encoder trained by masked-LM (outline 7.1.2): the GPT's blocks, no causal mask.

    h_0 = W_te[x] + W_pe[0..T-1]
    h'_l = h_{l-1} + Dropout(Attn(LN_1(h_{l-1}); M))   M[b, i, j] = a[b, j]: bidirectional
    h_l = h'_l + Dropout(MLP(LN_2(h'_l)))
    logits = LN_m(GELU(LN_f(h_L) W_d + b_d)) W_te^T + b_o   the masked-LM head, tied to W_te

``a`` (B, T) is the padding mask (1 = token, 0 = padding). The blocks are the GPT's own
(``gpt.Block``), called with the padding mask where the GPT passes its causal one. Parameters
have the GPT's canonical names plus ``head.*``, so one set of weights loads in both backends.
The float64 oracle is ``core/reference/encoder.py`` (model, masking rule, loss); the twin in
the other backend: ``duetrl diff encoder``.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from keras import Model, activations, layers
from tensorflow import Tensor

from duetrl.backends.tf.gpt import Block
from duetrl.backends.tf.runtime import as_tensor, resolve_dtype
from duetrl.backends.tf.training import LMTrainer, cross_entropy_loss
from duetrl.backends.tf.weights import import_params
from duetrl.core.interfaces.encoder_params import (
    check_attention_mask,
    init_encoder_params,
    masked_accuracy,
)
from duetrl.core.interfaces.gpt_config import GPTConfig, check_token_ids
from duetrl.core.tolerances import to_numpy

Ids = Tensor | np.ndarray  # token ids or a 0/1 mask, as a tensor or an array


class MLMHead(layers.Layer):
    """BERT's masked-LM head: Dense(D, D), GELU, LayerNorm, then W_te^T (tied) plus a bias."""

    def __init__(self, config: GPTConfig, dtype: str | None = None, **kwargs: object) -> None:
        super().__init__(dtype=resolve_dtype(dtype), **kwargs)
        eps = config.layer_norm_eps  # pinned: torch's default 1e-5, Keras' 1e-3
        self.gelu_approximate = config.gelu == "tanh"
        self.dense = layers.Dense(config.n_embd, dtype=resolve_dtype(dtype))
        self.ln = layers.LayerNormalization(epsilon=eps, dtype=resolve_dtype(dtype))
        self.bias = self.add_weight(shape=(config.vocab_size,), initializer="zeros", name="bias")
        for layer in (self.dense, self.ln):  # weights now: the sizes are known
            layer.build((None, None, config.n_embd))

    def call(self, hidden: Tensor, embeddings: Tensor) -> Tensor:
        approximate = self.gelu_approximate
        z = self.ln(activations.gelu(self.dense(hidden), approximate=approximate))  # (B, T, D)
        return tf.matmul(z, embeddings, transpose_b=True) + self.bias  # (B, T, V): tied to W_te


class BertEncoder(Model):
    """A bidirectional encoder: ``BertEncoder(config)(idx, attention_mask)`` maps token ids
    (B, T) to hidden states LN_f(h_L) (B, T, D).

    Args:
        config: a :class:`duetrl.core.interfaces.gpt_config.GPTConfig` (``block_size`` is the
            longest sequence).
        dtype: parameter dtype (``"float32"`` by default, ``"float64"`` for tests).
        seed: seed of the NumPy initialiser (core.interfaces.encoder_params.init_encoder_params:
            the body starts from the same numbers as ``GPT(config, seed=seed)``); None: skip it.

    Example:
        >>> encoder = BertEncoder(GPTConfig(vocab_size=16, block_size=8, n_layer=2, n_head=2,
        ...                                 n_embd=32))
        >>> h = encoder(np.zeros((1, 8), dtype=np.int64), np.ones((1, 8)))  # (1, 8, 32)
    """

    has_head = False

    def __init__(self, config: GPTConfig, dtype: str | None = None, seed: int | None = 0,
                 **kwargs: object) -> None:
        super().__init__(dtype=resolve_dtype(dtype), **kwargs)
        self.config = config
        self.wte = layers.Embedding(config.vocab_size, config.n_embd, dtype=resolve_dtype(dtype))
        self.wpe = layers.Embedding(config.block_size, config.n_embd, dtype=resolve_dtype(dtype))
        self.drop = layers.Dropout(config.dropout, dtype=resolve_dtype(dtype))
        self.blocks = [Block(config, dtype=dtype) for _ in range(config.n_layer)]
        eps = config.layer_norm_eps
        self.ln_f = layers.LayerNormalization(epsilon=eps, dtype=resolve_dtype(dtype))
        if self.has_head:
            self.head = MLMHead(config, dtype=dtype)
        for layer in (self.wte, self.wpe, self.ln_f):  # weights now: the sizes are known
            layer.build((None, None, config.n_embd))
        self.built = True  # every sublayer is built: no build() call left to Keras
        if seed is not None:
            params = init_encoder_params(config, seed, dtype or "float32", head=self.has_head)
            import_params(self, params)

    def call(self, idx: Ids, attention_mask: Ids | None = None, training: bool = False) -> Tensor:
        return self.hidden_states(idx, attention_mask, training)  # (B, T, D)

    def hidden_states(self, idx: Ids, attention_mask: Ids | None = None,
                      training: bool = False) -> Tensor:
        """LN_f(h_L) (B, T, D); ``attention_mask`` (B, T): 1 = token, 0 = padding (None: all
        tokens). No causal mask: every token reads every real token, later ones too."""
        idx = tf.convert_to_tensor(idx)
        check_token_ids(idx.shape, self.config, ids=idx if tf.executing_eagerly() else None)
        check_attention_mask(attention_mask if tf.executing_eagerly() else None, idx.shape)
        positions = tf.range(tf.shape(idx)[1])  # (T,)
        x = self.drop(self.wte(idx) + self.wpe(positions), training=training)  # (B, T, D)
        if attention_mask is None:  # every position is a token
            attention_mask = tf.ones(tf.shape(idx), dtype=x.dtype)
        mask = tf.cast(attention_mask, x.dtype)[:, None, :]  # (B, 1, T): M[b, i, j] = a[b, j]
        for block in self.blocks:
            x = block(x, mask, training=training)
        return self.ln_f(x)

    def num_parameters(self) -> int:
        """Number of parameters, the tied head counted once."""
        return sum(int(tf.size(v)) for v in self.trainable_variables)

    def get_config(self) -> dict:
        """The configuration as a dict (``get_config``/``from_config``: Keras' serialisation)."""
        return self.config.to_dict()

    @classmethod
    def from_config(cls, values: dict) -> BertEncoder:
        """Rebuild a (freshly initialised) model from :meth:`get_config`."""
        return cls(GPTConfig.from_dict(values))


class MaskedLM(BertEncoder):
    """The encoder with BERT's masked-LM head: ``MaskedLM(config)(idx, attention_mask)`` gives
    logits (B, T, V); :meth:`hidden_states` is the encoder's. Same arguments as BertEncoder."""

    has_head = True

    def call(self, idx: Ids, attention_mask: Ids | None = None, training: bool = False) -> Tensor:
        hidden = self.hidden_states(idx, attention_mask, training)  # (B, T, D)
        return self.head(hidden, self.wte.embeddings)  # (B, T, V)


def masked_lm_loss(logits: Tensor, targets: Tensor, selected: Tensor) -> Tensor:
    """Cross-entropy at the selected positions only: -1/|S| sum_{S} log p(x_{b,t}) (the float64
    oracle: ``core.reference.encoder.masked_lm_loss``); logits (B, T, V), the rest (B, T)."""
    return cross_entropy_loss(logits, targets, selected)  # sum(s * ce) / sum(s)


class MLMTrainer(LMTrainer):
    """A ``MaskedLM``, its AdamW optimiser and one masked-LM training step: ``LMTrainer``'s own
    step (training.py), whose loss weighted by the selection is :func:`masked_lm_loss`, and
    whose model reads the padding mask too. Only the batch differs: ``train_step`` and
    ``evaluate`` take a masked batch (inputs, targets, selected, attention mask).

    Args:
        model: a ``MaskedLM``.
        weight_decay: AdamW's decoupled weight decay (matrices only).
        max_grad_norm: clip the global gradient norm to this (None: no clipping).
    """

    @tf.function
    def _logits(self, x: Tensor, a: Tensor) -> Tensor:
        return self.model(x, a, training=False)

    def train_step(self, inputs: np.ndarray, targets: np.ndarray, selected: np.ndarray,
                   lr: float, attention_mask: np.ndarray | None = None) -> tuple[float, float]:
        """Forward, backward, clip, update on a masked batch (every array (B, T)).

        Returns:
            ``(masked-LM loss, gradient norm before clipping)`` as floats.
        """
        x, y, s, a = _arrays(inputs, targets, selected, attention_mask)
        # sum(s * ce) / sum(s): masked_lm_loss, the selected positions only
        loss, grad_norm = self._train_step(x, y, tf.constant(lr, tf.float64), s, a)
        return float(loss), float(grad_norm)

    def evaluate(self, inputs: np.ndarray, targets: np.ndarray, selected: np.ndarray,
                 attention_mask: np.ndarray | None = None) -> tuple[float, float]:
        """``(masked-LM loss, accuracy at the selected positions)``, dropout off."""
        x, y, s, a = _arrays(inputs, targets, selected, attention_mask)
        logits = self._logits(x, a)
        accuracy = masked_accuracy(to_numpy(logits), targets, selected)
        return float(masked_lm_loss(logits, y, s)), float(accuracy)


def _arrays(inputs, targets, selected, attention_mask) -> tuple:
    """The batch as tensors; ``selected`` as 0/1 floats; a padding mask of ones if None."""
    s = np.asarray(selected, dtype=np.float32)
    if s.shape != np.shape(targets) or not s.any():
        raise ValueError(f"selected: expected a non-empty selection of the targets' shape "
                         f"{np.shape(targets)}, got shape {s.shape} with {int(s.sum())} selected")
    a = np.ones(s.shape, np.float32) if attention_mask is None else attention_mask
    return tuple(as_tensor(v) for v in (inputs, targets, s, a))
