"""A BERT-style encoder and its masked-LM objective in float64 NumPy (outline 7.1.2): the oracle.

The body is the GPT's (core/reference/gpt.py), block for block, with one difference, the mask::

    h_0 = W_te[x] + W_pe[0..T-1]
    h'_l = h_{l-1} + Attn(LN_1(h_{l-1}); M)        M[b, i, j] = a[b, j]   (bidirectional)
    h_l = h'_l + MLP(LN_2(h'_l))                   the GPT's decoder has M[i, j] = [j <= i]
    H = LN_f(h_L)

where ``a`` (B, T) is the padding mask: 1 for a real token, 0 for padding, so no query ever
reads a padding key, and every token reads every real token, those after it included. The
masked-LM head is BERT's: a dense layer, GELU and a LayerNorm, then the output tied to W_te
plus a bias of its own::

    logits = LN_m(GELU(H W_d + b_d)) W_te^T + b_o

Choices against the original BERT (Devlin et al. 2019), said once here: pre-LayerNorm blocks
and a final LayerNorm (the GPT's block, reused), no token-type embeddings, no [CLS] pooler and
no next-sentence objective. Dropout is the identity here (evaluation mode).

The masking rule (:func:`mask_tokens`) is BERT's: select ``max(1, round(0.15 n))`` of the
``n`` real, non-special tokens of each sequence; of the selected, 80% become [MASK], 10% a
random token, 10% stay as they are; the loss (:func:`masked_lm_loss`) reads the selected
positions only. Every draw comes from a NumPy generator, so both backends see the same masks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from duetrl.core.interfaces.encoder_params import (  # noqa: F401  (the oracle's names too)
    check_attention_mask,
    encoder_param_shapes,
    head_param_shapes,
    init_encoder_params,
    masked_accuracy,
)
from duetrl.core.interfaces.gpt_config import GPTConfig, check_token_ids
from duetrl.core.reference.attention import multi_head_attention
from duetrl.core.reference.functional import log_softmax
from duetrl.core.reference.gpt import gelu, layer_norm

MLM_SELECT_RATE = 0.15
"""Share of each sequence's real, non-special tokens selected for prediction (BERT: 15%)."""
MLM_MASK_FRACTION = 0.8
"""Of the selected tokens, the share replaced by [MASK] (u < 0.8)."""
MLM_RANDOM_FRACTION = 0.1
"""Of the selected tokens, the share replaced by a random token (0.8 <= u < 0.9); the rest
(u >= 0.9) stay unchanged, so the model must predict every token, not only [MASK]s."""


class MaskedBatch(NamedTuple):
    """A batch ready for masked-LM training, every array ``(B, T)``.

    ``inputs``: the ids the model reads (selected positions rewritten by the 80/10/10 rule);
    ``targets``: the original ids; ``selected``: bool, the positions the loss reads.
    """

    inputs: np.ndarray
    targets: np.ndarray
    selected: np.ndarray


def padding_mask(attention_mask: np.ndarray) -> np.ndarray:
    """The attention mask of an encoder, ``(B, 1, T)`` from ``a`` ``(B, T)``: M[b, i, j] =
    a[b, j] for every query i (broadcast), so queries read every real key, before or after."""
    return np.asarray(attention_mask, dtype=np.float64)[:, None, :]


def transformer_stack(params: dict[str, np.ndarray], h: np.ndarray, mask: np.ndarray | None,
                      config: GPTConfig, attention: list | None = None) -> np.ndarray:
    """The GPT's ``n_layer`` pre-LN blocks and ``LN_f`` on ``h`` (B, T, D) under ``mask``:
    ``causal_mask(T)`` gives the GPT's hidden states, :func:`padding_mask` (or None) the
    encoder's. Each block's attention weights (B, heads, T, T) are appended to ``attention``."""
    p, eps = params, config.layer_norm_eps
    for i in range(config.n_layer):
        b = f"blocks.{i}"
        z = layer_norm(h, p[f"{b}.ln_1.scale"], p[f"{b}.ln_1.bias"], eps)
        attn = {k.removeprefix(f"{b}.attn."): v for k, v in p.items() if k.startswith(f"{b}.attn.")}
        out, weights = multi_head_attention(attn, z, z, z, config.n_head, mask, True)
        if attention is not None:
            attention.append(weights)
        h = h + out
        z = layer_norm(h, p[f"{b}.ln_2.scale"], p[f"{b}.ln_2.bias"], eps)
        hidden = gelu(z @ p[f"{b}.mlp.fc.kernel"] + p[f"{b}.mlp.fc.bias"], config.gelu)
        h = h + hidden @ p[f"{b}.mlp.proj.kernel"] + p[f"{b}.mlp.proj.bias"]
    return layer_norm(h, p["ln_f.scale"], p["ln_f.bias"], eps)


