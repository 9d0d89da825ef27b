"""Adam with global-norm clipping, written out so both backends run the very same arithmetic.

    m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
    theta <- theta - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)

Constants come from core.constants (torch's and Keras' Adam place eps differently); the
float64 reference is ``core/reference/optim.py``.
"""

import numpy as np
import torch

from core.constants import ADAM_BETA1, ADAM_BETA2, ADAM_EPS, GRAD_NORM_EPS


def clip_by_global_norm(grads, max_norm):
    """Scale every gradient by min(1, max_norm / (norm + eps)); returns ``(grads, norm)``."""
    norm = torch.sqrt(sum((g**2).sum() for g in grads))
    if max_norm is None or max_norm <= 0:
        return list(grads), norm
    scale = torch.clamp(max_norm / (norm + GRAD_NORM_EPS), max=1.0)
    return [g * scale for g in grads], norm


class Adam:
    """Adam over a list of ``(canonical name, parameter)``; state exported as NumPy arrays."""

    def __init__(self, named_parameters, max_grad_norm=None, transposed=()):
        self.names = [name for name, _ in named_parameters]
        self.transposed = set(transposed)  # torch (out, in) weights: canonical state is (in, out)
        self.parameters = [p for _, p in named_parameters]
        self.max_grad_norm = max_grad_norm
        self.step = torch.zeros((), dtype=torch.float64)
        self.m = [torch.zeros_like(p) for p in self.parameters]
        self.v = [torch.zeros_like(p) for p in self.parameters]

    @torch.no_grad()
    def apply_gradients(self, grads, learning_rate):
        """One step on every parameter; ``grads`` in the order of the parameters."""
        grads, _ = clip_by_global_norm(grads, self.max_grad_norm)
        self.step += 1
        bias1 = 1.0 - ADAM_BETA1**self.step
        bias2 = 1.0 - ADAM_BETA2**self.step
        for p, g, m, v in zip(self.parameters, grads, self.m, self.v):
            m.mul_(ADAM_BETA1).add_((1.0 - ADAM_BETA1) * g)
            v.mul_(ADAM_BETA2).add_((1.0 - ADAM_BETA2) * g**2)
            p.sub_(learning_rate * (m / bias1) / (torch.sqrt(v / bias2) + ADAM_EPS))

    def state_arrays(self):
        """``{"step": (), "m.<name>": array, "v.<name>": array}`` for a checkpoint."""
        state = {"step": self.step.numpy().reshape(1)}
        for name, m, v in zip(self.names, self.m, self.v):
            m, v = (m.T, v.T) if name in self.transposed else (m, v)
            state[f"m.{name}"], state[f"v.{name}"] = m.numpy().copy(), v.numpy().copy()
        return state

    def load_state_arrays(self, state):
        """Restore what :meth:`state_arrays` returned."""
        with torch.no_grad():
            self.step.fill_(float(np.ravel(state["step"])[0]))  # stored as shape (1,)
            for name, m, v in zip(self.names, self.m, self.v):
                m_state = torch.as_tensor(state[f"m.{name}"])
                v_state = torch.as_tensor(state[f"v.{name}"])
                if name in self.transposed:
                    m_state, v_state = m_state.T, v_state.T
                m.copy_(m_state)
                v.copy_(v_state)
