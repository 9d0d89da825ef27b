"""duetrl's TensorFlow + Keras 3 backend. Its public names are the same as in the other backend."""

from duetrl.backends.tf.agents import Agent
from duetrl.backends.tf.attention import (
    MultiHeadAttention,
    fused_attention,
    head_broadcast_mask,
    scaled_dot_product_attention,
)
from duetrl.backends.tf.autodiff import compile_forward_backward, loss_and_gradients, probe_loss
from duetrl.backends.tf.generation import (
    Decoder,
    cached_self_attention,
    forward_with_cache,
    generate,
    new_kv_cache,
    split_heads,
)
from duetrl.backends.tf.gpt import GPT, MLP, Block
from duetrl.backends.tf.optim import Adam, clip_by_global_norm
from duetrl.backends.tf.policy import (
    GaussianPolicyNet,
    PolicyNet,
    ValueNet,
    categorical_entropy,
    categorical_log_prob,
    flatten,
    gaussian_entropy,
    gaussian_log_prob,
    masked_mean,
    sample_categorical,
    sample_gaussian,
    value_loss,
)
from duetrl.backends.tf.ppo import ppo_clip_loss
from duetrl.backends.tf.reinforce import compute_returns_listing, reinforce
from duetrl.backends.tf.returns import (
    compute_gae,
    compute_returns,
    discounted_sum,
    episode_flags,
    normalize_advantages,
)
from duetrl.backends.tf.runtime import (
    NAME,
    as_tensor,
    framework_version,
    get_num_threads,
    resolve_dtype,
    set_num_threads,
)
from duetrl.backends.tf.training import LMTrainer, cross_entropy_loss
from duetrl.backends.tf.weights import export_params, import_params
from duetrl.core.tolerances import to_numpy  # the one conversion, shared by both backends

__all__ = [
    "Block",
    "Decoder",
    "GPT",
    "LMTrainer",
    "MLP",
    "Adam",
    "Agent",
    "GaussianPolicyNet",
    "PolicyNet",
    "ValueNet",
    "categorical_entropy",
    "categorical_log_prob",
    "clip_by_global_norm",
    "compute_gae",
    "compute_returns",
    "compute_returns_listing",
    "discounted_sum",
    "episode_flags",
    "flatten",
    "gaussian_entropy",
    "gaussian_log_prob",
    "masked_mean",
    "normalize_advantages",
    "ppo_clip_loss",
    "reinforce",
    "sample_categorical",
    "sample_gaussian",
    "value_loss",
    "NAME",
    "MultiHeadAttention",
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
    "split_heads",
    "to_numpy",
]
