"""Supervised fine-tuning (SFT, outline 3.1.1) in float64 NumPy: the oracle of the masked loss.

A demonstration is a prompt x = (x_1..x_P) and the ideal completion y = (y_1..y_L), the stop
token included, written as one token row s = (x_1..x_P, y_1..y_L, pad...). SFT is next-token
cross-entropy **on the completion tokens only**:

    L_SFT(theta) = - sum_{n,t} m_{n,t} log p_theta(s_{n,t+1} | s_{n,<=t}) / sum_{n,t} m_{n,t},

    m_{n,t} = 1  if  P - 1 <= t < P - 1 + L_n   (s_{n,t+1} is a completion token)
              0  otherwise                        (a prompt token, or padding after the stop)

The prompt is given, not learned: without the mask (m = 1 everywhere) the same loop is more
pretraining, and the model spends its capacity predicting prompts. The mask's columns are those
of the RL batch (``core/rlhf/mdp.py``: column t predicts token t + 1), so one mask serves
both. Each backend computes it with its ``LMTrainer`` (``cross_entropy_loss`` with per-token
weights): the loss is the weighted cross-entropy of ``core/reference/gpt.py`` with w = m.
"""

from __future__ import annotations

import numpy as np

from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.reference.gpt import cross_entropy, gpt_forward


def completion_weights(prompt_length: int, lengths: np.ndarray, width: int) -> np.ndarray:
    """The SFT mask m ``(N, width - 1)`` of rows of ``width`` tokens: m[n, t] = 1 for
    ``prompt_length - 1 <= t < prompt_length - 1 + lengths[n]``, else 0.

    :param prompt_length: P, tokens of every prompt (>= 1).
    :param lengths: ``(N,)`` L_n, completion tokens of each row (stop included), 1..width - P.
    :param width: T, tokens per row (prompt + completion + padding).
    :raises ValueError: naming the argument that is out of range.
    """
    lengths = np.asarray(lengths)
    if isinstance(prompt_length, bool) or not isinstance(prompt_length, int | np.integer) or \
            not 1 <= prompt_length < width:
        raise ValueError(f"prompt_length: expected an int in [1, width={width}), got "
                         f"{prompt_length!r}")
    if lengths.ndim != 1 or np.any(lengths < 1) or np.any(lengths > width - prompt_length):
        raise ValueError(f"lengths: expected a 1-D array of ints in [1, {width - prompt_length}]"
                         f" (completion tokens per row), got {lengths.tolist()!r}")
    columns = np.arange(width - 1)[None, :]  # (1, T-1)
    start = prompt_length - 1  # column P-1 predicts the first completion token
    return ((columns >= start) & (columns < start + lengths[:, None])).astype(np.float64)


def sft_loss(
    params: dict[str, np.ndarray], tokens: np.ndarray, mask: np.ndarray, config: GPTConfig
) -> float:
    """L_SFT of the module docstring: the GPT's next-token cross-entropy of ``tokens``
    ``(N, T)`` weighted by the completion mask ``mask`` ``(N, T-1)`` (float64).

    :raises ValueError: a mask of another shape than ``(N, T-1)``, or one with no completion
        token.
    """
    tokens = np.asarray(tokens)
    logits = gpt_forward(params, tokens[:, :-1], config)  # (N, T-1, V)
    return cross_entropy(logits, tokens[:, 1:], mask)


def unmasked_loss(params: dict[str, np.ndarray], tokens: np.ndarray, config: GPTConfig) -> float:
    """The same rows with m = 1 everywhere (prompt and padding learned too): pretraining's loss,
    what SFT is *not*; the tests tell the two apart."""
    tokens = np.asarray(tokens)
    return cross_entropy(gpt_forward(params, tokens[:, :-1], config), tokens[:, 1:])


__all__ = ["completion_weights", "sft_loss", "unmasked_loss"]
