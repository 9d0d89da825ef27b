"""Adam / AdamW with global-norm clipping, written out so both backends run the same arithmetic.

    g <- g * min(1, max_norm / (||g|| + eps_clip))
    theta <- theta (1 - lr wd)                      (AdamW: matrices only; wd = 0 is Adam)
    m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
    theta <- theta - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)

Constants come from duetrl.core.constants (torch's and Keras' Adam place eps differently); the
float64 reference is ``core/reference/optim.py``. torch updates every parameter with one
``torch._foreach_*`` call per formula (as torch.optim.Adam does); TensorFlow with its fused
kernel ``ResourceApplyAdam``, one graph node per parameter instead of ~25 (each traced in
Python, ~0.4 ms a node here), fed so that its equation is ours: the kernel's

    m <- m + (1 - b1)(g - m);  v <- v + (1 - b2)(g^2 - v)
    theta <- theta - lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps_hat)

is the one above when eps_hat = eps sqrt(1 - b2^t) (divide its numerator and denominator by
sqrt(1 - b2^t)); the two differ by rounding only (float64: 1e-16).
"""

from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf
from tensorflow import Tensor

from duetrl.backends.tf.weights import _canonical_parameters
from duetrl.core.constants import ADAM_BETA1, ADAM_BETA2, ADAM_EPS, GRAD_NORM_EPS
from duetrl.core.tolerances import to_numpy


def global_norm(grads: Sequence[Tensor]) -> Tensor:
    """||g|| = sqrt(sum over every gradient of sum g^2), a 0-dim tensor."""
    return tf.linalg.global_norm(grads)


def clip_scale(norm: Tensor, max_norm: float) -> Tensor:
    """min(1, max_norm / (norm + eps)): the factor that brings the global norm to max_norm."""
    return tf.minimum(max_norm / (norm + GRAD_NORM_EPS), 1.0)


def clip_by_global_norm(
    grads: Sequence[Tensor], max_norm: float | None
) -> tuple[list[Tensor], Tensor]:
    """Scale every gradient by min(1, max_norm / (norm + eps)); returns ``(grads, norm)``."""
    norm = global_norm(grads)  # sqrt(sum g^2)
    if max_norm is None or max_norm <= 0:
        return list(grads), norm
    scale = clip_scale(norm, max_norm)
    return [g * scale for g in grads], norm


