"""duetrl's TensorFlow + Keras 3 backend. Its public names are the same as in the other backend."""

from backends.tf.attention import (
    MultiHeadAttention,
    fused_attention,
    head_broadcast_mask,
    scaled_dot_product_attention,
)
from backends.tf.autodiff import compile_forward_backward, loss_and_gradients, probe_loss
from backends.tf.generation import (
    Decoder,
    cached_self_attention,
    forward_with_cache,
    generate,
    new_kv_cache,
    split_heads,
)
from backends.tf.gpt import GPT, MLP, Block
from backends.tf.runtime import (
    NAME,
    as_tensor,
    framework_version,
    get_num_threads,
    resolve_dtype,
    set_num_threads,
    set_seed,
    to_numpy,
)
from backends.tf.training import AdamW, LMTrainer, cross_entropy_loss
from backends.tf.weights import export_params, import_params

__all__ = [
    "AdamW",
    "Block",
    "Decoder",
    "GPT",
    "LMTrainer",
    "MLP",
    "MultiHeadAttention",
    "NAME",
    "as_tensor",
    "cached_self_attention",
    "compile_forward_backward",
    "cross_entropy_loss",
    "export_params",
    "forward_with_cache",
    "framework_version",
    "fused_attention",
    "generate",
    "get_num_threads",
    "head_broadcast_mask",
    "import_params",
    "loss_and_gradients",
    "new_kv_cache",
    "probe_loss",
    "resolve_dtype",
    "scaled_dot_product_attention",
    "set_num_threads",
    "set_seed",
    "split_heads",
    "to_numpy",
]