def encoder_hidden_states(params: dict[str, np.ndarray], idx: np.ndarray, config: GPTConfig,
                          attention_mask: np.ndarray | None = None,
                          attention: list | None = None) -> np.ndarray:
    """H = LN_f(h_L) ``(B, T, D)`` of the bidirectional encoder, in float64.

    :param idx: token ids ``(B, T)``.
    :param attention_mask: ``(B, T)``, 1 = token, 0 = padding (None: every position is a token).
    :param attention: a list to receive each block's attention weights ``(B, heads, T, T)``.
    """
    idx = np.asarray(idx)
    check_token_ids(idx.shape, config, "idx", idx)
    check_attention_mask(attention_mask, idx.shape)
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    h = p["wte.embeddings"][idx] + p["wpe.embeddings"][: idx.shape[1]]  # (B, T, D)
    mask = None if attention_mask is None else padding_mask(attention_mask)
    return transformer_stack(p, h, mask, config, attention)


def mlm_head(params: dict[str, np.ndarray], hidden: np.ndarray, config: GPTConfig) -> np.ndarray:
    """logits = LN_m(GELU(H W_d + b_d)) W_te^T + b_o ``(B, T, V)`` from H ``(B, T, D)``."""
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    z = gelu(hidden @ p["head.dense.kernel"] + p["head.dense.bias"], config.gelu)
    z = layer_norm(z, p["head.ln.scale"], p["head.ln.bias"], config.layer_norm_eps)
    return z @ p["wte.embeddings"].T + p["head.bias"]


def mlm_forward(params: dict[str, np.ndarray], idx: np.ndarray, config: GPTConfig,
                attention_mask: np.ndarray | None = None) -> np.ndarray:
    """Masked-LM logits ``(B, T, V)``: :func:`mlm_head` of :func:`encoder_hidden_states`."""
    return mlm_head(params, encoder_hidden_states(params, idx, config, attention_mask), config)


def masked_lm_loss(logits: np.ndarray, targets: np.ndarray, selected: np.ndarray) -> float:
    """The masked-LM loss: cross-entropy at the selected positions S only,

        L = -1/|S| sum_{(b,t) in S} log softmax(logits[b, t])[targets[b, t]].

    Positions outside S (unselected tokens, padding) never enter, whatever their logits.

    :raises ValueError: ``selected`` of another shape than ``targets``, or selecting nothing.
    """
    targets, s = np.asarray(targets), np.asarray(selected)
    if s.shape != targets.shape:
        raise ValueError(f"selected: expected the targets' shape {targets.shape}, got {s.shape}")
    if not s.any():
        raise ValueError("selected: expected at least one selected position, got none")
    logp = log_softmax(np.asarray(logits, dtype=np.float64))  # (B, T, V)
    picked = np.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]  # (B, T)
    return float(-picked[s.astype(bool)].mean())


def mlm_loss(params: dict[str, np.ndarray], batch: MaskedBatch, config: GPTConfig,
             attention_mask: np.ndarray | None = None) -> float:
    """:func:`masked_lm_loss` of the reference encoder's logits on a :class:`MaskedBatch`."""
    logits = mlm_forward(params, batch.inputs, config, attention_mask)
    return masked_lm_loss(logits, batch.targets, batch.selected)


def select_positions(candidates: np.ndarray, rng: np.random.Generator,
                     rate: float = MLM_SELECT_RATE) -> np.ndarray:
    """Pick ``max(1, round(rate n_b))`` of the ``n_b`` candidate positions of each row b,
    uniformly without replacement (a row with no candidate gets none). BERT counts per
    sequence, real tokens only: 15% of the sentence, not of its padded length.

    :param candidates: bool ``(B, T)``, the positions that may be selected.
    :returns: bool ``(B, T)``, True where selected (always a subset of ``candidates``).
    """
    c = np.asarray(candidates, dtype=bool)
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"rate: expected a share in (0, 1], got {rate!r}")
    n = c.sum(axis=1)  # (B,)
    count = np.where(n > 0, np.maximum(1, np.round(rate * n)), 0).astype(np.int64)
    keys = np.where(c, rng.random(c.shape), np.inf)  # non-candidates sort last
    rank = np.argsort(np.argsort(keys, axis=1, kind="stable"), axis=1, kind="stable")
    return (rank < count[:, None]) & c


