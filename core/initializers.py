"""Initial weights drawn with NumPy, so that both backends can start from the same numbers.

Torch's ``nn.Linear`` default (Kaiming-uniform with a=sqrt(5)) and Keras' ``Dense`` default
(Glorot-uniform) differ; duetrl pins Glorot-uniform kernels and zero biases everywhere, drawn
here from one seed and handed to both backends through the canonical parameter dictionary.
"""

from __future__ import annotations

import numpy as np


def glorot_uniform(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    """W ~ U(-a, a), a = sqrt(6 / (fan_in + fan_out)); shape ``(fan_in, fan_out)``, float64."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_in, fan_out))


def dense_params(
    rng: np.random.Generator, name: str, fan_in: int, fan_out: int, bias_scale: float = 0.0
) -> dict[str, np.ndarray]:
    """``{name.kernel: (in, out), name.bias: (out,)}``; biases are zero unless ``bias_scale``."""
    bias = np.zeros(fan_out)
    if bias_scale:
        bias = rng.uniform(-bias_scale, bias_scale, size=(fan_out,))
    return {f"{name}.kernel": glorot_uniform(rng, fan_in, fan_out), f"{name}.bias": bias}


def cast_params(params: dict[str, np.ndarray], dtype: str) -> dict[str, np.ndarray]:
    """A copy of ``params`` with every floating array cast to ``dtype``."""
    return {
        k: (v.astype(dtype) if np.issubdtype(v.dtype, np.floating) else v.copy())
        for k, v in params.items()
    }
