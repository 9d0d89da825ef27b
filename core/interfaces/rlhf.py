"""The RL-for-language-models contract (outline 2.3, 3.1.4-3.1.5): the batch both backends' learners
take, the objectives and their coefficients, and the input checks both share.

The sequence MDP: state = prompt + tokens so far, action = the next token, the policy is the
GPT, the episode ends at a stop token or the length limit, the reward comes at the end
(optionally minus beta times a per-token KL estimate against a frozen reference model).

Batch contract (what the training loop hands ``RLHFLearner.update`` in either backend)
--------------------------------------------------------------------------------------
NumPy arrays, B rows; ``T`` is the full sequence length (prompt + completion, right-padded).
Per-token arrays have ``T - 1`` columns, aligned with ``token_log_probs(model, tokens)``:
column t is about predicting ``tokens[:, t + 1]`` from ``tokens[:, :t + 1]``.

=================  ========  ===========================================================
Key                Shape     Description
=================  ========  ===========================================================
tokens             (B, T)    int64 token ids, prompt then completion then padding
mask               (B, T-1)  1 where tokens[:, t+1] is a completion token (stop token
                             included), 0 on prompt and padding; float
old_logp           (B, T-1)  log pi_old(token) under the sampling policy (no gradient)
ref_logp           (B, T-1)  log pi_ref(token) under the frozen reference model
advantages         (B,)      a sequence's advantage (broadcast over its tokens), or
                   (B, T-1)  per token (PPO's GAE advantages)
returns            (B, T-1)  PPO: value targets R_t = A_t + V_old(s_t)
old_values         (B, T-1)  PPO: V_old(s_t) at sampling time
chosen_tokens      (B, T)    DPO / reward model: the preferred sequence y_w
rejected_tokens    (B, T)    the other one y_l (same prompt)
chosen_mask        (B, T-1)  completion mask of chosen_tokens (as ``mask``)
rejected_mask      (B, T-1)  completion mask of rejected_tokens
ref_chosen_logp    (B,)      DPO: sum_t log pi_ref over y_w's completion tokens
ref_rejected_logp  (B,)      DPO: the same for y_l
=================  ========  ===========================================================

Objectives and the keys they read: ``reinforce`` / ``rloo`` (tokens, mask, advantages;
ref_logp optional, for the KL statistic), ``grpo`` (tokens, mask, old_logp, ref_logp,
advantages), ``ppo`` (tokens, mask, old_logp, advantages, returns, old_values; ref_logp
optional), ``dpo`` (the chosen/rejected keys), ``reward_model`` (chosen/rejected tokens and
masks). The value and reward heads read the GPT's final hidden state: V(s_t) at column t is
the head on the hidden state of tokens[:, t]; a reward model's score is its head on the
hidden state of the last completion token.

Conventions pinned (DESIGN.md): log-ratio l = ref_logp - logp; GRPO's group std is the
UNBIASED one (``GROUP_STD_DDOF = 1``) plus ``GROUP_ADVANTAGE_EPS = 1e-4``; PPO's advantage
whitening uses the population std (``ADVANTAGE_STD_DDOF = 0``) plus ``ADVANTAGE_EPS``.
Rewards of a group are laid out prompt-major: entries ``[g k, (g + 1) k)`` share prompt g.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from duetrl.core.constants import (
    RLHF_CLIP_EPS,
    RLHF_VALUE_CLIP,
    RLHF_VF_COEF,
    VALUE_HEAD_INIT_STD,
)

NORMALISATIONS = ("grpo", "bnpo", "dr_grpo", "dapo")
"""Token-loss normalisations of :func:`aggregate_token_loss`."""

ADVANTAGE_SCALES = ("std", "none")
"""``scale`` of :func:`group_advantages`: GRPO's std scaling, or Dr. GRPO's none."""

OBJECTIVES = ("reinforce", "rloo", "grpo", "ppo", "dpo", "reward_model")
"""Objectives ``RLHFLearner.update`` knows."""

DEFAULT_COEFFICIENTS: dict[str, dict[str, Any]] = {
    "reinforce": {},
    "rloo": {},
    "grpo": {"clip_eps": RLHF_CLIP_EPS, "beta": 0.04, "normalisation": "grpo"},
    "ppo": {
        "clip_eps": RLHF_CLIP_EPS, "clip_range": RLHF_VALUE_CLIP, "vf_coef": RLHF_VF_COEF,
        "normalisation": "bnpo",
    },
    "dpo": {"beta": 0.1},
    "reward_model": {},
}
"""Keyword coefficients each objective accepts in ``RLHFLearner.update``, with defaults
(GRPO's beta 0.04 is DeepSeekMath's, DPO's 0.1 the DPO paper's)."""

REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "reinforce": ("tokens", "mask", "advantages"),
    "rloo": ("tokens", "mask", "advantages"),
    "grpo": ("tokens", "mask", "old_logp", "ref_logp", "advantages"),
    "ppo": ("tokens", "mask", "old_logp", "advantages", "returns", "old_values"),
    "dpo": (
        "chosen_tokens", "rejected_tokens", "chosen_mask", "rejected_mask",
        "ref_chosen_logp", "ref_rejected_logp",
    ),
    "reward_model": ("chosen_tokens", "rejected_tokens", "chosen_mask", "rejected_mask"),
}
"""Batch keys each objective reads (the contract above)."""

USES_HEAD = ("ppo", "reward_model")
"""Objectives that need the scalar head (``value_head``) on the GPT."""


# ---------------------------------------------------------------------------------------------
# Input checks (shared by both backends: they look at shapes and Python values only)
# ---------------------------------------------------------------------------------------------


def _shape(x: Any) -> tuple[int, ...]:
    shape = x.shape if hasattr(x, "shape") else np.shape(x)  # tensors keep theirs
    return tuple(int(d) for d in shape)


def check_same_shape(reference_name: str, reference: Any, **arrays: Any) -> None:
    """Raise ValueError unless every array has the shape of ``reference``."""
    expected = _shape(reference)
    for name, array in arrays.items():
        if array is not None and _shape(array) != expected:
            raise ValueError(
                f"{name}: expected shape {expected} (as {reference_name}), got {_shape(array)}"
            )


def check_token_inputs(mask: Any, advantages: Any = None, **arrays: Any) -> None:
    """Raise ValueError unless ``mask`` is (B, T), every array (B, T), advantages (B,) or (B, T)."""
    shape = _shape(mask)
    if len(shape) != 2:
        raise ValueError(f"mask: expected shape (B, T), got {shape}")
    check_same_shape("mask", mask, **arrays)
    if advantages is not None and _shape(advantages) not in (shape[:1], shape):
        raise ValueError(
            f"advantages: expected shape {shape[:1]} or {shape} (from mask), "
            f"got {_shape(advantages)}"
        )


def check_rewards(rewards: Any) -> None:
    """Raise ValueError unless ``rewards`` is a vector (N,)."""
    if len(_shape(rewards)) != 1:
        raise ValueError(f"rewards: expected shape (N,), got {_shape(rewards)}")


def check_group(num_rewards: int, group_size: Any) -> None:
    """Raise ValueError unless group_size is an int >= 2 that divides the number of rewards."""
    if isinstance(group_size, bool) or not isinstance(group_size, int | np.integer):
        raise ValueError(f"group_size: expected an int >= 2, got {group_size!r}")
    if group_size < 2:
        raise ValueError(
            f"group_size: expected >= 2 (a group method needs several completions per "
            f"prompt), got {group_size}"
        )
    if num_rewards % group_size != 0:
        raise ValueError(
            f"group_size: expected a divisor of the number of rewards {num_rewards} "
            f"(prompts x group_size, prompt-major), got {group_size}"
        )


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    """Raise ValueError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name}: expected one of {list(choices)}, got {value!r}")


