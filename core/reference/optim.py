"""Adam / AdamW with global-norm gradient clipping, in float64 NumPy, with pinned constants.

    g      <- g * min(1, max_norm / (||g||_2 + eps_clip))   (global norm over all parameters)
    theta  <- theta (1 - lr wd)                              (AdamW: decoupled, matrices only)
    m      <- beta1 m + (1 - beta1) g
    v      <- beta2 v + (1 - beta2) g^2
    theta  <- theta - lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)

eps sits outside the square root and after bias correction, as torch.optim.Adam places it
(Keras adds it before the bias correction of v, which is why both backends carry their own
Adam). With ``weight_decay = 0`` this is Adam; otherwise AdamW (Loshchilov & Hutter), decaying
kernels and embeddings (ndim >= 2) but not biases and LayerNorm parameters, as GPT-2 does.
"""

from __future__ import annotations

import numpy as np

from duetrl.core.constants import ADAM_BETA1, ADAM_BETA2, ADAM_EPS, GRAD_NORM_EPS


def clip_by_global_norm(grads: dict, max_norm: float | None) -> tuple[dict, float]:
    """Scale every gradient by min(1, max_norm / (norm + eps)); returns ``(grads, norm)``.

    :param max_norm: the largest global norm let through; None or <= 0 means no clipping.
    """
    norm = float(np.sqrt(sum(float((np.asarray(g) ** 2).sum()) for g in grads.values())))
    if max_norm is None or max_norm <= 0:
        return dict(grads), norm
    scale = min(1.0, max_norm / (norm + GRAD_NORM_EPS))
    return {k: g * scale for k, g in grads.items()}, norm


def decays(param: np.ndarray, weight_decay: float) -> float:
    """The decay rate for one parameter: ``weight_decay`` for matrices, 0 for vectors."""
    return weight_decay if np.ndim(param) >= 2 else 0.0


def adam_step(
    params: dict,
    grads: dict,
    state: dict,
    learning_rate: float,
    max_grad_norm: float | None = None,
    weight_decay: float = 0.0,
) -> tuple[dict, dict]:
    """One Adam (AdamW when ``weight_decay > 0``) update of every parameter named in ``grads``.

    :param state: ``{"step": int, "m": {name: array}, "v": {name: array}}`` (empty dict = fresh).
    :param max_grad_norm: clip the global gradient norm to this first (None: no clipping).
    :param weight_decay: decoupled weight decay of matrices (0: plain Adam).
    :returns: ``(new params, new state)``; the inputs are not modified.
    """
    grads, _ = clip_by_global_norm(grads, max_grad_norm)
    step = state.get("step", 0) + 1
    m_old = state.get("m", {k: np.zeros_like(p) for k, p in params.items()})
    v_old = state.get("v", {k: np.zeros_like(p) for k, p in params.items()})
    new_params, m_new, v_new = dict(params), {}, {}
    for name, g in grads.items():
        theta = params[name] * (1.0 - learning_rate * decays(params[name], weight_decay))
        m_new[name] = ADAM_BETA1 * m_old[name] + (1 - ADAM_BETA1) * g
        v_new[name] = ADAM_BETA2 * v_old[name] + (1 - ADAM_BETA2) * g**2
        m_hat = m_new[name] / (1 - ADAM_BETA1**step)
        v_hat = v_new[name] / (1 - ADAM_BETA2**step)
        new_params[name] = theta - learning_rate * m_hat / (np.sqrt(v_hat) + ADAM_EPS)
    return new_params, {"step": step, "m": m_new, "v": v_new}
