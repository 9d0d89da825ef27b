"""duetrl's PyTorch backend. Its public names are the same as in the other backend."""

from backends.torch.attention import (
    MultiHeadAttention,
    fused_attention,
    head_broadcast_mask,
    scaled_dot_product_attention,
)
from backends.torch.autodiff import compile_forward_backward, loss_and_gradients, probe_loss
from backends.torch.runtime import (
    NAME,
    as_tensor,
    framework_version,
    get_num_threads,
    resolve_dtype,
    set_num_threads,
    set_seed,
    to_numpy,
)
from backends.torch.weights import export_params, import_params

__all__ = [
    "NAME",
    "MultiHeadAttention",
    "as_tensor",
    "compile_forward_backward",
    "export_params",
    "framework_version",
    "fused_attention",
    "get_num_threads",
    "head_broadcast_mask",
    "import_params",
    "loss_and_gradients",
    "probe_loss",
    "resolve_dtype",
    "scaled_dot_product_attention",
    "set_num_threads",
    "set_seed",
    "to_numpy",
]
