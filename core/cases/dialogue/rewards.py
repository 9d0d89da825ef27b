"""The rows the three rewards read, built once on the host for both backends (outline 6.1.2).

For B scored turns (p_i, q_i, a) -- the turn before last, the last turn, the reply -- the
backends' ``turn_rewards`` (``backends/*/dialogue.py``; float64 oracle
``core/reference/dialogue.py``, equations there) need:

    dull_tokens    (B N_S, 3 SLOT)  [q][a] s <sep>  each dull reply s after the reply a
    dull_mask      (B N_S, 3 SLOT - 1)   1 on the columns predicting s's tokens and <sep>
    forward_tokens (B, 3 SLOT)      [p][q] a <sep>  the reply under the chatbot
    backward_tokens(B, 3 SLOT)      [ ][a] q <sep>  the last turn under the backward model
    previous_tokens, next_tokens (B, 2 SLOT)  [ ][p], [ ][a]: h_{p_i} and h_a are the hidden
                                    states at their last column (the turn's <sep>)

p_i and a are the same agent's consecutive turns (the other agent said q_i in between).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from duetrl.core.cases.dialogue.corpus import DULL_REPLIES, Example, Turn, Vocabulary

DULL_LIST: tuple[Turn, ...] = tuple(tuple(s.split()) for s in DULL_REPLIES)
"""S, the dull replies of the ease-of-answering reward."""

Reward = Callable[[Sequence[Example]], np.ndarray]
"""A replacement reward: ``reward([(p, q, a), ...]) -> (B,)`` finite floats."""


def reward_rows(vocab: Vocabulary, turns: Sequence[Example],
                dull: Sequence[Turn] = DULL_LIST) -> dict[str, np.ndarray]:
    """The token rows and masks above, for the turns ``(p, q, a)``."""
    if not turns:
        raise ValueError("turns: expected at least one (p, q, a) turn to score, got none")
    dull_tokens, dull_mask = vocab.rows([(q, a, s) for _, q, a in turns for s in dull])
    forward_tokens, forward_mask = vocab.rows(list(turns))
    backward_tokens, backward_mask = vocab.rows([((), a, q) for _, q, a in turns])
    return {"dull_tokens": dull_tokens, "dull_mask": dull_mask,
            "forward_tokens": forward_tokens, "forward_mask": forward_mask,
            "backward_tokens": backward_tokens, "backward_mask": backward_mask,
            "previous_tokens": np.stack([vocab.prompt((), p) for p, _, _ in turns]),
            "next_tokens": np.stack([vocab.prompt((), a) for _, _, a in turns])}


def check_rewards(values: object, count: int, name: str = "reward") -> np.ndarray:
    """``values`` as a float64 ``(count,)`` array; ValueError naming ``name`` when the shape is
    wrong or a value is NaN or infinite (the turn that got it is in the message)."""
    array = np.asarray(values, np.float64)
    if array.shape != (count,):
        raise ValueError(f"{name}: expected one reward per turn, shape ({count},), got "
                         f"{array.shape}")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ValueError(f"{name}: expected finite rewards, got {array[bad[0]]} for turn "
                         f"{int(bad[0])} ({bad.size} of {count} not finite)")
    return array
