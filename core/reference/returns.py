"""Returns and advantages in float64 NumPy: the oracle for ``compute_returns`` in both backends.

The return of step t is the discounted sum of the rewards that follow it in its episode,

    G_t = sum_{k=t}^{T_end} gamma^(k-t) r_k                         (closed form)
        = r_t + gamma G_{t+1}                                      (the same, backwards)

and its expectation under a policy pi obeys the Bellman equation

    V^pi(s) = E_{a ~ pi(.|s), s' ~ P(.|s, a)} [ r(s, a) + gamma (1 - terminal(s')) V^pi(s') ],

which is why a critic's V(s_{t+1}) may stand in for the rest of an episode that was cut short
(a time limit, the end of a rollout) but never for one that terminated (nothing follows).
Everything below is one backward loop over t, as CleanRL writes it.

Every input is a batch of trajectory pieces laid out time-major, ``(T, N)``: T steps of N
environments. Episode ends are kept as two separate flags, as Gymnasium reports them:

=============  ======  ===============================================================
Symbol         Shape   Description
=============  ======  ===============================================================
rewards        (T, N)  r_t, the reward received after action a_t
terminations   (T, N)  1 where s_{t+1} is terminal: nothing follows, its value is 0
truncations    (T, N)  1 where the episode was cut (time limit, end of the rollout):
                       the future still exists, we bootstrap from V(s_{t+1})
values         (T, N)  V(s_t) (GAE only)
next_values    (T, N)  V(s_{t+1}) of the true next observation (the final observation at
                       an episode end); used at truncations and at the last row T-1
=============  ======  ===============================================================

The last row is always treated as a cut (the rollout ends there), so it bootstraps from
``next_values[T-1]`` unless it terminated. ``next_values=None`` means zeros (REINFORCE
without a critic: a truncated episode is then simply cut short).
"""

from __future__ import annotations

import numpy as np

from duetrl.core.constants import ADVANTAGE_EPS, ADVANTAGE_STD_DDOF
from duetrl.core.interfaces.rl import check_discount, check_trajectory_arrays


def continuation(terminations: np.ndarray, truncations: np.ndarray) -> np.ndarray:
    """c_t = 1 if step t+1 belongs to the same episode (no end at t) and t < T-1, else 0."""
    done = np.logical_or(terminations, truncations).astype(np.float64)
    cont = 1.0 - done
    cont[-1] = 0.0  # the rollout is cut after its last row
    return cont


def discounted_returns(
    rewards: np.ndarray,
    terminations: np.ndarray,
    truncations: np.ndarray,
    gamma: float,
    next_values: np.ndarray | None = None,
) -> np.ndarray:
    """Reward-to-go with bootstrapping at cuts, computed backwards in time:

        G_t = r_t + gamma * (1 - term_t) * [ c_t * G_{t+1} + (1 - c_t) * V(s_{t+1}) ]

    where c_t (:func:`continuation`) is 0 at an episode end or the last row. A terminated
    step adds nothing after r_t; a truncated one adds gamma * V(s_{t+1}). Unrolled inside an
    episode that terminates at step E, this is the closed form G_t = sum_{k=t}^{E}
    gamma^(k-t) r_k; cut at step C instead, it is sum_{k=t}^{C} gamma^(k-t) r_k
    + gamma^(C+1-t) V(s_{C+1}).

    :param rewards: ``(T, N)``.
    :param terminations: ``(T, N)`` bool or 0/1.
    :param truncations: ``(T, N)`` bool or 0/1.
    :param gamma: discount factor in [0, 1].
    :param next_values: ``(T, N)`` V(s_{t+1}), or None for zeros.
    :returns: ``(T, N)`` float64 returns.
    """
    check_discount("gamma", gamma)
    check_trajectory_arrays(rewards, terminations, truncations, next_values=next_values)
    rewards = np.asarray(rewards, dtype=np.float64)
    term = np.asarray(terminations, dtype=np.float64)
    cont = continuation(terminations, truncations)
    bootstrap = np.zeros_like(rewards) if next_values is None else np.asarray(next_values, float)
    returns = np.zeros_like(rewards)
    future = np.zeros(rewards.shape[1])  # G_{t+1}; nothing after the last row but a bootstrap
    for t in reversed(range(rewards.shape[0])):
        following = cont[t] * future + (1.0 - cont[t]) * bootstrap[t]  # G_{t+1} or V(s_{t+1})
        returns[t] = rewards[t] + gamma * (1.0 - term[t]) * following
        future = returns[t]
    return returns


def gae(
    rewards: np.ndarray,
    values: np.ndarray,
    next_values: np.ndarray,
    terminations: np.ndarray,
    truncations: np.ndarray,
    gamma: float,
    lam: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimation (Schulman et al. 2016), backwards in time:

        delta_t = r_t + gamma * (1 - term_t) * V(s_{t+1}) - V(s_t)   (the Bellman residual)
        A_t     = delta_t + gamma * lambda * c_t * A_{t+1}
                = sum_{k>=t} (gamma lambda)^(k-t) delta_k              (inside one episode)
        R_t     = A_t + V(s_t)          (the value target)

    lambda = 0 gives the one-step TD error; lambda = 1 the bootstrapped return minus V(s_t).

    :param values: ``(T, N)`` V(s_t).
    :param next_values: ``(T, N)`` V(s_{t+1}) of the true next observation.
    :param lam: lambda in [0, 1]; lambda = 1 gives the bootstrapped reward-to-go minus V.
    :returns: ``(advantages, returns)``, each ``(T, N)`` float64.
    """
    check_discount("gamma", gamma)
    check_discount("lam", lam)
    check_trajectory_arrays(rewards, terminations, truncations, values, next_values)
    rewards = np.asarray(rewards, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    next_values = np.asarray(next_values, dtype=np.float64)
    term = np.asarray(terminations, dtype=np.float64)
    cont = continuation(terminations, truncations)
    deltas = rewards + gamma * (1.0 - term) * next_values - values
    advantages = np.zeros_like(rewards)
    future = np.zeros(rewards.shape[1])
    for t in reversed(range(rewards.shape[0])):
        advantages[t] = deltas[t] + gamma * lam * cont[t] * future
        future = advantages[t]
    return advantages, advantages + values


def normalize_advantages(advantages: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """(A - mean(A)) / (std(A) + eps) over the entries where ``mask`` is 1.

    std is the population standard deviation (``ADVANTAGE_STD_DDOF = 0``) and eps is
    ``ADVANTAGE_EPS``, both pinned in :mod:`duetrl.core.constants`. Masked entries become 0.
    """
    advantages = np.asarray(advantages, dtype=np.float64)
    mask = np.ones_like(advantages) if mask is None else np.asarray(mask, dtype=np.float64)
    count = max(mask.sum(), 1.0)
    mean = (advantages * mask).sum() / count
    variance = (((advantages - mean) * mask) ** 2).sum() / max(count - ADVANTAGE_STD_DDOF, 1.0)
    return (advantages - mean) / (np.sqrt(variance) + ADVANTAGE_EPS) * mask
