"""A loss and its gradients, in canonical names: how tests and tools compare backward passes."""

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from duetrl.backends.torch.weights import _canonical_parameters


def loss_and_gradients(
    module: nn.Module, loss_fn: Callable[..., torch.Tensor], *inputs: Any
) -> tuple[float, dict[str, np.ndarray], list[np.ndarray | None]]:
    """Evaluate ``loss_fn(*inputs)`` and differentiate it w.r.t. every parameter and input.

    Args:
        module: the module whose parameters are differentiated.
        loss_fn: a function of the input tensors returning a scalar tensor.
        *inputs: NumPy arrays or tensors; float ones are differentiated too.

    Returns:
        ``(loss as float, {canonical name: gradient array}, [input gradient arrays or None])``;
        a Linear weight's gradient is transposed into the canonical ``(in, out)`` layout.
    """
    tensors = [torch.as_tensor(np.asarray(x)) for x in inputs]
    for tensor in tensors:
        if tensor.is_floating_point():
            tensor.requires_grad_(True)
    module.zero_grad(set_to_none=True)
    loss = loss_fn(*tensors)
    loss.backward()
    gradients = {}
    for name, parameter, transpose in _canonical_parameters(module):
        grad = torch.zeros_like(parameter) if parameter.grad is None else parameter.grad
        grad = grad.detach().cpu().numpy()
        gradients[name] = np.ascontiguousarray(grad.T if transpose else grad)
    input_gradients = [
        None if t.grad is None else t.grad.detach().cpu().numpy() for t in tensors
    ]
    return float(loss.detach()), gradients, input_gradients


def compile_forward_backward(
    module: nn.Module, loss_fn: Callable[..., torch.Tensor]
) -> Callable[..., torch.Tensor]:
    """A fast callable ``step(*tensors) -> loss`` that also fills every ``.grad``, for timing.

    PyTorch runs eagerly: there is nothing to compile, the step is the plain backward pass.
    """

    def step(*tensors):
        module.zero_grad(set_to_none=True)
        loss = loss_fn(*tensors)
        loss.backward()
        return loss

    return step


def probe_loss(output: torch.Tensor, probe: torch.Tensor) -> torch.Tensor:
    """sum(output * probe): a scalar whose gradient w.r.t. ``output`` is ``probe``."""
    return (output * probe).sum()
