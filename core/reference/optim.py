"""One Adam step with global-norm gradient clipping, in float64 NumPy, with pinned constants.

    g      <- g * min(1, max_norm / (||g||_2 + eps_clip))      (global norm over all parameters)
    m      <- beta1 m + (1 - beta1) g
    v      <- beta2 v + (1 - beta2) g^2
    theta  <- theta - lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)

eps sits outside the square root and after bias correction, as torch.optim.Adam places it
(Keras adds it before the bias correction, which is why both backends carry their own Adam).
"""

from __future__ import annotations

import numpy as np

from core.constants import ADAM_BETA1, ADAM_BETA2, ADAM_EPS, GRAD_NORM_EPS


def clip_by_global_norm(grads: dict, max_norm: float | None) -> tuple[dict, float]:
    """Scale every gradient by min(1, max_norm / (norm + eps)); returns ``(grads, norm)``."""
    norm = float(np.sqrt(sum(float((g**2).sum()) for g in grads.values())))
    if max_norm is None or max_norm <= 0:
        return dict(grads), norm
    scale = min(1.0, max_norm / (norm + GRAD_NORM_EPS))
    return {k: g * scale for k, g in grads.items()}, norm


def adam_step(
    params: dict, grads: dict, state: dict, learning_rate: float, max_grad_norm: float | None
) -> tuple[dict, dict]:
    """One Adam update of every parameter named in ``grads``.

    :param state: ``{"step": int, "m": {name: array}, "v": {name: array}}`` (empty dict = fresh).
    :returns: ``(new params, new state)``; the inputs are not modified.
    """
    grads, _ = clip_by_global_norm(grads, max_grad_norm)
    step = state.get("step", 0) + 1
    m_old = state.get("m", {k: np.zeros_like(p) for k, p in params.items()})
    v_old = state.get("v", {k: np.zeros_like(p) for k, p in params.items()})
    new_params, m_new, v_new = dict(params), {}, {}
    for name, g in grads.items():
        m_new[name] = ADAM_BETA1 * m_old[name] + (1 - ADAM_BETA1) * g
        v_new[name] = ADAM_BETA2 * v_old[name] + (1 - ADAM_BETA2) * g**2
        m_hat = m_new[name] / (1 - ADAM_BETA1**step)
        v_hat = v_new[name] / (1 - ADAM_BETA2**step)
        new_params[name] = params[name] - learning_rate * m_hat / (np.sqrt(v_hat) + ADAM_EPS)
    return new_params, {"step": step, "m": m_new, "v": v_new}
