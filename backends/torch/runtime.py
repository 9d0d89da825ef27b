"""Framework facts and settings: name, version, threads, tensors in and out.

Nearly every line here is a framework call, and the tf twin also checks at import that Keras
runs on TensorFlow, so this short pair differs more than most (``duetrl diff runtime``).
"""

from typing import Any

import numpy as np
import torch
from torch import Tensor

NAME = "torch"


def framework_version() -> str:
    """The framework's version string."""
    return torch.__version__


def set_num_threads(num_threads: int) -> None:
    """Use ``num_threads`` CPU threads for this framework's ops (within an op and across ops)."""
    torch.set_num_threads(num_threads)  # within an op: settable at any time
    try:
        torch.set_num_interop_threads(num_threads)
    except RuntimeError:  # the across-ops pool is fixed once the first op has run
        pass


def get_num_threads() -> int:
    """The number of CPU threads this framework's ops use (0 = the framework decides)."""
    return torch.get_num_threads()


def resolve_dtype(dtype: Any) -> Any:
    """The framework dtype for ``"float32"``/``"float64"`` (None stays None: the default)."""
    return getattr(torch, dtype) if isinstance(dtype, str) else dtype


def as_tensor(array: Any, dtype: str | None = None) -> Tensor:
    """A framework tensor from a NumPy array (float arrays keep their dtype unless given)."""
    tensor = torch.as_tensor(np.asarray(array))
    return tensor if dtype is None else tensor.to(resolve_dtype(dtype))


# float32 matmuls in full precision (no TF32 shortcuts): equivalence depends on it
torch.set_float32_matmul_precision("highest")