def check_non_negative(name: str, value: Any) -> None:
    """Raise ValueError unless ``value`` is a finite float >= 0 (beta, clip ranges, weights).

    A framework tensor passes: a compiled step receives coefficients checked before tracing.
    """
    if hasattr(value, "dtype") and not isinstance(value, np.generic | np.ndarray):
        return
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise ValueError(f"{name}: expected a float >= 0, got {value!r}")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name}: expected a float >= 0, got {value!r}")


def objective_coefficients(objective: str, coefficients: Mapping[str, Any]) -> dict[str, Any]:
    """The objective's coefficients: its defaults updated by ``coefficients``, each checked.

    Raises ValueError for an unknown objective, a coefficient the objective does not take,
    a negative one, or an unknown normalisation.
    """
    check_choice("objective", objective, OBJECTIVES)
    defaults = DEFAULT_COEFFICIENTS[objective]
    for name in coefficients:
        if name not in defaults:
            raise ValueError(
                f"{name}: not a coefficient of objective {objective!r}; expected one of "
                f"{sorted(defaults)}"
            )
    values = {**defaults, **coefficients}
    for name, value in values.items():
        if name == "normalisation":
            check_choice("normalisation", value, NORMALISATIONS)
        else:
            check_non_negative(name, value)
    return values


