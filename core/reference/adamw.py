"""AdamW (decoupled weight decay) and global-norm clipping in float64 NumPy: the oracle.

    theta <- theta - lr * wd * theta                    (decay, only on matrices)
    m <- beta1 m + (1 - beta1) g ;  v <- beta2 v + (1 - beta2) g^2
    m_hat = m / (1 - beta1^t) ;  v_hat = v / (1 - beta2^t)
    theta <- theta - lr * m_hat / (sqrt(v_hat) + eps)   (eps added to sqrt(v_hat), as torch)

Clipping by global norm: g <- g * min(1, max_norm / (||g||_2 + 1e-6)) (torch's formula).
"""

from __future__ import annotations

import numpy as np

from core.constants import ADAM_BETA1, ADAM_BETA2, ADAM_EPS, CLIP_NORM_EPS


def clip_by_global_norm(
    grads: dict[str, np.ndarray], max_norm: float
) -> tuple[dict[str, np.ndarray], float]:
    """Scale all gradients by min(1, max_norm / (norm + 1e-6)); returns (grads, norm)."""
    norm = float(np.sqrt(sum(np.sum(np.asarray(g, np.float64) ** 2) for g in grads.values())))
    coefficient = min(1.0, max_norm / (norm + CLIP_NORM_EPS))
    return {k: np.asarray(g, np.float64) * coefficient for k, g in grads.items()}, norm


def adamw_step(
    params: dict[str, np.ndarray],
    grads: dict[str, np.ndarray],
    m: dict[str, np.ndarray],
    v: dict[str, np.ndarray],
    step: int,
    lr: float,
    weight_decay: float,
    beta1: float = ADAM_BETA1,
    beta2: float = ADAM_BETA2,
    eps: float = ADAM_EPS,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """One AdamW update; ``step`` counts from 1. Weight decay applies to arrays with ndim >= 2
    (kernels, embeddings), not to biases and LayerNorm parameters (GPT-2/nanoGPT practice).

    :returns: ``(new params, new m, new v)``, all float64.
    """
    new_p, new_m, new_v = {}, {}, {}
    for name, p in params.items():
        p, g = np.asarray(p, np.float64), np.asarray(grads[name], np.float64)
        decay = weight_decay if p.ndim >= 2 else 0.0
        p = p * (1.0 - lr * decay)
        new_m[name] = beta1 * m[name] + (1.0 - beta1) * g
        new_v[name] = beta2 * v[name] + (1.0 - beta2) * g * g
        m_hat = new_m[name] / (1.0 - beta1**step)
        v_hat = new_v[name] / (1.0 - beta2**step)
        new_p[name] = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return new_p, new_m, new_v
