"""The logged data (outline 6.2.2): what a behaviour policy that is not the one being learned
showed to users, and what they clicked.

    beta(a | s_t) ~ exp(1.5 log popularity_a + 1.0 [topic(a) = topic(h_t)])

The logging policy is a popularity-skewed recommender with a little personalisation (the topic
of the user's last item), and every item keeps some chance (beta > 0 everywhere, so pi / beta
is defined). Each session of L + 1 items the user picked herself gives E = L - first + 1
logged events: at each state s_t (after her first t items, t = first .. L) one item
a_t ~ beta(. | s_t) is shown and r_t ~ Bernoulli(p(u, a_t)) recorded, with beta(a_t | s_t)
(the propensity) and h_{t+1} (her next own item, the target of next-item prediction).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from duetrl.core.cases.recommender.simulator import Simulator

POPULARITY_PUSH = 1.5
TOPIC_PUSH = 1.0


def behaviour_probs(simulator: Simulator, last_items: np.ndarray | None) -> np.ndarray:
    """beta(. | s) (n, N) from the users' last items (n,) (None: the empty session)."""
    c = simulator.catalogue
    logits = np.broadcast_to(POPULARITY_PUSH * c.popularity, (1, c.size))
    if last_items is not None:
        same = c.topic[None, :] == c.topic[np.asarray(last_items)][:, None]  # (n, N)
        logits = logits + TOPIC_PUSH * same
    logits = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    return probs / probs.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class LoggedData:
    """S sessions' logs: ``users`` (S, d) (hidden: the simulator's, for evaluation only),
    ``sessions`` (S, L + 1) item ids, and per event (S, E): ``actions``, ``rewards``,
    ``propensities`` beta(a_t | s_t), ``next_items``; events are at t = ``first`` .. L."""

    users: np.ndarray
    sessions: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    propensities: np.ndarray
    next_items: np.ndarray
    first: int

    @property
    def history(self) -> np.ndarray:
        """The items the model reads (S, L): the last item of each session is only a target."""
        return self.sessions[:, :-1]

    def __len__(self) -> int:
        return len(self.users)


def log_sessions(simulator: Simulator, n: int, history: int, first: int, seed: int) -> LoggedData:
    """``n`` new users, their sessions of ``history`` + 1 items, and the behaviour policy's
    logged events at t = ``first`` .. ``history``, all drawn from ``seed``.

    :raises ValueError: ``first`` outside [1, ``history``], or ``n`` < 1.
    """
    if n < 1:
        raise ValueError(f"n: expected an int >= 1, got {n!r}")
    if not 1 <= first <= history:
        raise ValueError(f"first: expected an int in [1, history={history}], got {first!r}")
    rng = np.random.default_rng((seed, 7))
    users = simulator.users(n, rng)
    sessions = simulator.sessions(users, history + 1, rng)
    steps = np.arange(first, history + 1)  # s_t: after the first t items
    actions = np.zeros((n, len(steps)), np.int64)
    propensities = np.zeros((n, len(steps)))
    for j, t in enumerate(steps):
        beta = behaviour_probs(simulator, sessions[:, t - 1])
        # inverse-CDF sampling: one uniform per event, as any language would write it
        cumulative = np.cumsum(beta, axis=1)
        u = rng.random((n, 1)) * cumulative[:, -1:]
        actions[:, j] = np.minimum((cumulative < u).sum(axis=1), beta.shape[1] - 1)
        propensities[:, j] = beta[np.arange(n), actions[:, j]]
    rewards = simulator.clicks(users, actions, rng)
    next_items = sessions[:, first : history + 1]  # h_{t+1} after s_t (0-based: sessions[:, t])
    return LoggedData(users, sessions, actions, rewards, propensities, next_items, first)
