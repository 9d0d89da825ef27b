"""Returns and advantages as tensor code: equal to ``core/reference/returns.py``.

Both are one backward recurrence, y_t = a_t + c_t y_{t+1} (y_T = 0), run over the T steps of
all N environments at once: O(T * N) memory, T small steps. Arrays are time-major (T, N);
see the reference for the symbols and for the closed form G_t = sum_k gamma^(k-t) r_k.
"""

import tensorflow as tf
from tensorflow import Tensor

from duetrl.core.constants import ADVANTAGE_EPS, ADVANTAGE_STD_DDOF
from duetrl.core.interfaces.rl import check_discount, check_trajectory_arrays


def episode_flags(
    terminations: Tensor, truncations: Tensor, dtype: tf.DType
) -> tuple[Tensor, Tensor]:
    """``(1 - term_t, c_t)`` in ``dtype``, each (T, N).

    c_t = 1 if step t+1 continues the episode of step t (no end at t, and t < T-1), else 0.
    """
    done = tf.logical_or(tf.cast(terminations, tf.bool), tf.cast(truncations, tf.bool))
    last_row = tf.range(tf.shape(done)[0])[:, None] == tf.shape(done)[0] - 1  # the rollout is cut
    cont = tf.logical_not(tf.logical_or(done, last_row))
    return 1.0 - tf.cast(terminations, dtype), tf.cast(cont, dtype)


# tf.scan is a graph while-loop (no Python per step); written as a Python loop, AutoGraph
# would turn it into one too, but transpiling it cost ~0.15 s of every run's first update
@tf.function(reduce_retracing=True, autograph=False)
def discounted_sum(inputs: Tensor, discounts: Tensor) -> Tensor:
    """y_t = a_t + c_t y_{t+1} (y_T = 0) for a = ``inputs``, c = ``discounts``, both (T, N).

    A reverse scan: one step per t, from the last row back to the first.
    """
    future = tf.zeros_like(inputs[0])  # y_T = 0, (N,)
    step = lambda future, row: row[0] + row[1] * future  # y_t = a_t + c_t y_{t+1}  # noqa: E731
    return tf.scan(step, (inputs, discounts), initializer=future, reverse=True)  # t = T-1..0


def compute_returns(
    rewards: Tensor, terminations: Tensor, truncations: Tensor, gamma: float,
    next_values: Tensor | None = None,
) -> Tensor:
    """G_t = r_t + gamma (1 - term_t) [c_t G_{t+1} + (1 - c_t) V(s_{t+1})]; (T, N) -> (T, N)."""
    check_discount("gamma", gamma)
    check_trajectory_arrays(rewards, terminations, truncations, next_values=next_values)
    not_terminal, cont = episode_flags(terminations, truncations, rewards.dtype)
    if next_values is None:
        next_values = tf.zeros_like(rewards)
    # the bootstrap term enters where the episode is cut; the rest flows through the recurrence
    inputs = rewards + gamma * not_terminal * (1.0 - cont) * next_values
    return discounted_sum(inputs, gamma * not_terminal * cont)


def compute_gae(
    rewards: Tensor, values: Tensor, next_values: Tensor,
    terminations: Tensor, truncations: Tensor, gamma: float, lam: float,
) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation, equal to duetrl.core.reference.returns.gae:

        delta_t = r_t + gamma (1 - term_t) V(s_{t+1}) - V(s_t)
        A_t     = delta_t + gamma lam c_t A_{t+1}

    Returns ``(advantages, returns = advantages + values)``, each (T, N).
    """
    check_discount("gamma", gamma)
    check_discount("lam", lam)
    check_trajectory_arrays(rewards, terminations, truncations, values, next_values)
    not_terminal, cont = episode_flags(terminations, truncations, rewards.dtype)
    deltas = rewards + gamma * not_terminal * next_values - values
    advantages = discounted_sum(deltas, gamma * lam * cont)
    return advantages, advantages + values


def normalize_advantages(advantages: Tensor, mask: Tensor) -> Tensor:
    """(A - mean) / (std + eps) over mask == 1, population std (pinned in duetrl.core.constants)."""
    count = tf.maximum(tf.reduce_sum(mask), 1.0)
    mean = tf.reduce_sum(advantages * mask) / count
    squares = tf.reduce_sum(((advantages - mean) * mask) ** 2)
    variance = squares / tf.maximum(count - ADVANTAGE_STD_DDOF, 1.0)
    return (advantages - mean) / (tf.sqrt(variance) + ADVANTAGE_EPS) * mask
