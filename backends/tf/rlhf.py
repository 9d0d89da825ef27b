"""RL for language models (outline 2.3, 3.1.4-3.1.5): the GPT as a policy, and the learner.

    log pi(y_t | x, y_<t) = log softmax(LN_f(h_L) W_te^T)_t [y_t]    (the tied head)
    V(s_t) = LN_f(h_L)_t w + b                                      (ValueHead: PPO's value)
    score(y) = V at y's last completion token                       (a reward model's score)

The objectives are in ``objectives.py`` beside this file; the learner's framework-neutral
half (the update's checks, the loss of each objective, the statistics) is
``core/learners/rlhf.py``: ``RLHFLearner`` here adds only the tensors, the forward pass and
the gradient step. The float64 oracle is ``core/reference/rlhf_policy.py``; the twin in the
other backend has the same names, order and comments (``duetrl diff rlhf``).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tensorflow import Tensor

import duetrl.backends.tf.objectives as objectives
from duetrl.backends.tf.generation import decode_hidden, decode_step, decoding_weights
from duetrl.backends.tf.gpt import GPT
from duetrl.backends.tf.objectives import gather_log_probs, last_token_index
from duetrl.backends.tf.optim import Adam, minimize
from duetrl.backends.tf.runtime import resolve_dtype
from duetrl.backends.tf.weights import import_params
from duetrl.core.constants import GRAD_CLIP_NORM
from duetrl.core.interfaces.gpt_config import check_token_ids
from duetrl.core.interfaces.rlhf import init_value_head_params
from duetrl.core.learners.rlhf import RLHFLearnerBase

# ---------------------------------------------------------------------------------------------
# The GPT as a policy, and a scalar head on its last hidden state
# ---------------------------------------------------------------------------------------------


def hidden_states(model: GPT, tokens: Tensor | np.ndarray) -> Tensor:
    """LN_f(h_L) (B, T, D) of ``tokens``: ``GPT.hidden_states``, bad input named ``tokens``."""
    idx = tf.convert_to_tensor(tokens)
    check_token_ids(idx.shape, model.config, "tokens", idx if tf.executing_eagerly() else None)
    # in the decoder's functional ops: half the graph nodes of Keras layers, each traced in Python
    return decode_hidden(model.config, decoding_weights(model), idx, None, 0)[0]


def token_log_probs(model: GPT, tokens: Tensor | np.ndarray) -> Tensor:
    """log pi(tokens[:, t+1] | tokens[:, :t+1]): (B, T) ids -> (B, T-1), differentiable."""
    tokens = tf.convert_to_tensor(tokens)
    logits = decode_step(model.config, decoding_weights(model), tokens[:, :-1], None, 0)[0]
    return gather_log_probs(logits, tokens[:, 1:])  # (B, T-1)


def inference_log_probs(model: GPT, tokens: np.ndarray) -> np.ndarray:
    """token_log_probs without gradient, as NumPy (B, T-1): the rollout's reference pass.

    A graph traced once per model and shape (eager Keras is ~8x slower)."""
    tokens = np.asarray(tokens, np.int64)
    check_token_ids(tokens.shape, model.config, "tokens", tokens)
    graph = _graph(model, "log_probs", tokens.shape, lambda t: token_log_probs(model, t))
    return graph(tf.constant(tokens)).numpy()


def inference_values(model: GPT, value_head: ValueHead, tokens: np.ndarray) -> np.ndarray:
    """V(s_t) (B, T-1) of ``value_head`` on ``model``'s hidden states, without gradient, as
    NumPy (PPO's old values). A graph traced once per model, head and shape."""
    tokens = np.asarray(tokens, np.int64)
    check_token_ids(tokens.shape, model.config, "tokens", tokens)
    key = f"values {id(value_head)}"
    graph = _graph(model, key, tokens.shape, lambda t: value_head(hidden_states(model, t[:, :-1])))
    return graph(tf.constant(tokens)).numpy()


def _graph(model: GPT, key: str, shape: tuple[int, ...], fn: Any) -> Any:
    """``fn`` of int64 tokens of ``shape``, traced once, kept on the model (untracked by Keras)."""
    graphs = model.__dict__.setdefault("_inference_graphs", {})
    if (key, shape) not in graphs:
        spec = tf.TensorSpec(shape, tf.int64)
        graphs[key, shape] = tf.function(fn, autograph=False).get_concrete_function(spec)
    return graphs[key, shape]


def token_entropy(logits: Tensor) -> Tensor:
    """H = -sum_v p_v log p_v of each next-token distribution: (..., V) -> (...)."""
    logp = tf.nn.log_softmax(logits, axis=-1)
    return -tf.reduce_sum(tf.exp(logp) * logp, axis=-1)


def policy_outputs(
    model: GPT, tokens: Tensor, value_head: ValueHead | None = None
) -> tuple[Tensor, Tensor, Tensor | None]:
    """One forward pass: (log-probs, entropies, values or None), each (B, T-1)."""
    hidden = hidden_states(model, tokens[:, :-1])  # (B, T-1, D)
    logits = tf.tensordot(hidden, model.wte.embeddings, axes=[[2], [1]])  # the tied head
    logp = gather_log_probs(logits, tokens[:, 1:])  # log pi(y_t), (B, T-1)
    values = None if value_head is None else value_head(hidden)  # V(s_t), (B, T-1)
    return logp, token_entropy(logits), values


class ValueHead(keras.layers.Layer):
    """A scalar head v = h w + b on the GPT's last hidden state (PPO's value, a reward model).

    Args:
        n_embd: width D of the hidden state.
        dtype: parameter dtype (``"float32"`` by default).
        seed: seed of the NumPy initialiser (core/interfaces/rlhf.py init_value_head_params);
            None skips it.

    Example:
        >>> head = ValueHead(16)
        >>> head(tf.zeros((2, 5, 16))).shape  # (B, T, D) -> (B, T)
        TensorShape([2, 5])
    """

    def __init__(
        self, n_embd: int, dtype: str | None = None, seed: int | None = 0, **kwargs: Any
    ) -> None:
        super().__init__(dtype=resolve_dtype(dtype), **kwargs)
        self.n_embd = n_embd
        self.linear = keras.layers.Dense(1, dtype=self.dtype_policy)
        self.build()
        if seed is not None:
            import_params(self, init_value_head_params(n_embd, seed, dtype or "float32"))

    def build(self, input_shape: Any = None) -> None:
        self.linear.build((None, self.n_embd))
        self.built = True

    def call(self, hidden: Tensor) -> Tensor:
        return self.linear(hidden)[..., 0]  # (B, T, D) -> (B, T)


def sequence_scores(values: Tensor, mask: Tensor | np.ndarray) -> Tensor:
    """A reward model's score: values[b, last completion token]; (B, T), (B, T-1) -> (B,)."""
    last = last_token_index(tf.convert_to_tensor(mask)) + 1  # mask column t flags token t + 1
    return tf.gather(values, last[:, None], batch_dims=1)[:, 0]  # (B,)


# ---------------------------------------------------------------------------------------------
# The gradient step the core training loop calls
# ---------------------------------------------------------------------------------------------


class PolicyWithHead(keras.layers.Layer):
    """The trainable parts of one update: the GPT and, for PPO or a reward model, its head."""

    def __init__(self, policy: GPT, value_head: ValueHead | None = None) -> None:
        super().__init__()
        self.policy = policy
        self.value_head = value_head
        self.built = True  # both parts are built already


class RLHFLearner(RLHFLearnerBase):
    """The policy (and head), its Adam, and one gradient step per call of :meth:`update`.

    Args:
        policy: a ``GPT`` (for ``reward_model``: the reward model's trunk).
        value_head: a ``ValueHead`` for ``ppo`` and ``reward_model``, else None.
        learning_rate: Adam's step size (the loop may change ``self.learning_rate``).
        max_grad_norm: clip the global gradient norm to this (None: no clipping).
        weight_decay: AdamW's decoupled weight decay of matrices (0: Adam).

    ``update`` and the objectives are ``core/learners/rlhf.py``'s. Dropout is switched off
    (torch ``eval()``, Keras ``training=False``): the ratio pi / pi_old must be exactly 1
    before the first step of each batch.

    Example:
        >>> learner = RLHFLearner(GPT(config), ValueHead(config.n_embd), learning_rate=1e-3)
        >>> stats = learner.update(batch, "grpo", beta=0.04)  # loss, grad_norm, kl, ...
    """

    objectives = objectives
    fixed_pair_rows = True  # a traced step: a fixed number of DPO pairs, one trace

    def __init__(
        self,
        policy: GPT,
        value_head: ValueHead | None = None,
        learning_rate: float = 1e-4,
        max_grad_norm: float | None = GRAD_CLIP_NORM,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(policy, value_head, learning_rate)
        self.trainable = PolicyWithHead(policy, value_head)
        self.optimizer = Adam(self.trainable, max_grad_norm, weight_decay)
        self.compiled_step = tf.function(self._step, autograph=False)  # eager: several x slower
        self.dtype = tf.as_dtype(policy.wte.embeddings.dtype)

    def _step(
        self, objective: str, batch: dict, coefficients: dict, learning_rate: Tensor
    ) -> dict[str, Tensor]:
        """Loss, gradients, clipping and Adam: the step (traced once per objective and shape)."""
        # dropout off: every call in the loss uses training=False
        return minimize(self.optimizer, lambda: self.objective_loss(objective, batch, coefficients),
                        learning_rate)

    def _as_tensor(self, value: np.ndarray, floating: bool) -> Tensor:
        return tf.cast(tf.convert_to_tensor(value), self.dtype if floating else tf.int64)

    def _step_learning_rate(self) -> Tensor:
        return tf.constant(self.learning_rate, dtype=tf.float64)  # a tensor: one trace

    def _statistics(self) -> AbstractContextManager:
        return tf.name_scope("statistics")  # the tape records them; nothing differentiates them

    def _policy_outputs(self, tokens: Tensor, value_head: ValueHead | None = None) -> tuple:
        return policy_outputs(self.policy, tokens, value_head)

    def _token_log_probs(self, tokens: Tensor) -> Tensor:
        return token_log_probs(self.policy, tokens)

    def _sequence_scores(self, tokens: Tensor, mask: Tensor) -> Tensor:
        return sequence_scores(self.value_head(hidden_states(self.policy, tokens)), mask)
