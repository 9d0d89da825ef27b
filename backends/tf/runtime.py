"""Framework facts and settings: name, version, threads, tensors in and out.

Nearly every line here is a framework call, and the tf twin also checks at import that Keras
runs on TensorFlow, so this short pair differs more than most (``duetrl diff runtime``).
"""

from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tensorflow import Tensor

NAME = "tf"


def framework_version() -> str:
    """The framework's version string."""
    return tf.__version__


def set_num_threads(num_threads: int) -> None:
    """Use ``num_threads`` CPU threads for this framework's ops (within an op and across ops)."""
    try:
        tf.config.threading.set_intra_op_parallelism_threads(num_threads)
        tf.config.threading.set_inter_op_parallelism_threads(num_threads)
    except RuntimeError:  # the across-ops pool is fixed once the first op has run
        pass


def get_num_threads() -> int:
    """The number of CPU threads this framework's ops use (0 = the framework decides)."""
    return tf.config.threading.get_intra_op_parallelism_threads()


def resolve_dtype(dtype: Any) -> Any:
    """The framework dtype for ``"float32"``/``"float64"`` (None stays None: the default)."""
    return tf.as_dtype(dtype).name if isinstance(dtype, str) else dtype


def as_tensor(array: Any, dtype: str | None = None) -> Tensor:
    """A framework tensor from a NumPy array (float arrays keep their dtype unless given)."""
    tensor = tf.convert_to_tensor(np.asarray(array))
    return tensor if dtype is None else tf.cast(tensor, resolve_dtype(dtype))


# float32 matmuls in full precision (no TF32 shortcuts): equivalence depends on it
tf.config.experimental.enable_tensor_float_32_execution(False)

if (keras_backend := keras.backend.backend()) != "tensorflow":  # KERAS_BACKEND=torch breaks us
    raise RuntimeError(f"KERAS_BACKEND: expected 'tensorflow' or unset, got {keras_backend!r}")
