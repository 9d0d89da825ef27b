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
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from duetrl.backends.torch.optim import Adam, minimize
from duetrl.backends.torch.runtime import resolve_dtype
from duetrl.backends.torch.weights import import_params
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
    filled = torch.where(mask > 0, scores, torch.full_like(scores, MASK_FILL_VALUE))
    return F.log_softmax(filled, dim=-1) * mask
    # END SOLUTION


def walk_entropy(log_pi: Tensor, mask: Tensor) -> Tensor:
    """H = -sum_k m_k pi_k log pi_k over the last axis."""
    return -torch.sum(torch.exp(log_pi) * log_pi * mask, dim=-1)


# ---------------------------------------------------------------------------------------------
# The walker: embeddings, the history encoder, the policy MLP
# ---------------------------------------------------------------------------------------------


class GRUCell(nn.Module):
    """h' = (1 - z) n + z h, gates (reset, update, new) from x W_i + b_i and h W_h + b_h."""

    def __init__(self, input_dim: int, hidden_dim: int, dtype: str | None = None) -> None:
        super().__init__()
        self.input_gates = nn.Linear(input_dim, 3 * hidden_dim, dtype=resolve_dtype(dtype))
        self.hidden_gates = nn.Linear(hidden_dim, 3 * hidden_dim, dtype=resolve_dtype(dtype))

    def forward(self, x: Tensor, h: Tensor) -> Tensor:
        a_r, a_z, a_n = torch.chunk(self.input_gates(x), 3, dim=-1)  # (B, H) each
        c_r, c_z, c_n = torch.chunk(self.hidden_gates(h), 3, dim=-1)
        r, z = torch.sigmoid(a_r + c_r), torch.sigmoid(a_z + c_z)
        n = torch.tanh(a_n + r * c_n)  # the reset gate scales the state's share of n
        return (1.0 - z) * n + z * h


class KGWalker(nn.Module):
    """MINERVA's policy: ``walker.step(...)`` maps one step's state to (log pi (B, K), h_t).

    Args:
        config: a :class:`duetrl.core.interfaces.kg.WalkerConfig`.
        dtype: parameter dtype (``"float32"`` by default, ``"float64"`` for tests).
        seed: seed of the NumPy initialiser (``init_walker_params``): both backends start from
            the same weights.
    """

    def __init__(self, config: WalkerConfig, dtype: str | None = None, seed: int = 0) -> None:
        super().__init__()
        c, dt = config, resolve_dtype(dtype)
        self.config = config
        edge = c.relation_dim + c.entity_dim  # an action is [relation; entity]
        self.relation_embeddings = nn.Embedding(c.num_relations, c.relation_dim, dtype=dt)
        self.entity_embeddings = nn.Embedding(c.num_entities, c.entity_dim, dtype=dt)
        self.history = GRUCell(edge, c.history_dim, dtype=dtype)
        self.policy_hidden = nn.Linear(c.history_dim + edge, c.mlp_dim, dtype=dt)
        self.policy_out = nn.Linear(c.mlp_dim, edge, dtype=dt)
        import_params(self, init_walker_params(config, seed, dtype or "float32"))

    def initial_state(self, batch: int) -> Tensor:
        """h_{-1} = 0, (B, H)."""
        return torch.zeros(batch, self.config.history_dim, dtype=self.policy_out.weight.dtype)

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
        x = torch.cat([self.relation_embeddings(previous_relations), here], dim=-1)
        hidden = self.history(x, hidden)  # h_t = GRU(x_t, h_{t-1})
        state = torch.cat([hidden, here, self.relation_embeddings(query_relations)], dim=-1)
        out = self.policy_out(F.relu(self.policy_hidden(state)))  # o_t, (B, d_r + d_e)
        actions = torch.cat(
            [
                self.relation_embeddings(candidate_relations),
                self.entity_embeddings(candidate_entities),
            ],
            dim=-1,
        )  # (B, K, .)
        scores = torch.einsum("bkd,bd->bk", actions, out)  # s_k = [R[r_k]; E[e_k]] . o_t
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
    hidden = walker.initial_state(path_entities.shape[0])
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
    return torch.stack(steps, dim=1)


def walk_loss(
    log_pi: Tensor, masks: Tensor, actions: Tensor, advantages: Tensor, entropy_coef: Tensor | float
) -> tuple[Tensor, dict[str, Tensor]]:
    """L = -1/(N T) sum A_n log pi(a_nt) - beta mean_nt H_nt; stats policy_loss, entropy."""
    taken = torch.gather(log_pi, 2, actions[..., None])[..., 0]  # log pi(a_nt | s_nt), (N, T)
    policy_loss = -torch.mean(advantages[:, None] * taken)  # A_n on each step of walk n
    entropy = torch.mean(walk_entropy(log_pi, masks))
    return policy_loss - entropy_coef * entropy, {"policy_loss": policy_loss, "entropy": entropy}


# ---------------------------------------------------------------------------------------------
# Acting, and the gradient step the trainer calls
# ---------------------------------------------------------------------------------------------


@torch.inference_mode()
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
    dtype = walker.policy_out.weight.dtype
    ids = [
        torch.as_tensor(np.asarray(a, np.int64))
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
    mask = action_mask(ids[3], ids[4], ids[1], ids[5], ids[2], ids[6], training).to(dtype)
    log_pi, hidden = walker.step(torch.as_tensor(hidden).to(dtype), *ids[:5], mask)
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
        self.compiled_step = self._step  # PyTorch runs eagerly: nothing to compile
        self.dtype = walker.policy_out.weight.dtype

    def update(self, walks: dict[str, np.ndarray], advantages: np.ndarray) -> dict[str, float]:
        """One step on N walks: ``walks`` holds ``query_relations`` (N,), ``relations`` and
        ``entities`` (N, T+1), ``actions`` (N, T), ``candidate_relations``,
        ``candidate_entities`` and ``masks`` (N, T, K) (``core.cases.kg.walk.Walks``);
        ``advantages`` (N,). Returns floats: loss, grad_norm, policy_loss, entropy."""
        ids = {
            k: torch.as_tensor(np.asarray(walks[k], np.int64))
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
            torch.as_tensor(np.asarray(walks["masks"])).to(self.dtype),
            torch.as_tensor(np.asarray(advantages)).to(self.dtype),
            self.entropy_coef,
            self.learning_rate,
        )
        return {name: float(value) for name, value in stats.items()}

    def _step(
        self,
        ids: dict[str, Tensor],
        masks: Tensor,
        advantages: Tensor,
        entropy_coef: Any,
        learning_rate: Any,
    ) -> dict[str, Tensor]:
        """Replay the walks, the loss, gradients, clipping and Adam (eager, as written)."""

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
            beta = entropy_coef  # a float: nothing is traced
            return walk_loss(log_pi, masks, ids["actions"], advantages, beta)

        return minimize(self.optimizer, loss_and_stats, learning_rate)
