"""Returns and advantages as PyTorch tensor code: equal to ``core/reference/returns.py``.

No Python loop at all: the backward recurrence y_t = a_t + c_t y_{t+1} is solved for every
step and environment at once, as y_t = sum_{k >= t} (prod_{t <= j < k} c_j) a_k, with a
(T, T, N) matrix of discount products built by a cumulative product. Arrays are time-major
(T, N); see the reference for the symbols.
"""

import torch

from duetrl.core.constants import ADVANTAGE_EPS, ADVANTAGE_STD_DDOF
from duetrl.core.interfaces.rl import check_discount, check_trajectory_arrays


def continuation(terminations: torch.Tensor, truncations: torch.Tensor) -> torch.Tensor:
    """c_t = 1 if step t+1 continues the episode of step t (and t < T-1), else 0."""
    done = torch.logical_or(terminations.bool(), truncations.bool())
    cont = 1.0 - done.to(torch.get_default_dtype())
    last_row = torch.arange(cont.shape[0]) == cont.shape[0] - 1
    return torch.where(last_row[:, None], torch.zeros_like(cont), cont)


def discounted_sum(inputs: torch.Tensor, discounts: torch.Tensor) -> torch.Tensor:
    """y_t = a_t + c_t y_{t+1} (y_T = 0) for a = ``inputs``, c = ``discounts``, both (T, N)."""
    steps = inputs.shape[0]
    upper = torch.triu(torch.ones(steps, steps, dtype=torch.bool))  # k >= t
    # factors[t, k] = c_{k-1} for k > t and 1 otherwise; cumprod over k gives prod_{t<=j<k} c_j
    shifted = torch.cat([torch.ones_like(discounts[:1]), discounts[:-1]], dim=0)  # c_{k-1}
    strictly_upper = torch.triu(torch.ones(steps, steps, dtype=torch.bool), diagonal=1)
    factors = torch.where(strictly_upper[:, :, None], shifted[None], torch.ones_like(shifted[None]))
    products = torch.cumprod(factors, dim=1) * upper[:, :, None]  # (T, T, N)
    return (products * inputs[None]).sum(dim=1)


def compute_returns(
    rewards: torch.Tensor, terminations: torch.Tensor, truncations: torch.Tensor, gamma: float,
    next_values: torch.Tensor | None = None,
) -> torch.Tensor:
    """G_t = r_t + gamma (1 - term_t) [c_t G_{t+1} + (1 - c_t) V(s_{t+1})]; (T, N) -> (T, N)."""
    check_discount("gamma", gamma)
    check_trajectory_arrays(rewards, terminations, truncations, next_values=next_values)
    not_terminal = 1.0 - terminations.to(rewards.dtype)
    cont = continuation(terminations, truncations).to(rewards.dtype)
    if next_values is None:
        next_values = torch.zeros_like(rewards)
    # the bootstrap term enters where the episode is cut; the rest flows through the recurrence
    inputs = rewards + gamma * not_terminal * (1.0 - cont) * next_values
    return discounted_sum(inputs, gamma * not_terminal * cont)


def compute_gae(
    rewards: torch.Tensor, values: torch.Tensor, next_values: torch.Tensor,
    terminations: torch.Tensor, truncations: torch.Tensor, gamma: float, lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation, equal to duetrl.core.reference.returns.gae:

        delta_t = r_t + gamma (1 - term_t) V(s_{t+1}) - V(s_t)
        A_t     = delta_t + gamma lam c_t A_{t+1}

    Returns ``(advantages, returns = advantages + values)``, each (T, N).
    """
    check_discount("gamma", gamma)
    check_discount("lam", lam)
    check_trajectory_arrays(rewards, terminations, truncations, values, next_values)
    not_terminal = 1.0 - terminations.to(rewards.dtype)
    cont = continuation(terminations, truncations).to(rewards.dtype)
    deltas = rewards + gamma * not_terminal * next_values - values
    advantages = discounted_sum(deltas, gamma * lam * cont)
    return advantages, advantages + values


def normalize_advantages(advantages: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(A - mean) / (std + eps) over mask == 1, population std (pinned in duetrl.core.constants)."""
    count = mask.sum().clamp(min=1.0)
    mean = (advantages * mask).sum() / count
    squares = (((advantages - mean) * mask) ** 2).sum()
    variance = squares / (count - ADVANTAGE_STD_DDOF).clamp(min=1.0)
    return (advantages - mean) / (variance.sqrt() + ADVANTAGE_EPS) * mask
