"""A GPT decoder and its pretraining loss in float64 NumPy (outline 2.1, 4.1.3): the oracle.

    h_0 = W_te[x] + W_pe[0..T-1]
    h'_l = h_{l-1} + Attn(LN_1(h_{l-1}))          (causal multi-head self-attention)
    h_l = h'_l + MLP(LN_2(h'_l)),   MLP(z) = GELU(z W_fc + b_fc) W_proj + b_proj
    logits = LN_f(h_L) W_te^T                      (the output head is tied to W_te)

Dropout is the identity here (evaluation mode).
"""

from __future__ import annotations

import numpy as np

from duetrl.core.interfaces.gpt_config import GPTConfig, check_token_ids
from duetrl.core.reference.attention import causal_mask, multi_head_attention, softmax
from duetrl.core.reference.functional import log_softmax


def layer_norm(x: np.ndarray, scale: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    """LN(x) = (x - mean) / sqrt(var + eps) * scale + bias over the last axis (biased var)."""
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * scale + bias


def gelu(x: np.ndarray, variant: str = "tanh") -> np.ndarray:
    """GELU(x) = x Phi(x); ``"tanh"``: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    if variant == "tanh":
        return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))
    from math import erf

    return 0.5 * x * (1.0 + np.vectorize(erf)(x / np.sqrt(2.0)))


def gpt_hidden_states(
    params: dict[str, np.ndarray], idx: np.ndarray, config: GPTConfig, name: str = "idx"
) -> np.ndarray:
    """LN_f(h_L) ``(batch, time, n_embd)``: the last hidden states of token ids ``idx``, in
    float64 (the input of the tied head; a value head reads them too)."""
    idx = np.asarray(idx)
    check_token_ids(idx.shape, config, name, idx)
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    eps, t = config.layer_norm_eps, idx.shape[1]
    h = p["wte.embeddings"][idx] + p["wpe.embeddings"][:t]  # (B, T, D)
    mask = causal_mask(t)
    for i in range(config.n_layer):
        b = f"blocks.{i}"
        z = layer_norm(h, p[f"{b}.ln_1.scale"], p[f"{b}.ln_1.bias"], eps)
        attn = {k.removeprefix(f"{b}.attn."): v for k, v in p.items() if k.startswith(f"{b}.attn.")}
        h = h + multi_head_attention(attn, z, z, z, config.n_head, mask)
        z = layer_norm(h, p[f"{b}.ln_2.scale"], p[f"{b}.ln_2.bias"], eps)
        hidden = gelu(z @ p[f"{b}.mlp.fc.kernel"] + p[f"{b}.mlp.fc.bias"], config.gelu)
        h = h + hidden @ p[f"{b}.mlp.proj.kernel"] + p[f"{b}.mlp.proj.bias"]
    return layer_norm(h, p["ln_f.scale"], p["ln_f.bias"], eps)  # (B, T, D)


def gpt_forward(params: dict[str, np.ndarray], idx: np.ndarray, config: GPTConfig) -> np.ndarray:
    """Logits ``(batch, time, vocab)`` of token ids ``idx`` ``(batch, time)``, in float64:
    logits = LN_f(h_L) W_te^T (the head is tied to the token embedding)."""
    h = gpt_hidden_states(params, idx, config)
    return h @ np.asarray(params["wte.embeddings"], dtype=np.float64).T  # (B, T, V)


def cross_entropy(
    logits: np.ndarray, targets: np.ndarray, weights: np.ndarray | None = None
) -> float:
    """The pretraining loss (outline 4.1.3): mean next-token negative log-likelihood,

        L = -1/(B T) sum_{b,t} log p_theta(x_{b,t+1} | x_{b,<=t}),

    with ``logits`` ``(B, T, V)`` and ``targets`` ``(B, T)`` the inputs shifted by one. With
    per-position ``weights`` w ``(B, T)`` (the Decision Transformer: 1 where the target is an
    action, 0 elsewhere) it is the weighted mean

        L_w = -sum_{b,t} w_{b,t} log p_theta(x_{b,t+1} | x_{b,<=t}) / sum_{b,t} w_{b,t}.

    :raises ValueError: weights of another shape than ``targets``, or summing to 0.
    """
    logp = log_softmax(np.asarray(logits, dtype=np.float64))
    picked = np.take_along_axis(logp, np.asarray(targets)[..., None], axis=-1)[..., 0]
    if weights is None:
        return float(-picked.mean())
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != picked.shape:
        raise ValueError(f"weights: expected the targets' shape {picked.shape}, got {w.shape}")
    if not w.sum() > 0:
        raise ValueError(f"weights: expected a positive sum (some position to learn), got "
                         f"{w.sum()}")
    return float(-(w * picked).sum() / w.sum())


def gpt_loss(
    params: dict[str, np.ndarray], idx: np.ndarray, targets: np.ndarray, config: GPTConfig
) -> float:
    """Cross-entropy of the reference GPT's logits against ``targets``."""
    return cross_entropy(gpt_forward(params, idx, config), targets)


__all__ = [
    "cross_entropy",
    "gelu",
    "gpt_forward",
    "gpt_hidden_states",
    "gpt_loss",
    "layer_norm",
    "softmax",
]
