"""The Decision Transformer's tensor pieces (outline 3.2.1, 3.2.5; Chen et al. 2021): the GPT's
logits of a batch of token windows, without gradient, as NumPy; and returns-to-go with their
tokens as tensors (the grader's ``lm-agent`` assignment; the host-side twins the trainer uses
are ``core/agents/dt_data.return_to_go`` and ``ReturnBuckets.token``).

    R_t = r_t + gamma (1 - done_t) R_{t+1},  R_T = 0     (= sum_{k>=t} gamma^(k-t) r_k per episode)
    bucket(R) = round((R - low) / (high - low) (n - 1)), clipped to [0, n - 1]   (ties to even)

Everything else of the Decision Transformer is host-side and lives once in
``core/agents/decision_transformer.py`` (tokens, windows, loss mask, the acting loop): it is the
unchanged ``GPT`` on a shared vocabulary of return, state and action tokens, trained by
``LMTrainer.train_step(x, y, lr, weights)`` with weight 1 only where the target is an action.
The twin in the other backend has the same names, order and comments
(``duetrl diff decision_transformer``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from duetrl.backends.torch.gpt import GPT
from duetrl.core.interfaces.gpt_config import check_token_ids


@torch.inference_mode()
def inference_logits(model: GPT, tokens: np.ndarray) -> np.ndarray:
    """Logits ``(B, T, V)`` of token ids ``tokens`` ``(B, T)``, dropout off, as NumPy.

    Under ``torch.inference_mode()``: no autograd graph is recorded.
    """
    tokens = np.asarray(tokens, np.int64)
    check_token_ids(tokens.shape, model.config, "tokens", tokens)
    model.eval()
    return model(torch.as_tensor(tokens)).numpy()  # (B, T, V)


def returns_to_go(rewards: Tensor, dones: Tensor, gamma: float) -> Tensor:
    """R_t = sum_{k=t}^{end of t's episode} gamma^(k-t) r_k: ``(..., T)`` -> ``(..., T)``.

    ``rewards`` and ``dones`` have time on the last axis, episodes laid end to end;
    ``dones[..., t]`` is 1 at each episode's last step (terminated or cut alike: nothing is
    bootstrapped, the Decision Transformer conditions on the return actually received). The
    result keeps the rewards' dtype. One backward pass: R_t = r_t + gamma (1 - done_t) R_{t+1}.
    """
    dones = dones.to(rewards.dtype)
    future = torch.zeros_like(rewards[..., 0])  # R_T = 0: nothing after the last column
    columns = []
    for t in range(rewards.shape[-1] - 1, -1, -1):  # backwards: R_t needs R_{t+1}
        future = rewards[..., t] + gamma * (1.0 - dones[..., t]) * future  # done: start anew
        columns.append(future)
    return torch.stack(columns[::-1], dim=-1)


def return_tokens(returns: Tensor, low: float, high: float, num_buckets: int) -> Tensor:
    """Bucket ids (int64, the returns' shape) of returns-to-go, linearly over [low, high]:

        bucket(R) = round((R - low) / (high - low) (n - 1)),  clipped to [0, n - 1]

    A return exactly halfway between two bucket centres goes to the even bucket (IEEE
    round-half-to-even, as ``np.rint``); high == low (every return the same) gives bucket 0.
    """
    if int(num_buckets) < 2 or not high >= low:
        raise ValueError(f"num_buckets, low, high: expected num_buckets >= 2 and high >= low, "
                         f"got {num_buckets}, {low}, {high}")
    # BEGIN SOLUTION
    span = high - low
    if span == 0:  # one value only: no scale to divide by
        return torch.zeros_like(returns, dtype=torch.int64)
    scaled = (returns - low) / span * (num_buckets - 1)  # 0 at low, n - 1 at high
    return torch.clamp(torch.round(scaled), 0, num_buckets - 1).to(torch.int64)
    # END SOLUTION
