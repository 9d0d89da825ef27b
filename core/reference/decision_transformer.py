"""Returns-to-go and their tokens (outline 3.2.1, 3.2.5; Chen et al. 2021) in float64 NumPy: the
oracle of each backend's ``decision_transformer.returns_to_go`` and ``return_tokens``.

A Decision Transformer reads the return it is still to collect before every state. For
episodes laid end to end along the time axis (``done_t = 1`` at each episode's last step):

    R_t = sum_{k=t}^{end of t's episode} gamma^(k-t) r_k            (closed form)
        = r_t + gamma (1 - done_t) R_{t+1},   R_T = 0                (backwards in time)

Nothing is bootstrapped at an episode's end, terminated or cut: the model conditions on the
return actually received. ``core/agents/dt_data.py`` uses gamma = 1 (``return_to_go``).

The return becomes one of n tokens, linearly over the dataset's range [low, high]:

    bucket(R) = round((R - low) / (high - low) * (n - 1)),   clipped to [0, n - 1]

``round`` sends a value exactly halfway between two bucket centres to the even one (NumPy's
``rint``, ``torch.round``, ``tf.round``: IEEE round-half-to-even), as
``core/agents/dt_data.ReturnBuckets.token`` does; with high == low every return is bucket 0.
"""

from __future__ import annotations

import numpy as np


def returns_to_go(rewards: np.ndarray, dones: np.ndarray, gamma: float) -> np.ndarray:
    """R_t = sum_{k=t}^{end} gamma^(k-t) r_k per episode: ``(..., T)`` -> ``(..., T)`` float64.

    :param rewards: time on the last axis; several episodes may follow one another.
    :param dones: 1 (or True) at the last step of each episode; the last column always ends
        one (nothing follows it).
    :param gamma: the discount, in [0, 1].
    """
    rewards = np.asarray(rewards, np.float64)
    dones = np.asarray(dones, np.float64)
    if rewards.shape != dones.shape or rewards.ndim == 0:
        raise ValueError(f"dones: expected the rewards' shape {rewards.shape} (time last), got "
                         f"{dones.shape}")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma: expected a discount in [0, 1], got {gamma}")
    out = np.zeros_like(rewards)
    future = np.zeros(rewards.shape[:-1])  # R_T = 0
    for t in range(rewards.shape[-1] - 1, -1, -1):
        future = rewards[..., t] + gamma * (1.0 - dones[..., t]) * future
        out[..., t] = future
    return out


def return_tokens(returns: np.ndarray, low: float, high: float, num_buckets: int) -> np.ndarray:
    """bucket(R) = rint((R - low) / (high - low) (n - 1)) clipped to [0, n - 1]: int64 ids of
    ``returns`` (any shape); high == low gives bucket 0 everywhere."""
    if int(num_buckets) < 2 or not high >= low:
        raise ValueError(f"num_buckets, low, high: expected num_buckets >= 2 and high >= low, "
                         f"got {num_buckets}, {low}, {high}")
    returns = np.asarray(returns, np.float64)
    span = high - low
    scaled = (returns - low) / span if span > 0 else np.zeros_like(returns)
    return np.clip(np.rint(scaled * (num_buckets - 1)), 0, num_buckets - 1).astype(np.int64)


__all__ = ["return_tokens", "returns_to_go"]
