"""Adam / AdamW with global-norm clipping, written out so both backends run the same arithmetic.

    g <- g * min(1, max_norm / (||g|| + eps_clip))
    theta <- theta (1 - lr wd)                      (AdamW: matrices only; wd = 0 is Adam)
    m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
    theta <- theta - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)

Constants come from duetrl.core.constants (torch's and Keras' Adam place eps differently); the
float64 reference is ``core/reference/optim.py``. torch makes the parameters views of one flat
buffer (as it does m and v) and runs each formula as one call on the whole buffer: on the CPU
a ``torch._foreach_*`` call (torch.optim.Adam's way) pays one kernel dispatch per parameter,
which for CartPole's eight small tensors was half of a step (185 -> 94 us); the arithmetic
per element is the same, bit for bit. TensorFlow steps each parameter with its fused
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


def global_norm(grads: Sequence[Tensor]) -> Tensor:
    """||g|| = sqrt(sum over every gradient of sum g^2), a 0-dim tensor."""
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def clip_scale(norm: Tensor, max_norm: float) -> float:
    """min(1, max_norm / (norm + eps)): the factor that brings the global norm to max_norm."""
    return torch.clamp(max_norm / (norm + GRAD_NORM_EPS), max=1.0).item()


def clip_by_global_norm(
    grads: Sequence[Tensor], max_norm: float | None
) -> tuple[list[Tensor], Tensor]:
    """Scale every gradient by min(1, max_norm / (norm + eps)); returns ``(grads, norm)``."""
    norm = global_norm(grads)  # sqrt(sum g^2)
    if max_norm is None or max_norm <= 0:
        return list(grads), norm
    scale = clip_scale(norm, max_norm)
    return torch._foreach_mul(grads, scale), norm


def _gather_into_one_buffer(parameters: Sequence[nn.Parameter]) -> Tensor:
    """A flat buffer holding every parameter's values, each parameter rebound to a view of it
    (``parameter.data``), so that one in-place call on the buffer updates them all."""
    kinds = {(p.dtype, p.device) for p in parameters}
    if len(kinds) > 1:
        raise ValueError("parameters: expected one dtype and device, "
                         f"got {sorted(map(str, kinds))}")
    dtype, device = kinds.pop() if kinds else (torch.get_default_dtype(), None)
    flat = torch.cat([p.detach().reshape(-1) for p in parameters]) if parameters else (
        torch.zeros(0, dtype=dtype, device=device))
    for parameter, view in zip(parameters, _views_like(flat, parameters)):
        parameter.data = view
    return flat


def _views_like(flat: Tensor, parameters: Sequence[Tensor]) -> list[Tensor]:
    """Consecutive views of ``flat`` shaped like ``parameters``, in their order."""
    sizes = [p.numel() for p in parameters]
    return [piece.view(p.shape) for piece, p in zip(torch.split(flat, sizes), parameters)]


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
        self.flat = _gather_into_one_buffer(self.parameters)  # the parameters now view it
        self._views = _views_like(self.flat, self.parameters)
        self.flat_m, self.flat_v = torch.zeros_like(self.flat), torch.zeros_like(self.flat)
        self.m = _views_like(self.flat_m, self.parameters)  # per parameter, for checkpoints
        self.v = _views_like(self.flat_v, self.parameters)

    @torch.no_grad()
    def apply_gradients(
        self, grads: Sequence[Tensor | None], learning_rate: float | Tensor
    ) -> Tensor:
        """One step on every parameter (``grads`` in their order); returns the pre-clip norm.

        A parameter the loss does not reach (gradient None) gets a zero gradient.
        """
        if any(p.data_ptr() != q.data_ptr() for p, q in zip(self.parameters, self._views)):
            self.flat = _gather_into_one_buffer(self.parameters)  # another Adam took them over
            self._views = _views_like(self.flat, self.parameters)
        grads = [torch.zeros_like(p) if g is None else g for p, g in zip(self.parameters, grads)]
        norm = global_norm(grads)
        g = torch.cat([grad.reshape(-1) for grad in grads])  # in the buffer's order
        if self.max_grad_norm is not None and self.max_grad_norm > 0:
            g.mul_(clip_scale(norm, self.max_grad_norm))  # g <- g min(1, max_norm / ||g||)
        self.step += 1
        # Python numbers, not 0-dim tensors: a tensor scalar is converted per call (same value)
        bias1 = (1.0 - ADAM_BETA1**self.step).item()
        bias2 = (1.0 - ADAM_BETA2**self.step).item()
        lr = learning_rate.item() if isinstance(learning_rate, Tensor) else learning_rate
        decayed = [p for p, decay in zip(self.parameters, self.decays) if decay]
        if decayed:  # decoupled weight decay: theta <- theta (1 - lr wd)
            torch._foreach_mul_(decayed, 1.0 - lr * self.weight_decay)
        self.flat_m.mul_(ADAM_BETA1).add_(g, alpha=1.0 - ADAM_BETA1)  # m <- b1 m + (1 - b1) g
        self.flat_v.mul_(ADAM_BETA2).addcmul_(g, g, value=1.0 - ADAM_BETA2)  # v <- b2 v + ...
        m_hat = self.flat_m / bias1
        denominator = torch.sqrt(self.flat_v / bias2).add_(ADAM_EPS)
        self.flat.addcdiv_(m_hat.mul_(-lr), denominator)  # theta <- theta - lr m_hat / (...)
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