def check_batch(batch: Mapping[str, Any], objective: str) -> None:
    """Raise ValueError unless ``batch`` holds every key ``objective`` reads."""
    check_choice("objective", objective, OBJECTIVES)
    missing = [key for key in REQUIRED_KEYS[objective] if key not in batch]
    if missing:
        raise ValueError(
            f"batch: objective {objective!r} needs keys {list(REQUIRED_KEYS[objective])}; "
            f"missing {missing}, given {sorted(batch)}"
        )
    if objective == "reward_model":  # its score is read at each row's last completion token
        last_token_index(np.asarray(batch["chosen_mask"]))
        last_token_index(np.asarray(batch["rejected_mask"]))


def last_token_index(mask: np.ndarray) -> np.ndarray:
    """Column of each row's last completion token, ``(B,)`` int; ValueError on an empty row."""
    mask = np.asarray(mask)
    present = mask.sum(axis=1) > 0
    if not np.all(present):
        row = int(np.argmin(present))
        raise ValueError(f"mask: row {row} has no completion token (expected at least one 1)")
    return mask.shape[1] - 1 - np.argmax(mask[:, ::-1] > 0, axis=1)

def init_value_head_params(
    n_embd: int, seed: int = 0, dtype: str = "float32"
) -> dict[str, np.ndarray]:
    """The scalar head's canonical parameters: ``linear.kernel`` (D, 1) ~ N(0, 0.02^2), bias 0."""
    rng = np.random.default_rng(seed)
    kernel = rng.normal(0.0, VALUE_HEAD_INIT_STD, size=(n_embd, 1))
    return {"linear.kernel": kernel.astype(dtype), "linear.bias": np.zeros(1, dtype)}

def pad_pairs(batch: Mapping[str, Any], multiple: int = 8) -> dict[str, Any]:
    """A preference batch (every array one row per pair) padded to a fixed number of rows.

    DPO drops the groups whose rewards tie, so the number of pairs changes from update to
    update; TensorFlow would trace its step again for each new number. The rows are padded to
    the next power of two that is at least ``multiple`` (one shape for up to ``multiple``
    pairs) by repeating the first pair, and ``pair_weights`` (1: a pair, 0: padding) tells the
    loss which rows count; weights the caller gave are kept for the real pairs (padding rows
    weigh 0 whatever they repeat). Strings and scalars pass unchanged.
    """
    arrays = {k: np.asarray(v) for k, v in batch.items() if not isinstance(v, str)}
    rows = {len(v) for v in arrays.values() if v.ndim >= 1}
    if len(rows) != 1:
        raise ValueError(f"batch: expected arrays with one number of rows, got {sorted(rows)}")
    (n,) = rows
    size = max(multiple, 1 << max(n - 1, 0).bit_length())
    padded: dict[str, Any] = dict(batch)
    for key, value in arrays.items():
        if value.ndim >= 1:
            padded[key] = np.concatenate([value, np.repeat(value[:1], size - n, axis=0)])
    real_rows = (np.arange(size) < n).astype(np.float64)
    given = padded.get("pair_weights")
    padded["pair_weights"] = real_rows if given is None else real_rows * np.asarray(given, float)
    return padded
