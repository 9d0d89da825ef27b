"""Knowledge-graph reasoning by walking the graph (outline 6.3.3; MINERVA, Das et al. 2018):
the walker's policy, its action mask and the REINFORCE step, as tensors.

    m_k = [r_k != <pad>] and not (training, e_t = e_q, r_k = r_q, e_k = answer)   (the mask)
    h_t = GRU([R[r_t]; E[e_t]], h_{t-1})                                   (the path so far)
    o_t = W_2 ReLU(W_1 [h_t; E[e_t]; R[r_q]] + b_1) + b_2
    log pi(k | s_t) = log softmax over {j: m_j = 1} of [R[r_k]; E[e_k]] . o_t
    L = -1/(N T) sum_nt A_n log pi(a_nt | s_nt) - beta 1/(N T) sum_nt H(pi(. | s_nt))

The graph, the action grid, the walks, sampling and the baseline live on the host
(``core/cases/kg``); this file holds only the tensors. The float64 oracle is
``core/reference/kg.py``; the twin in the other backend has the same names, order and comments
(``duetrl diff kg``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf
from keras import layers
from tensorflow import Tensor

from duetrl.backends.tf.optim import Adam, minimize
from duetrl.backends.tf.runtime import resolve_dtype
from duetrl.backends.tf.weights import import_params
from duetrl.core.constants import GRAD_CLIP_NORM, MASK_FILL_VALUE
from duetrl.core.interfaces.kg import PAD_RELATION, WalkerConfig, init_walker_params
from duetrl.core.interfaces.rlhf import check_non_negative

# ---------------------------------------------------------------------------------------------
# The action mask and the policy over the admissible places
# ---------------------------------------------------------------------------------------------


def action_mask(
    candidate_relations: Tensor,
    candidate_entities: Tensor,
    current_entities: Tensor,
    query_entities: Tensor,
    query_relations: Tensor,
    answers: Tensor,
    training: bool,
) -> Tensor:
    """m (B, K), bool: True where the walker may go. Padding is closed; the stay (NO_OP, e_t)
    and every edge are open, except, while training, the query's answer edge at e_q."""
    # BEGIN SOLUTION
    admissible = candidate_relations != PAD_RELATION  # (B, K): padding closed
    if training:  # the edge (e_q, r_q, answer) would answer the query in one hop: closed
        at_query = (current_entities == query_entities)[:, None]  # (B, 1)
        answer_edge = (
            at_query
            & (candidate_relations == query_relations[:, None])
            & (candidate_entities == answers[:, None])
        )
        admissible = admissible & ~answer_edge
    return admissible
    # END SOLUTION


def masked_log_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """log pi over the admissible places, (B, K) -> (B, K); 0 at the masked ones.

    Masked scores are replaced by ``MASK_FILL_VALUE`` before the softmax (probability 0) and
    log pi is multiplied by the mask after it, so no -1e9 reaches a loss."""
    # BEGIN SOLUTION
    filled = tf.where(
        mask > 0, scores, tf.fill(tf.shape(scores), tf.cast(MASK_FILL_VALUE, scores.dtype))
    )
    return tf.nn.log_softmax(filled, axis=-1) * mask
    # END SOLUTION


def walk_entropy(log_pi: Tensor, mask: Tensor) -> Tensor:
    """H = -sum_k m_k pi_k log pi_k over the last axis."""
    return -tf.reduce_sum(tf.exp(log_pi) * log_pi * mask, axis=-1)


# ---------------------------------------------------------------------------------------------
# The walker: embeddings, the history encoder, the policy MLP
# ---------------------------------------------------------------------------------------------


