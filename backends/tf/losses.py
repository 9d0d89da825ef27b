"""The policy-gradient losses in TensorFlow (the float64 oracle is core/reference/algorithms.py).

    REINFORCE   L = mean_t[-log pi(a_t|s_t) A_t]            (PolicyNet.compute_loss)
    PPO clip    L = -mean_t[min(rho_t A_t, clip(rho_t, 1 - eps, 1 + eps) A_t)],
                rho_t = pi(a_t|s_t) / pi_old(a_t|s_t) = exp(log pi - log pi_old)
    value       L_V = mean_t[(V(s_t) - R_t)^2] / 2
"""

import tensorflow as tf

from duetrl.backends.tf.policy import masked_mean


def ppo_clip_loss(
    log_probs: tf.Tensor, old_log_probs: tf.Tensor, advantages: tf.Tensor,
    clip_eps: float, mask: tf.Tensor | None = None,
) -> tf.Tensor:
    """The PPO clipped surrogate, negated to be minimised; all inputs (B,)."""
    ratio = tf.exp(log_probs - old_log_probs)
    clipped = tf.clip_by_value(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    return -masked_mean(tf.minimum(ratio * advantages, clipped * advantages), mask)


def value_loss(
    values: tf.Tensor, returns: tf.Tensor, mask: tf.Tensor | None = None
) -> tf.Tensor:
    """Half the mean squared error between V(s_t) and its target R_t; (B,), (B,) -> ()."""
    return 0.5 * masked_mean((values - returns) ** 2, mask)