class Adam:
    """Adam (AdamW with ``weight_decay > 0``) over every parameter of a model.

    Args:
        module: the model whose parameters are updated, in canonical order.
        max_grad_norm: clip the global gradient norm to this first (None: no clipping).
        weight_decay: decoupled weight decay of matrices (kernels, embeddings); 0 = Adam.

    The moments are exported as NumPy arrays under canonical names (``m.<name>``,
    ``v.<name>``), so a checkpoint written by one backend resumes in the other.
    """

    def __init__(
        self, module: keras.Layer, max_grad_norm: float | None = None, weight_decay: float = 0.0,
    ) -> None:
        named = list(_canonical_parameters(module))
        self.names = [name for name, _, _ in named]
        self.parameters = [p for _, p, _ in named]
        self.transposed = {name for name, _, t in named if t}  # canonical state is (in, out)
        self.decays = [weight_decay if len(p.shape) >= 2 else 0.0 for p in self.parameters]
        self.max_grad_norm = max_grad_norm
        self.weight_decay = weight_decay
        self.step = tf.Variable(0.0, dtype=tf.float64, trainable=False)
        self.m = [tf.Variable(tf.zeros_like(p), trainable=False) for p in self.parameters]
        self.v = [tf.Variable(tf.zeros_like(p), trainable=False) for p in self.parameters]

    def apply_gradients(
        self, grads: Sequence[Tensor | None], learning_rate: float | Tensor
    ) -> Tensor:
        """One step on every parameter (``grads`` in their order); returns the pre-clip norm.

        A parameter the loss does not reach (gradient None) gets a zero gradient.
        """
        grads = [tf.zeros_like(p) if g is None else tf.convert_to_tensor(g)  # IndexedSlices too
                 for p, g in zip(self.parameters, grads)]
        grads, norm = clip_by_global_norm(grads, self.max_grad_norm)
        self.step.assign_add(1.0)
        if not tf.is_tensor(learning_rate):  # tf.cast(0.01, float64) would round it via float32
            learning_rate = tf.constant(learning_rate, tf.float64)
        powers = ADAM_BETA1**self.step, ADAM_BETA2**self.step  # b1^t, b2^t in float64
        eps_hat = ADAM_EPS * tf.sqrt(1.0 - powers[1])  # the kernel's eps (module docstring)
        scalars = {}  # dtype -> the kernel's scalars in that dtype, cast once per dtype
        for p, g, m, v, decay in zip(self.parameters, grads, self.m, self.v, self.decays):
            if p.dtype not in scalars:  # (tf.cast(0.9, float64) would round 0.9 via float32)
                scalars[p.dtype] = [tf.cast(x, p.dtype) for x in (learning_rate, *powers, eps_hat)]
                scalars[p.dtype] += [tf.constant(x, p.dtype) for x in (ADAM_BETA1, ADAM_BETA2)]
            lr, b1_power, b2_power, eps, b1, b2 = scalars[p.dtype]
            if decay:  # decoupled weight decay: theta <- theta (1 - lr wd)
                p.assign(p * (1.0 - lr * decay))
            # m <- b1 m + (1 - b1) g; v <- b2 v + (1 - b2) g^2; theta <- theta - lr m_hat / ...
            tf.raw_ops.ResourceApplyAdam(var=p.handle, m=m.handle, v=v.handle,
                                         beta1_power=b1_power, beta2_power=b2_power, lr=lr,
                                         beta1=b1, beta2=b2, epsilon=eps, grad=g)
        return norm

    @property
    def step_count(self) -> int:
        """Number of updates applied so far."""
        return int(to_numpy(self.step))

    def state_arrays(self) -> dict[str, np.ndarray]:
        """``{"step": (1,), "m.<name>": array, "v.<name>": array}`` for a checkpoint."""
        state = {"step": np.array(to_numpy(self.step)).reshape(1)}
        for name, m, v in zip(self.names, self.m, self.v):
            m, v = to_numpy(m), to_numpy(v)
            m, v = (m.T, v.T) if name in self.transposed else (m, v)
            state[f"m.{name}"], state[f"v.{name}"] = np.array(m), np.array(v)  # copies
        return state

    def load_state_arrays(self, state: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`state_arrays` returned."""
        self.step.assign(float(np.ravel(state["step"])[0]))  # stored as shape (1,)
        for name, m, v in zip(self.names, self.m, self.v):
            m_state, v_state = np.asarray(state[f"m.{name}"]), np.asarray(state[f"v.{name}"])
            if name in self.transposed:
                m_state, v_state = m_state.T, v_state.T
            m.assign(m_state.astype(m.dtype.as_numpy_dtype))
            v.assign(v_state.astype(v.dtype.as_numpy_dtype))


def minimize(
    optimizer: Adam,
    loss_and_stats: Callable[[], tuple[Tensor, dict[str, Tensor]]],
    learning_rate: float | Tensor,
) -> dict[str, Tensor]:
    """One step down the loss: gradients, clipping and Adam, as every learner takes it.

    ``loss_and_stats()`` computes the loss and its statistics; returns them with ``loss`` and
    ``grad_norm`` (before clipping), cut from the graph.
    """
    with tf.GradientTape() as tape:
        loss, stats = loss_and_stats()
    grads = tape.gradient(loss, optimizer.parameters)
    grad_norm = optimizer.apply_gradients(grads, learning_rate)
    stats = {"loss": loss, "grad_norm": grad_norm, **stats}
    return {name: tf.stop_gradient(value) for name, value in stats.items()}
