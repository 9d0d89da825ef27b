"""KL coefficient controllers (outline 3.1.4): how strongly the policy is held near pi_ref.

The objective is E[r] - beta KL(pi || pi_ref). A fixed beta leaves the KL wherever the
reward pushes it; Ziegler et al. (2019, "Fine-tuning language models from human
preferences", section 2.2) adapt beta so that the measured KL tracks a target:

    e_t = clip((KL_t - KL_target) / KL_target, -0.2, 0.2)     proportional error, clipped
    beta_{t+1} = beta_t (1 + K_beta e_t),   K_beta = n_steps / horizon

Both controllers work on host floats (no tensors) and expose the same two members:
``value`` (the current beta) and ``update(kl, n_steps)``.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

ADAPTIVE_KL_ERROR_CLIP = 0.2
"""Ziegler et al.'s clip of the proportional error (KL - target) / target."""


def _check_float(name: str, value: float, positive: bool) -> float:
    """Return ``value`` as a float, or raise ValueError naming it (finite, > 0 or >= 0)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        kind = "> 0" if positive else ">= 0"
        raise ValueError(f"{name}: expected a float {kind}, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        kind = "> 0" if positive else ">= 0"
        raise ValueError(f"{name}: expected a finite float {kind}, got {value!r}")
    return value


class FixedKLController:
    """beta stays where it was set: ``update`` only checks its input.

    Args:
        beta: the KL coefficient, >= 0.

    Example:
        >>> controller = FixedKLController(0.05)
        >>> controller.update(kl=3.0, n_steps=64)
        0.05
    """

    def __init__(self, beta: float) -> None:
        self.value = _check_float("beta", beta, positive=False)

    def update(self, kl: float, n_steps: int) -> float:
        """Ignore the measurement (after checking it); returns beta."""
        _check_measurement(kl, n_steps)
        return self.value


class AdaptiveKLController:
    """Ziegler et al.'s proportional controller of beta toward a target KL.

        beta <- beta (1 + clip((KL - target) / target, -0.2, 0.2) * n_steps / horizon)

    Args:
        beta: initial KL coefficient, > 0 (a zero beta could never grow).
        target: the KL (nats per sequence, as measured by the caller) to aim at, > 0.
        horizon: number of samples over which the error is corrected (10000 in the paper).

    Example:
        >>> controller = AdaptiveKLController(0.1, target=6.0, horizon=10000)
        >>> round(controller.update(kl=12.0, n_steps=256), 6)  # KL too high: beta grows
        0.100512
    """

    def __init__(self, beta: float, target: float, horizon: float) -> None:
        self.value = _check_float("beta", beta, positive=True)
        self.target = _check_float("target", target, positive=True)
        self.horizon = _check_float("horizon", horizon, positive=True)

    def update(self, kl: float, n_steps: int) -> float:
        """Move beta after measuring ``kl`` over ``n_steps`` samples; returns the new beta.

        A NaN measurement (e.g. an empty batch) leaves beta unchanged.
        """
        _check_measurement(kl, n_steps)
        if math.isnan(kl):
            return self.value
        error = (kl - self.target) / self.target  # proportional error e_t
        error = min(max(error, -ADAPTIVE_KL_ERROR_CLIP), ADAPTIVE_KL_ERROR_CLIP)
        self.value *= 1.0 + error * n_steps / self.horizon  # beta (1 + K_beta e_t)
        return self.value


def _check_measurement(kl: float, n_steps: int) -> None:
    """Raise ValueError unless kl is a real number (NaN allowed, inf not; a k1 average may be
    negative) and n_steps an int >= 0."""
    if isinstance(kl, bool) or not isinstance(kl, Real) or math.isinf(kl):
        raise ValueError(f"kl: expected a finite float (or NaN: no measurement), got {kl!r}")
    if isinstance(n_steps, bool) or not isinstance(n_steps, Integral) or n_steps < 0:
        raise ValueError(f"n_steps: expected an int >= 0 (samples measured), got {n_steps!r}")


__all__ = ["ADAPTIVE_KL_ERROR_CLIP", "AdaptiveKLController", "FixedKLController"]
