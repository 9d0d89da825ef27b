"""Framework facts and settings: name, version, threads, tensors in and out."""

from typing import Any

import keras
import numpy as np
import tensorflow as tf

NAME = "tf"


def framework_version() -> str:
    """The framework's version string."""
    return tf.__version__


def set_num_threads(num_threads: int) -> None:
    """Use ``num_threads`` CPU threads for this framework's ops (only before the first op)."""
    try:
        tf.config.threading.set_intra_op_parallelism_threads(num_threads)
        tf.config.threading.set_inter_op_parallelism_threads(num_threads)
    except RuntimeError:  # TensorFlow fixes its thread pools when the first op runs
        pass


def get_num_threads() -> int:
    """The number of CPU threads this framework's ops use (0 = TensorFlow decides)."""
    return tf.config.threading.get_intra_op_parallelism_threads()


def set_seed(seed: int) -> None:
    """Seed the framework's own random generator (weights drawn by the framework, dropout)."""
    tf.random.set_seed(seed)


def resolve_dtype(dtype: Any) -> Any:
    """The framework dtype for ``"float32"``/``"float64"`` (None stays None: the default)."""
    return tf.as_dtype(dtype).name if isinstance(dtype, str) else dtype


def as_tensor(array: Any, dtype: str | None = None) -> tf.Tensor:
    """A framework tensor from a NumPy array (float arrays keep their dtype unless given)."""
    tensor = tf.convert_to_tensor(np.asarray(array))
    return tensor if dtype is None else tf.cast(tensor, dtype)


# float32 matmuls in full precision (no TF32 shortcuts): equivalence depends on it
tf.config.experimental.enable_tensor_float_32_execution(False)

if keras.backend.backend() != "tensorflow":  # a user's KERAS_BACKEND=torch would break us silently
    raise RuntimeError(
        f"KERAS_BACKEND: expected 'tensorflow' (duetrl's tf backend runs Keras 3 on TensorFlow), "
        f"got {keras.backend.backend()!r}; unset it or set KERAS_BACKEND=tensorflow"
    )
