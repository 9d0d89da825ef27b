"""Float64 NumPy references: the specification every backend is tested against.

Each function carries its equation in its docstring and is written for clarity, not speed.
"""

from duetrl.core.reference.attention import (
    causal_mask,
    init_multi_head_attention_params,
    multi_head_attention,
    scaled_dot_product_attention,
    softmax,
)

__all__ = [
    "causal_mask",
    "init_multi_head_attention_params",
    "multi_head_attention",
    "scaled_dot_product_attention",
    "softmax",
]
