"""A loss and its gradients, in canonical names: how tests and tools compare backward passes.

Both backends ask for the gradients of a loss w.r.t. a list of tensors in one call
(``torch.autograd.grad`` here, ``tf.GradientTape.gradient`` in TensorFlow), so a gradient
that a loss never reaches comes back as None on both sides.
"""

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tensorflow import Tensor

from duetrl.backends.tf.weights import _canonical_parameters
from duetrl.core.tolerances import to_numpy


def loss_and_gradients(
    module: keras.Layer, loss_fn: Callable[..., Tensor], *inputs: Any
) -> tuple[float, dict[str, np.ndarray], list[np.ndarray | None]]:
    """Evaluate ``loss_fn(*inputs)`` and differentiate it w.r.t. every parameter and input.

    Args:
        module: the model whose parameters are differentiated.
        loss_fn: a function of the input tensors returning a scalar tensor.
        *inputs: NumPy arrays or tensors; float ones are differentiated too.

    Returns:
        ``(loss as float, {canonical name: gradient array}, [input gradient arrays or None])``;
        parameter gradients are in the canonical layout (a kernel is ``(in, out)``).
    """
    tensors = [tf.convert_to_tensor(np.asarray(x)) for x in inputs]
    floating = [t.dtype.is_floating for t in tensors]
    watched = [t for t, is_float in zip(tensors, floating) if is_float]
    with tf.GradientTape() as tape:
        tape.watch(watched)
        loss = loss_fn(*tensors)
    named = list(_canonical_parameters(module))  # after the forward pass: Keras builds lazily
    parameters = [p for _, p, _ in named]
    grads = tape.gradient(loss, parameters + watched)
    grads = [None if g is None else tf.convert_to_tensor(g) for g in grads]  # IndexedSlices
    gradients = {}
    for (name, parameter, transpose), grad in zip(named, grads[: len(parameters)]):
        grad = np.zeros_like(to_numpy(parameter)) if grad is None else to_numpy(grad)
        gradients[name] = np.ascontiguousarray(grad.T if transpose else grad)
    input_grads = iter(grads[len(parameters) :])
    input_gradients = [next(input_grads) if is_float else None for is_float in floating]
    input_gradients = [None if g is None else to_numpy(g) for g in input_gradients]
    return float(to_numpy(loss)), gradients, input_gradients


def compile_forward_backward(
    module: keras.Layer, loss_fn: Callable[..., Tensor]
) -> Callable[..., Tensor]:
    """A fast callable ``step(*tensors) -> loss`` that also computes every gradient, for timing.

    TensorFlow traces the step once into a graph with ``tf.function`` (eager Keras is 2-4x
    slower; fixed shapes and dtypes keep it from retracing); PyTorch runs the same step eagerly.
    """

    @tf.function
    def step(*tensors):
        with tf.GradientTape() as tape:
            loss = loss_fn(*tensors)
        parameters = [p for _, p, _ in _canonical_parameters(module)]
        grads = tape.gradient(loss, parameters)
        return loss, grads

    return lambda *tensors: step(*tensors)[0]


def probe_loss(output: Tensor, probe: Tensor) -> Tensor:
    """sum(output * probe): a scalar whose gradient w.r.t. ``output`` is ``probe``."""
    return tf.reduce_sum(output * probe)
