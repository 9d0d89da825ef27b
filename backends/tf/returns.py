"""Returns and advantages as TensorFlow tensor code: equal to ``core/reference/returns.py``.

No Python loop at all: the backward recurrence y_t = a_t + c_t y_{t+1} is solved for every
step and environment at once, as y_t = sum_{k >= t} (prod_{t <= j < k} c_j) a_k, with a
(T, T, N) matrix of discount products built by a cumulative product. Arrays are time-major
(T, N); see the reference for the symbols.
"""

import tensorflow as tf

from duetrl.core.constants import ADVANTAGE_EPS, ADVANTAGE_STD_DDOF
from duetrl.core.interfaces.rl import check_discount, check_trajectory_arrays


def continuation(terminations: tf.Tensor, truncations: tf.Tensor) -> tf.Tensor:
    """c_t = 1 if step t+1 continues the episode of step t (and t < T-1), else 0."""
    done = tf.logical_or(tf.cast(terminations, tf.bool), tf.cast(truncations, tf.bool))
    cont = 1.0 - tf.cast(done, tf.float64)
    last_row = tf.range(tf.shape(cont)[0]) == tf.shape(cont)[0] - 1
    return tf.where(last_row[:, None], tf.zeros_like(cont), cont)


def discounted_sum(inputs: tf.Tensor, discounts: tf.Tensor) -> tf.Tensor:
    """y_t = a_t + c_t y_{t+1} (y_T = 0) for a = ``inputs``, c = ``discounts``, both (T, N)."""
    steps = tf.shape(inputs)[0]
    index = tf.range(steps)
    upper = index[None, :] >= index[:, None]  # k >= t
    # factors[t, k] = c_{k-1} for k > t and 1 otherwise; cumprod over k gives prod_{t<=j<k} c_j
    shifted = tf.concat([tf.ones_like(discounts[:1]), discounts[:-1]], axis=0)  # c_{k-1}
    strictly_upper = index[None, :] > index[:, None]
    factors = tf.where(strictly_upper[:, :, None], shifted[None], tf.ones_like(shifted[None]))
    products = tf.math.cumprod(factors, axis=1) * tf.cast(upper, inputs.dtype)[:, :, None]
    return tf.reduce_sum(products * inputs[None], axis=1)


def compute_returns(
    rewards: tf.Tensor, terminations: tf.Tensor, truncations: tf.Tensor, gamma: float,
    next_values: tf.Tensor | None = None,
) -> tf.Tensor:
    """G_t = r_t + gamma (1 - term_t) [c_t G_{t+1} + (1 - c_t) V(s_{t+1})]; (T, N) -> (T, N)."""
    check_discount("gamma", gamma)
    check_trajectory_arrays(rewards, terminations, truncations, next_values=next_values)
    not_terminal = 1.0 - tf.cast(terminations, rewards.dtype)
    cont = tf.cast(continuation(terminations, truncations), rewards.dtype)
    if next_values is None:
        next_values = tf.zeros_like(rewards)
    # the bootstrap term enters where the episode is cut; the rest flows through the recurrence
    inputs = rewards + gamma * not_terminal * (1.0 - cont) * next_values
    return discounted_sum(inputs, gamma * not_terminal * cont)


def compute_gae(
    rewards: tf.Tensor, values: tf.Tensor, next_values: tf.Tensor,
    terminations: tf.Tensor, truncations: tf.Tensor, gamma: float, lam: float,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Generalised advantage estimation, equal to duetrl.core.reference.returns.gae:

        delta_t = r_t + gamma (1 - term_t) V(s_{t+1}) - V(s_t)
        A_t     = delta_t + gamma lam c_t A_{t+1}

    Returns ``(advantages, returns = advantages + values)``, each (T, N).
    """
    check_discount("gamma", gamma)
    check_discount("lam", lam)
    check_trajectory_arrays(rewards, terminations, truncations, values, next_values)
    not_terminal = 1.0 - tf.cast(terminations, rewards.dtype)
    cont = tf.cast(continuation(terminations, truncations), rewards.dtype)
    deltas = rewards + gamma * not_terminal * next_values - values
    advantages = discounted_sum(deltas, gamma * lam * cont)
    return advantages, advantages + values


def normalize_advantages(advantages: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """(A - mean) / (std + eps) over mask == 1, population std (pinned in duetrl.core.constants)."""
    count = tf.maximum(tf.reduce_sum(mask), 1.0)
    mean = tf.reduce_sum(advantages * mask) / count
    squares = tf.reduce_sum(((advantages - mean) * mask) ** 2)
    variance = squares / tf.maximum(count - ADVANTAGE_STD_DDOF, 1.0)
    return (advantages - mean) / (tf.sqrt(variance) + ADVANTAGE_EPS) * mask
