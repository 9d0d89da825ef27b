"""The batch an LM policy scores (outline 3.2.3), laid out on the host: for each state, one row
per admissible command, prompt + command, right-padded.

For S states with at most K commands each, the rows are the S x K grid, state-major:

    row s*K + k:   p_s,1 ... p_s,P_s  a_k,1 ... a_k,L_k  <pad> ...        (T ids)
    mask[row, t]   = 1 where token t+1 is a command token (P_s - 1 <= t <= P_s + L_k - 2)
    admissible[s, k] = 1 for k < K_s (a real command), 0 for the empty rows of the grid
    prompt_last[s] = P_s - 1, the column of the prompt's last token (the value head reads it)

Mask column t flags token t+1, as in RLHF (``core/interfaces/rlhf.py``): the GPT's output at
column t is the distribution of token t+1, so ``token_log_probs`` (B, T-1) and the mask line
up. A state with fewer than K commands gets rows of padding only (mask 0): their score is
replaced by a large negative number before the softmax, so they take no probability.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from duetrl.core.agents.tokenizer import WordTokenizer
from duetrl.core.interfaces.text_env import check_observation, prompt


def encode_observation(
    tokenizer: WordTokenizer, observation: Mapping[str, Any]
) -> tuple[np.ndarray, list[np.ndarray]]:
    """``(prompt ids (P,), [command ids (L_k,)])`` of one observation.

    :raises ValueError: a malformed observation, an empty command or a word outside the
        tokeniser's vocabulary (named).
    """
    check_observation(observation)
    ids = tokenizer.encode(prompt(observation), "observation")
    commands = [tokenizer.encode(command, "admissible") for command in observation["admissible"]]
    for command, encoded in zip(observation["admissible"], commands):
        if encoded.size == 0:
            raise ValueError(f"admissible: expected commands of at least one word, got "
                             f"{command!r} in {list(observation['admissible'])}")
    return ids, commands


def check_fits(prompt_length: int, command_length: int, block_size: int) -> None:
    """ValueError unless a prompt and its longest command fit in the GPT's context."""
    if prompt_length + command_length > block_size:
        raise ValueError(
            f"observation: the prompt ({prompt_length} tokens) and its longest command "
            f"({command_length} tokens) need {prompt_length + command_length} positions, more "
            f"than the GPT's block_size {block_size}; use a GPT with a larger block_size or an "
            "environment with shorter text")


def layout(
    tokenizer: WordTokenizer,
    observations: Sequence[Mapping[str, Any]],
    block_size: int,
    commands: int | None = None,
) -> dict[str, np.ndarray]:
    """The S x K grid of rows of ``observations`` (see the module's docstring).

    :param commands: K, the grid's width (default: the most commands of any state).
    :returns: ``tokens`` (S K, T) int64, ``mask`` (S K, T-1) float64, ``admissible`` (S, K)
        float64, ``prompt_last`` (S,) int64, ``counts`` (S,) int64 (K_s).
    :raises ValueError: no observations, a prompt with its longest command longer than
        ``block_size``, or anything :func:`encode_observation` refuses.
    """
    if len(observations) == 0:
        raise ValueError("observations: expected at least one observation, got none")
    encoded = [encode_observation(tokenizer, observation) for observation in observations]
    width = max(len(c) for _, c in encoded) if commands is None else commands
    if width < max(len(c) for _, c in encoded):
        raise ValueError(f"commands: expected at least {max(len(c) for _, c in encoded)} "
                         f"(the most commands of a state), got {width}")
    for ids, cmds in encoded:
        check_fits(len(ids), max(len(c) for c in cmds), block_size)
    length = max(len(ids) + len(c) for ids, cmds in encoded for c in cmds)  # T
    s = len(observations)
    tokens = np.full((s * width, length), tokenizer.pad_id, dtype=np.int64)
    mask = np.zeros((s * width, length - 1))
    admissible = np.zeros((s, width))
    prompt_last = np.zeros(s, dtype=np.int64)
    for i, (ids, cmds) in enumerate(encoded):
        p = len(ids)
        prompt_last[i] = p - 1
        admissible[i, : len(cmds)] = 1.0
        for k, command in enumerate(cmds):
            row = i * width + k
            tokens[row, :p] = ids
            tokens[row, p: p + len(command)] = command
            mask[row, p - 1: p - 1 + len(command)] = 1.0  # columns predicting the command
    counts = np.array([len(c) for _, c in encoded], dtype=np.int64)
    return {"tokens": tokens, "mask": mask, "admissible": admissible,
            "prompt_last": prompt_last, "counts": counts}


__all__ = ["check_fits", "encode_observation", "layout"]
