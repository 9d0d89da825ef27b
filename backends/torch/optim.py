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

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from duetrl.backends.torch.weights import _canonical_parameters
from duetrl.core.constants import ADAM_BETA1, ADAM_BETA2, ADAM_EPS, GRAD_NORM_EPS
from duetrl.core.tolerances import to_numpy


def clip_by_global_norm(
    grads: Sequence[Tensor], max_norm: float | None
) -> tuple[list[Tensor], Tensor]:
    """Scale every gradient by min(1, max_norm / (norm + eps)); returns ``(grads, norm)``."""
    norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))  # sqrt(sum g^2)
    if max_norm is None or max_norm <= 0:
        return list(grads), norm
    scale = torch.clamp(max_norm / (norm + GRAD_NORM_EPS), max=1.0)
    return torch._foreach_mul(grads, scale), norm


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
        self, module: nn.Module, max_grad_norm: float | None = None, weight_decay: float = 0.0,
    ) -> None:
        named = list(_canonical_parameters(module))
        self.names = [name for name, _, _ in named]
        self.parameters = [p for _, p, _ in named]
        self.transposed = {name for name, _, t in named if t}  # canonical state is (in, out)
        self.decays = [weight_decay if len(p.shape) >= 2 else 0.0 for p in self.parameters]
        self.max_grad_norm = max_grad_norm
        self.weight_decay = weight_decay
        self.step = torch.zeros((), dtype=torch.float64)
        self.m = [torch.zeros_like(p) for p in self.parameters]
        self.v = [torch.zeros_like(p) for p in self.parameters]

    @torch.no_grad()
    def apply_gradients(
        self, grads: Sequence[Tensor | None], learning_rate: float | Tensor
    ) -> Tensor:
        """One step on every parameter (``grads`` in their order); returns the pre-clip norm.

        A parameter the loss does not reach (gradient None) gets a zero gradient.
        """
        grads = [torch.zeros_like(p) if g is None else g for p, g in zip(self.parameters, grads)]
        grads, norm = clip_by_global_norm(grads, self.max_grad_norm)
        self.step += 1
        bias1 = 1.0 - ADAM_BETA1**self.step
        bias2 = 1.0 - ADAM_BETA2**self.step
        decayed = [p for p, decay in zip(self.parameters, self.decays) if decay]
        if decayed:  # decoupled weight decay: theta <- theta (1 - lr wd)
            torch._foreach_mul_(decayed, 1.0 - learning_rate * self.weight_decay)
        torch._foreach_mul_(self.m, ADAM_BETA1)  # m <- b1 m + (1 - b1) g
        torch._foreach_add_(self.m, grads, alpha=1.0 - ADAM_BETA1)
        torch._foreach_mul_(self.v, ADAM_BETA2)  # v <- b2 v + (1 - b2) g^2
        torch._foreach_addcmul_(self.v, grads, grads, value=1.0 - ADAM_BETA2)
        m_hat = torch._foreach_div(self.m, bias1)
        denominators = torch._foreach_sqrt(torch._foreach_div(self.v, bias2))
        torch._foreach_add_(denominators, ADAM_EPS)
        torch._foreach_mul_(m_hat, -learning_rate)
        torch._foreach_addcdiv_(self.parameters, m_hat, denominators)
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
        self.step.fill_(float(np.ravel(state["step"])[0]))  # stored as shape (1,)
        for name, m, v in zip(self.names, self.m, self.v):
            m_state, v_state = np.asarray(state[f"m.{name}"]), np.asarray(state[f"v.{name}"])
            if name in self.transposed:
                m_state, v_state = m_state.T, v_state.T
            m.copy_(torch.as_tensor(m_state))
            v.copy_(torch.as_tensor(v_state))


def minimize(
    optimizer: Adam,
    loss_and_stats: Callable[[], tuple[Tensor, dict[str, Tensor]]],
    learning_rate: float | Tensor,
) -> dict[str, Tensor]:
    """One step down the loss: gradients, clipping and Adam, as every learner takes it.

    ``loss_and_stats()`` computes the loss and its statistics; returns them with ``loss`` and
    ``grad_norm`` (before clipping), cut from the graph.
    """
    for parameter in optimizer.parameters:
        parameter.grad = None  # this step's gradients only
    loss, stats = loss_and_stats()
    loss.backward()
    grad_norm = optimizer.apply_gradients([p.grad for p in optimizer.parameters], learning_rate)
    stats = {"loss": loss, "grad_norm": grad_norm, **stats}
    return {name: value.detach() for name, value in stats.items()}
