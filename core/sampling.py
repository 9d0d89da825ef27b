"""Choosing the next token on host arrays, once for both backends (outline 9.1.3).

A backend only computes logits; everything random happens here, with NumPy, from one seed, so
both backends pick the same tokens from the same weights. Sampling uses the Gumbel-max trick:

    x_{t+1} = argmax_i (z_i / tau + g_i),   g_i = -log(-log u_i),  u_i ~ U(0, 1)

which draws exactly from softmax(z / tau). Top-k keeps the k largest logits; top-p (nucleus)
keeps the smallest set of most likely tokens whose probability mass reaches p; the rest get
-inf before the draw. Greedy decoding is argmax_i z_i.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from duetrl.core.interfaces.gpt_config import GPTConfig, check_token_ids
from duetrl.core.reference.functional import log_softmax

NextLogits = Callable[[np.ndarray, int], np.ndarray]
"""``next_logits(new_tokens (B, T_new), start) -> logits (B, V)`` of the last new position;
a stateful decoder (it may keep a KV cache) fed the prompt first, then one token at a time."""


@dataclass
class Generation:
    """What :func:`generate` returns.

    tokens: ``(B, T_prompt + n)`` the prompt followed by the ``n`` new tokens.
    new_tokens: ``(B, n)``.
    log_probs: ``(B, n)`` log p_theta(x_t | x_<t) of each new token under the model itself
        (softmax of the raw logits: temperature 1, no filtering), what policy-gradient
        methods need.
    sampling_log_probs: ``(B, n)`` log-probability under the distribution actually sampled
        from (after temperature, top-k, top-p); 0 for greedy decoding.
    """

    tokens: np.ndarray
    new_tokens: np.ndarray
    log_probs: np.ndarray
    sampling_log_probs: np.ndarray


def filter_logits(
    logits: np.ndarray,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> np.ndarray:
    """z / tau with every token outside the top-k and the top-p nucleus set to -inf.

    :param logits: ``(B, V)``.
    :param temperature: tau > 0; below 1 sharpens, above 1 flattens the distribution.
    :param top_k: keep the k most likely tokens (None: all).
    :param top_p: keep the smallest set of most likely tokens with total probability >= p.
    """
    z = np.asarray(logits, dtype=np.float64) / temperature
    if top_k is not None and top_k < z.shape[-1]:
        kth = np.sort(z, axis=-1)[:, -top_k][:, None]  # the k-th largest logit
        z = np.where(z < kth, -np.inf, z)
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-z, axis=-1, kind="stable")  # most likely first
        probs = np.exp(log_softmax(np.take_along_axis(z, order, axis=-1)))
        mass_before = np.cumsum(probs, axis=-1) - probs  # mass of the more likely tokens
        drop_sorted = mass_before >= top_p  # the most likely token is always kept
        drop = np.zeros_like(drop_sorted)
        np.put_along_axis(drop, order, drop_sorted, axis=-1)
        z = np.where(drop, -np.inf, z)
    return z


def gumbel_noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """g = -log(-log u), u ~ U(0, 1): argmax(z + g) is a sample from softmax(z)."""
    u = rng.uniform(np.finfo(np.float64).tiny, 1.0, size=shape)
    return -np.log(-np.log(u))


def choose_tokens(
    logits: np.ndarray,
    rng: np.random.Generator,
    greedy: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pick one token per row of ``logits`` ``(B, V)``.

    :returns: ``(tokens (B,), model log-probs (B,), sampling log-probs (B,))``.
    """
    rows = np.arange(logits.shape[0])
    model_logp = log_softmax(logits)
    if greedy:
        tokens = np.argmax(logits, axis=-1)
        return tokens, model_logp[rows, tokens], np.zeros(len(rows))
    filtered = filter_logits(logits, temperature, top_k, top_p)
    noise = gumbel_noise(rng, filtered.shape)  # drawn for every row and token, always
    tokens = np.argmax(filtered + noise, axis=-1)
    return tokens, model_logp[rows, tokens], log_softmax(filtered)[rows, tokens]


def check_sampling_args(
    temperature: float, top_k: int | None, top_p: float | None, max_new_tokens: int
) -> None:
    """Raise ValueError naming the first sampling argument out of range."""
    if not temperature > 0:
        raise ValueError(f"temperature: expected a positive float, got {temperature!r}")
    if top_k is not None and (not isinstance(top_k, int | np.integer) or top_k < 1):
        raise ValueError(f"top_k: expected a positive int or None, got {top_k!r}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p: expected a probability in (0, 1] or None, got {top_p!r}")
    if not isinstance(max_new_tokens, int | np.integer) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens: expected an int >= 0, got {max_new_tokens!r}")


def generate(
    next_logits: NextLogits,
    prompt: np.ndarray,
    max_new_tokens: int,
    config: GPTConfig,
    greedy: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
) -> Generation:
    """Autoregressive decoding: feed the prompt, then each chosen token, ``max_new_tokens`` times.

    :param next_logits: a backend's decoder (see :data:`NextLogits`).
    :param prompt: token ids ``(T,)`` or ``(B, T)``.
    :param max_new_tokens: number of tokens to add; prompt + new must fit in ``block_size``.
    :param greedy: take the most likely token (ignores temperature, top_k, top_p).
    :param seed: seed of the noise; the same seed gives the same tokens in both backends.
    """
    check_sampling_args(temperature, top_k, top_p, max_new_tokens)
    prompt = np.asarray(prompt)
    prompt = prompt[None, :] if prompt.ndim == 1 else prompt  # (T,) -> one row (1, T)
    check_token_ids(prompt.shape, config, "prompt", prompt, more_tokens=max_new_tokens)
    prompt = prompt.astype(np.int64)
    rng = np.random.default_rng(seed)
    batch, start = prompt.shape
    new_tokens = np.zeros((batch, max_new_tokens), dtype=np.int64)
    log_probs = np.zeros((batch, max_new_tokens))
    sampling_log_probs = np.zeros((batch, max_new_tokens))
    if max_new_tokens:
        logits = next_logits(prompt, 0)  # (B, V) after the whole prompt
    for step in range(max_new_tokens):
        tokens, logp, sample_logp = choose_tokens(logits, rng, greedy, temperature, top_k, top_p)
        new_tokens[:, step], log_probs[:, step], sampling_log_probs[:, step] = (
            tokens,
            logp,
            sample_logp,
        )
        if step + 1 < max_new_tokens:  # the last token needs no logits after it
            logits = next_logits(tokens[:, None], start + step)
    tokens = np.concatenate([prompt, new_tokens], axis=1)
    return Generation(tokens, new_tokens, log_probs, sampling_log_probs)
