"""Adam with global-norm clipping, written out so both backends run the very same arithmetic.

    m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
    theta <- theta - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)

Constants come from core.constants (torch's and Keras' Adam place eps differently); the
float64 reference is ``core/reference/optim.py``.
"""

import numpy as np
import tensorflow as tf

from core.constants import ADAM_BETA1, ADAM_BETA2, ADAM_EPS, GRAD_NORM_EPS


def clip_by_global_norm(grads, max_norm):
    """Scale every gradient by min(1, max_norm / (norm + eps)); returns ``(grads, norm)``."""
    norm = tf.linalg.global_norm(grads)  # sqrt(sum g^2)
    if max_norm is None or max_norm <= 0:
        return list(grads), norm
    scale = tf.minimum(max_norm / (norm + GRAD_NORM_EPS), 1.0)
    return [g * scale for g in grads], norm


class Adam:
    """Adam over a list of ``(canonical name, variable)``; state exported as NumPy arrays."""

    def __init__(self, named_parameters, max_grad_norm=None, transposed=()):
        self.names = [name for name, _ in named_parameters]
        self.parameters = [p for _, p in named_parameters]
        self.max_grad_norm = max_grad_norm
        self.step = tf.Variable(0.0, dtype=tf.float64, trainable=False)
        self.m = [tf.Variable(tf.zeros_like(p), trainable=False) for p in self.parameters]
        self.v = [tf.Variable(tf.zeros_like(p), trainable=False) for p in self.parameters]

    def apply_gradients(self, grads, learning_rate):
        """One step on every parameter; ``grads`` in the order of the parameters."""
        grads, _ = clip_by_global_norm(grads, self.max_grad_norm)
        self.step.assign_add(1.0)
        for p, g, m, v in zip(self.parameters, grads, self.m, self.v):
            bias1 = tf.cast(1.0 - ADAM_BETA1**self.step, p.dtype)
            bias2 = tf.cast(1.0 - ADAM_BETA2**self.step, p.dtype)
            m.assign(ADAM_BETA1 * m + (1.0 - ADAM_BETA1) * g)
            v.assign(ADAM_BETA2 * v + (1.0 - ADAM_BETA2) * g**2)
            p.assign_sub(learning_rate * (m / bias1) / (tf.sqrt(v / bias2) + ADAM_EPS))

    def state_arrays(self):
        """``{"step": (), "m.<name>": array, "v.<name>": array}`` for a checkpoint."""
        state = {"step": np.array(self.step.numpy()).reshape(1)}
        for name, m, v in zip(self.names, self.m, self.v):
            state[f"m.{name}"], state[f"v.{name}"] = np.array(m.numpy()), np.array(v.numpy())
        return state

    def load_state_arrays(self, state):
        """Restore what :meth:`state_arrays` returned."""
        self.step.assign(float(np.ravel(state["step"])[0]))  # stored as shape (1,)
        for name, m, v in zip(self.names, self.m, self.v):
            m.assign(state[f"m.{name}"])
            v.assign(state[f"v.{name}"])
