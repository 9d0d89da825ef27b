"""Framework facts and settings: name, version, threads, tensors in and out."""

from typing import Any

import numpy as np
import torch

NAME = "torch"


def framework_version() -> str:
    """The framework's version string."""
    return torch.__version__


def set_num_threads(num_threads: int) -> None:
    """Use ``num_threads`` CPU threads for this framework's ops."""
    torch.set_num_threads(num_threads)


def get_num_threads() -> int:
    """The number of CPU threads this framework's ops use."""
    return torch.get_num_threads()


def set_seed(seed: int) -> None:
    """Seed the framework's own random generator (weights drawn by the framework, dropout)."""
    torch.manual_seed(seed)


def resolve_dtype(dtype: Any) -> Any:
    """The framework dtype for ``"float32"``/``"float64"`` (None stays None: the default)."""
    return getattr(torch, dtype) if isinstance(dtype, str) else dtype


def as_tensor(array: Any, dtype: str | None = None) -> torch.Tensor:
    """A framework tensor from a NumPy array (float arrays keep their dtype unless given)."""
    tensor = torch.as_tensor(np.asarray(array))
    return tensor if dtype is None else tensor.to(getattr(torch, dtype))


# float32 matmuls in full precision (no TF32/bf16 shortcuts): equivalence depends on it
torch.set_float32_matmul_precision("highest")
