"""The Decision Transformer's one tensor piece (outline 3.2.1; Chen et al. 2021): the GPT's
logits of a batch of token windows, without gradient, as NumPy.

Everything else of the Decision Transformer is host-side and lives once in
``core/agents/decision_transformer.py`` (tokens, windows, loss mask, the acting loop): it is the
unchanged ``GPT`` on a shared vocabulary of return, state and action tokens, trained by
``LMTrainer.train_step(x, y, lr, weights)`` with weight 1 only where the target is an action.
The twin in the other backend has the same names, order and comments
(``duetrl diff decision_transformer``).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from duetrl.backends.tf.gpt import GPT
from duetrl.core.interfaces.gpt_config import check_token_ids


def inference_logits(model: GPT, tokens: np.ndarray) -> np.ndarray:
    """Logits ``(B, T, V)`` of token ids ``tokens`` ``(B, T)``, dropout off, as NumPy.

    A graph traced once per model and shape (eager Keras is several times slower).
    """
    tokens = np.asarray(tokens, np.int64)
    check_token_ids(tokens.shape, model.config, "tokens", tokens)
    graphs = model.__dict__.setdefault("_logit_graphs", {})  # untracked by Keras
    if tokens.shape not in graphs:
        spec = tf.TensorSpec(tokens.shape, tf.int64)
        graphs[tokens.shape] = tf.function(lambda t: model(t, training=False),
                                           autograph=False).get_concrete_function(spec)
    return graphs[tokens.shape](tf.constant(tokens)).numpy()  # (B, T, V)
