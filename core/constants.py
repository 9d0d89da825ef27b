"""Every numeric constant that the two frameworks would otherwise pick differently.

Both backends and the float64 reference read these names; none relies on a framework default.
"""

MASK_FILL_VALUE: float = -1e9
"""Score given to a masked (mask == 0) attention position before the softmax, as in the
outline's listing 5.1. A fully masked row therefore becomes a uniform average, never NaN."""

LAYER_NORM_EPS: float = 1e-5
"""LayerNorm epsilon (torch's default is 1e-5, Keras' 1e-3): y = (x - mean) / sqrt(var + eps)."""

ADAM_BETA1: float = 0.9
ADAM_BETA2: float = 0.999
ADAM_EPS: float = 1e-8
"""Adam epsilon, added to sqrt(v_hat) as torch does (Keras' default is 1e-7)."""

GRAD_CLIP_NORM: float = 1.0
"""Default global-norm gradient clipping threshold."""

LOG_STD_MIN: float = -20.0
LOG_STD_MAX: float = 2.0
"""Bounds of a Gaussian policy's log standard deviation."""

ADAMW_WEIGHT_DECAY: float = 0.1
"""Default decoupled AdamW weight decay (GPT-2/nanoGPT; torch default 0.01, Keras 0.004)."""
ADVANTAGE_EPS: float = 1e-8
"""Added to the standard deviation when advantages are normalised: (A - mean) / (std + eps)."""

ADVANTAGE_STD_DDOF: int = 0
"""Degrees of freedom of that standard deviation: 0 = population std (tf.math.reduce_std),
not torch.std's default Bessel-corrected 1."""

GRAD_NORM_EPS: float = 1e-6
"""Global-norm clipping scales gradients by min(1, max_norm / (norm + eps)), as torch does."""

GROUP_ADVANTAGE_EPS: float = 1e-4
"""GRPO's group advantage (r - mean_g) / (std_g + eps): eps added to the group's std, as in
the published test vector (8 rewards, 3 correct -> +1.20738 / -0.72443)."""

GROUP_STD_DDOF: int = 1
"""Degrees of freedom of GRPO's group std: 1 = the unbiased (Bessel-corrected) std, torch.std's
default and the published test vector's convention; tf.math.reduce_std would give ddof 0."""

RLHF_CLIP_EPS: float = 0.2
"""PPO/GRPO ratio clipping: rho is clipped to [1 - eps, 1 + eps]."""

RLHF_VALUE_CLIP: float = 0.2
"""PPO for LMs: the new value may move at most this far from the old one in the clipped term."""

RLHF_VF_COEF: float = 0.1
"""PPO for LMs: weight of the value loss beside the policy loss (TRL's default)."""

VALUE_HEAD_INIT_STD: float = 0.02
"""Scalar (value / reward) head on the GPT: kernel ~ N(0, std^2), bias 0 (GPT-2's INIT_STD)."""

HUBER_DELTA: float = 1.0
"""Huber's threshold delta (torch's SmoothL1/Huber default, Keras' Huber default: both 1.0)."""
