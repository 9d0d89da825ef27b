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
    norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))  # sqrt(sum g^2)
    if max_norm is None or max_norm <= 0:
        return list(grads), norm
    scale = torch.clamp(max_norm / (norm + GRAD_NORM_EPS), max=1.0)
    return torch._foreach_mul(grads, scale), norm


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
        # torch._foreach_*: one call per formula for all parameters, not one per parameter
        torch._foreach_mul_(self.m, ADAM_BETA1)
        torch._foreach_add_(self.m, grads, alpha=1.0 - ADAM_BETA1)
        torch._foreach_mul_(self.v, ADAM_BETA2)
        torch._foreach_addcmul_(self.v, grads, grads, value=1.0 - ADAM_BETA2)
        m_hat = torch._foreach_div(self.m, bias1)
        denominators = torch._foreach_sqrt(torch._foreach_div(self.v, bias2))
        torch._foreach_add_(denominators, ADAM_EPS)
        torch._foreach_mul_(m_hat, -learning_rate)
        torch._foreach_addcdiv_(self.parameters, m_hat, denominators)

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