class GRUCell(layers.Layer):
    """h' = (1 - z) n + z h, gates (reset, update, new) from x W_i + b_i and h W_h + b_h."""

    def __init__(
        self, input_dim: int, hidden_dim: int, dtype: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(dtype=resolve_dtype(dtype), **kwargs)
        self.input_gates = layers.Dense(3 * hidden_dim, dtype=resolve_dtype(dtype))
        self.hidden_gates = layers.Dense(3 * hidden_dim, dtype=resolve_dtype(dtype))
        self.input_gates.build((None, input_dim))  # weights now: the sizes are known
        self.hidden_gates.build((None, hidden_dim))

    def call(self, x: Tensor, h: Tensor) -> Tensor:
        a_r, a_z, a_n = tf.split(self.input_gates(x), 3, axis=-1)  # (B, H) each
        c_r, c_z, c_n = tf.split(self.hidden_gates(h), 3, axis=-1)
        r, z = tf.sigmoid(a_r + c_r), tf.sigmoid(a_z + c_z)
        n = tf.tanh(a_n + r * c_n)  # the reset gate scales the state's share of n
        return (1.0 - z) * n + z * h


class KGWalker(layers.Layer):
    """MINERVA's policy: ``walker.step(...)`` maps one step's state to (log pi (B, K), h_t).

    Args:
        config: a :class:`duetrl.core.interfaces.kg.WalkerConfig`.
        dtype: parameter dtype (``"float32"`` by default, ``"float64"`` for tests).
        seed: seed of the NumPy initialiser (``init_walker_params``): both backends start from
            the same weights.
    """

    def __init__(
        self, config: WalkerConfig, dtype: str | None = None, seed: int = 0, **kwargs: Any
    ) -> None:
        super().__init__(dtype=resolve_dtype(dtype), **kwargs)
        c, dt = config, resolve_dtype(dtype)
        self.config = config
        edge = c.relation_dim + c.entity_dim  # an action is [relation; entity]
        self.relation_embeddings = layers.Embedding(c.num_relations, c.relation_dim, dtype=dt)
        self.entity_embeddings = layers.Embedding(c.num_entities, c.entity_dim, dtype=dt)
        self.history = GRUCell(edge, c.history_dim, dtype=dtype)
        self.policy_hidden = layers.Dense(c.mlp_dim, dtype=dt)
        self.policy_out = layers.Dense(edge, dtype=dt)
        for layer, size in (
            (self.relation_embeddings, None),
            (self.entity_embeddings, None),
            (self.policy_hidden, c.history_dim + edge),
            (self.policy_out, c.mlp_dim),
        ):
            layer.build((None, size))  # weights now: the sizes are known
        self.built = True
        import_params(self, init_walker_params(config, seed, dtype or "float32"))

    def initial_state(self, batch: int) -> Tensor:
        """h_{-1} = 0, (B, H)."""
        return tf.zeros((batch, self.config.history_dim), dtype=self.policy_out.kernel.dtype)

    def step(
        self,
        hidden: Tensor,
        previous_relations: Tensor,
        current_entities: Tensor,
        query_relations: Tensor,
        candidate_relations: Tensor,
        candidate_entities: Tensor,
        mask: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """(log pi (B, K), h_t (B, H)) from h_{t-1}, r_t, e_t (B,), r_q (B,), the places."""
        here = self.entity_embeddings(current_entities)  # E[e_t], (B, d_e)
        x = tf.concat([self.relation_embeddings(previous_relations), here], axis=-1)
        hidden = self.history(x, hidden)  # h_t = GRU(x_t, h_{t-1})
        state = tf.concat([hidden, here, self.relation_embeddings(query_relations)], axis=-1)
        out = self.policy_out(tf.nn.relu(self.policy_hidden(state)))  # o_t, (B, d_r + d_e)
        actions = tf.concat(
            [
                self.relation_embeddings(candidate_relations),
                self.entity_embeddings(candidate_entities),
            ],
            axis=-1,
        )  # (B, K, .)
        scores = tf.einsum("bkd,bd->bk", actions, out)  # s_k = [R[r_k]; E[e_k]] . o_t
        return masked_log_softmax(scores, mask), hidden


def walk_log_probs(
    walker: KGWalker,
    query_relations: Tensor,
    path_relations: Tensor,
    path_entities: Tensor,
    candidate_relations: Tensor,
    candidate_entities: Tensor,
    masks: Tensor,
) -> Tensor:
    """log pi (N, T, K) of N walks replayed step by step (r_t, e_t (N, T); places (N, T, K))."""
    hidden = walker.initial_state(tf.shape(path_entities)[0])
    steps = []
    for t in range(path_entities.shape[1]):  # T is a few hops: a Python loop
        log_pi, hidden = walker.step(
            hidden,
            path_relations[:, t],
            path_entities[:, t],
            query_relations,
            candidate_relations[:, t],
            candidate_entities[:, t],
            masks[:, t],
        )
        steps.append(log_pi)
    return tf.stack(steps, axis=1)


def walk_loss(
    log_pi: Tensor, masks: Tensor, actions: Tensor, advantages: Tensor, entropy_coef: Tensor | float
) -> tuple[Tensor, dict[str, Tensor]]:
    """L = -1/(N T) sum A_n log pi(a_nt) - beta mean_nt H_nt; stats policy_loss, entropy."""
    taken = tf.gather(log_pi, actions, axis=2, batch_dims=2)  # log pi(a_nt | s_nt), (N, T)
    policy_loss = -tf.reduce_mean(advantages[:, None] * taken)  # A_n on each step of walk n
    entropy = tf.reduce_mean(walk_entropy(log_pi, masks))
    return policy_loss - entropy_coef * entropy, {"policy_loss": policy_loss, "entropy": entropy}


# ---------------------------------------------------------------------------------------------
# Acting, and the gradient step the trainer calls
# ---------------------------------------------------------------------------------------------


def _inference_graph(walker: KGWalker, training: bool) -> Any:
    """The step without gradient, traced once per shape and kept on the walker."""
    graphs = walker.__dict__.setdefault("_kg_graphs", {})

    def step(hidden: Tensor, *ids: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        mask = tf.cast(
            action_mask(ids[3], ids[4], ids[1], ids[5], ids[2], ids[6], training), hidden.dtype
        )
        log_pi, hidden = walker.step(hidden, *ids[:5], mask)
        return log_pi, mask, hidden

    if training not in graphs:  # eager Keras is several times slower
        graphs[training] = tf.function(step, autograph=False, reduce_retracing=True)
    return graphs[training]


def inference_step(
    walker: KGWalker,
    hidden: np.ndarray,
    previous_relations: np.ndarray,
    current_entities: np.ndarray,
    query_relations: np.ndarray,
    candidate_relations: np.ndarray,
    candidate_entities: np.ndarray,
    query_entities: np.ndarray,
    answers: np.ndarray,
    training: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One step without gradient, as NumPy: (log pi (B, K) float64, mask (B, K), h_t)."""
    dtype = walker.policy_out.kernel.dtype
    ids = [
        tf.constant(np.asarray(a, np.int64))
        for a in (
            previous_relations,
            current_entities,
            query_relations,
            candidate_relations,
            candidate_entities,
            query_entities,
            answers,
        )
    ]
    log_pi, mask, hidden = _inference_graph(walker, bool(training))(
        tf.cast(np.asarray(hidden), dtype), *ids
    )
    return (log_pi.numpy().astype(np.float64), mask.numpy().astype(np.float64), hidden.numpy())


class KGLearner:
    """The walker, its Adam, and one REINFORCE step per :meth:`update`.

    Args:
        walker: the ``KGWalker`` being trained.
        learning_rate: Adam's step size.
        entropy_coef: beta, the entropy bonus' weight.
        max_grad_norm: clip the global gradient norm to this (None: no clipping).

    Example:
        >>> learner = KGLearner(KGWalker(config), learning_rate=1e-3, entropy_coef=0.02)
        >>> stats = learner.update(walks, advantages)  # loss, grad_norm, policy_loss, entropy
    """

    def __init__(
        self,
        walker: KGWalker,
        learning_rate: float = 1e-3,
        entropy_coef: float = 0.02,
        max_grad_norm: float | None = GRAD_CLIP_NORM,
    ) -> None:
        check_non_negative("learning_rate", learning_rate)
        check_non_negative("entropy_coef", entropy_coef)
        self.walker, self.learning_rate, self.entropy_coef = walker, learning_rate, entropy_coef
        self.optimizer = Adam(walker, max_grad_norm)
        self.compiled_step = tf.function(self._step, autograph=False)  # eager: several x slower
        self.dtype = walker.policy_out.kernel.dtype

    def update(self, walks: dict[str, np.ndarray], advantages: np.ndarray) -> dict[str, float]:
        """One step on N walks: ``walks`` holds ``query_relations`` (N,), ``relations`` and
        ``entities`` (N, T+1), ``actions`` (N, T), ``candidate_relations``,
        ``candidate_entities`` and ``masks`` (N, T, K) (``core.cases.kg.walk.Walks``);
        ``advantages`` (N,). Returns floats: loss, grad_norm, policy_loss, entropy."""
        ids = {
            k: tf.constant(np.asarray(walks[k], np.int64))
            for k in (
                "query_relations",
                "relations",
                "entities",
                "actions",
                "candidate_relations",
                "candidate_entities",
            )
        }
        stats = self.compiled_step(
            ids,
            tf.cast(np.asarray(walks["masks"]), self.dtype),
            tf.cast(np.asarray(advantages), self.dtype),
            tf.constant(self.entropy_coef, tf.float64),
            tf.constant(self.learning_rate, tf.float64),
        )  # tensors: one trace
        return {name: float(value) for name, value in stats.items()}

    def _step(
        self,
        ids: dict[str, Tensor],
        masks: Tensor,
        advantages: Tensor,
        entropy_coef: Any,
        learning_rate: Any,
    ) -> dict[str, Tensor]:
        """Replay the walks, the loss, gradients, clipping and Adam (traced once per shape)."""

        def loss_and_stats() -> tuple[Tensor, dict[str, Tensor]]:
            log_pi = walk_log_probs(
                self.walker,
                ids["query_relations"],
                ids["relations"][:, :-1],
                ids["entities"][:, :-1],
                ids["candidate_relations"],
                ids["candidate_entities"],
                masks,
            )
            beta = tf.cast(entropy_coef, masks.dtype)
            return walk_loss(log_pi, masks, ids["actions"], advantages, beta)

        return minimize(self.optimizer, loss_and_stats, learning_rate)