def apply_mask_rule(ids: np.ndarray, selected: np.ndarray, uniforms: np.ndarray,
                    random_ids: np.ndarray, mask_token_id: int) -> np.ndarray:
    """BERT's 80/10/10 rule at the selected positions, from given draws (all ``(B, T)``):

        x'[b,t] = [MASK]            if selected and u < 0.8
                  random_ids[b,t]   if selected and 0.8 <= u < 0.9
                  x[b,t]            otherwise (u >= 0.9, or not selected)
    """
    ids, u = np.asarray(ids), np.asarray(uniforms)
    rewritten = np.select(  # the first condition that holds wins
        [u < MLM_MASK_FRACTION, u < MLM_MASK_FRACTION + MLM_RANDOM_FRACTION],
        [np.full_like(ids, mask_token_id), np.asarray(random_ids)], ids)
    return np.where(np.asarray(selected, dtype=bool), rewritten, ids).astype(np.int64)


def mask_tokens(ids: np.ndarray, mask_token_id: int, vocab_size: int, seed: int | Sequence[int],
                attention_mask: np.ndarray | None = None, special_ids: Sequence[int] = (),
                rate: float = MLM_SELECT_RATE) -> MaskedBatch:
    """BERT's masking of a batch of token ids ``(B, T)``, drawn from ``default_rng(seed)``.

    Candidates are the real tokens (``attention_mask`` 1) that are not ``special_ids`` (pad,
    [MASK], ...); :func:`select_positions` picks 15% of each row's, :func:`apply_mask_rule`
    rewrites them; a random replacement is uniform over the ids in ``[0, vocab_size)`` that
    are not special (it may equal the original token, as in BERT).

    :raises ValueError: naming a bad ``ids``, ``attention_mask``, ``mask_token_id`` or
        ``vocab_size``.
    """
    ids = np.asarray(ids)
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"ids: expected integer token ids of shape (batch, time), got "
                         f"{ids.dtype} of shape {ids.shape}")
    if not 0 <= mask_token_id < vocab_size:
        raise ValueError(f"mask_token_id: expected an id in [0, vocab_size={vocab_size}), got "
                         f"{mask_token_id!r}")
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"ids: expected ids in [0, vocab_size={vocab_size}), got values in "
                         f"[{ids.min()}, {ids.max()}]")
    check_attention_mask(attention_mask, ids.shape)
    special = np.array(sorted({int(mask_token_id), *map(int, special_ids)}), dtype=np.int64)
    ordinary = np.setdiff1d(np.arange(vocab_size), special)
    if ordinary.size == 0:
        raise ValueError(f"vocab_size: expected ids besides the special ones {special.tolist()}, "
                         f"got vocab_size={vocab_size}")
    real = np.ones(ids.shape, bool) if attention_mask is None else np.asarray(attention_mask) == 1
    rng = np.random.default_rng(seed)
    selected = select_positions(real & ~np.isin(ids, special), rng, rate)
    uniforms = rng.random(ids.shape)
    random_ids = ordinary[rng.integers(0, ordinary.size, size=ids.shape)]
    inputs = apply_mask_rule(ids, selected, uniforms, random_ids, mask_token_id)
    return MaskedBatch(inputs, ids.astype(np.int64), selected)


__all__ = [
    "MLM_MASK_FRACTION",
    "MLM_RANDOM_FRACTION",
    "MLM_SELECT_RATE",
    "MaskedBatch",
    "apply_mask_rule",
    "check_attention_mask",
    "encoder_hidden_states",
    "encoder_param_shapes",
    "head_param_shapes",
    "init_encoder_params",
    "mask_tokens",
    "masked_accuracy",
    "masked_lm_loss",
    "mlm_forward",
    "mlm_head",
    "mlm_loss",
    "padding_mask",
    "select_positions",
    "transformer_stack",
]
