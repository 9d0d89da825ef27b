"""A loss and its gradients, in canonical names: how tests and tools compare backward passes."""

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from duetrl.backends.tf.weights import _canonical_variables


def loss_and_gradients(
    module: keras.layers.Layer, loss_fn: Callable[..., tf.Tensor], *inputs: Any
) -> tuple[float, dict[str, np.ndarray], list[np.ndarray | None]]:
    """Evaluate ``loss_fn(*inputs)`` and differentiate it w.r.t. every parameter and input.

    Args:
        module: the layer whose weights are differentiated.
        loss_fn: a function of the input tensors returning a scalar tensor.
        *inputs: NumPy arrays or tensors; float ones are differentiated too.

    Returns:
        ``(loss as float, {canonical name: gradient array}, [input gradient arrays or None])``;
        a Dense kernel's gradient is already in the canonical ``(in, out)`` layout.
    """
    tensors = [tf.convert_to_tensor(np.asarray(x)) for x in inputs]
    named_variables = list(_canonical_variables(module))
    with tf.GradientTape() as tape:
        for tensor in tensors:
            if tensor.dtype.is_floating:
                tape.watch(tensor)
        loss = loss_fn(*tensors)
    variables = [v for _, v in named_variables]
    grads = tape.gradient(loss, variables + tensors)
    gradients = {}
    for (name, variable), grad in zip(named_variables, grads[: len(variables)]):
        grad = tf.zeros_like(variable) if grad is None else tf.convert_to_tensor(grad)
        gradients[name] = np.asarray(grad.numpy())
    input_grads = grads[len(variables) :]
    input_gradients = [None if g is None else np.asarray(g.numpy()) for g in input_grads]
    return float(loss.numpy()), gradients, input_gradients


def compile_forward_backward(
    module: keras.layers.Layer, loss_fn: Callable[..., tf.Tensor]
) -> Callable[..., tf.Tensor]:
    """A fast callable ``step(*tensors) -> loss`` that also computes every gradient, for timing.

    TensorFlow traces the step once into a graph with ``tf.function`` (eager Keras is 2-4x
    slower); fixed shapes and dtypes keep it from retracing.
    """

    @tf.function
    def step(*tensors):
        with tf.GradientTape() as tape:
            loss = loss_fn(*tensors)
        grads = tape.gradient(loss, module.trainable_variables)
        return loss, grads

    return lambda *tensors: step(*tensors)[0]


def probe_loss(output: tf.Tensor, probe: tf.Tensor) -> tf.Tensor:
    """sum(output * probe): a scalar whose gradient w.r.t. ``output`` is ``probe``."""
    return tf.reduce_sum(output * probe)
