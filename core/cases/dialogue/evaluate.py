"""Simulated conversations and the paper's measurements (outline 6.1.3; Li et al. 2016, 4.2).

Two agents talk: both are the chatbot (self-play, as in the paper). A conversation opens with
two turns of a corpus dialogue; then each agent in turn replies to the last two turns, so an
agent's reply a to (p_i, q_i) follows its own previous turn p_i and the other's q_i.

Measured on the turns the agents generate (greedy decoding, held-out openings):

* dull-reply rate: the share of turns that are one of ``DULL_REPLIES``;
* dialogue length: generated turns before the first dull one or the first repetition of an
  earlier turn of the conversation (the paper ends a simulation at either), at most ``turns``;
* distinct-1, distinct-2: distinct unigrams (bigrams within a turn) / all of them (Li et al.,
  NAACL 2016): low when the agents say the same few things.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from duetrl.core.cases.dialogue.corpus import SLOT, Turn, Vocabulary, is_dull


def generate_replies(backend: ModuleType, model: Any, vocab: Vocabulary,
                     contexts: Sequence[tuple[Turn, Turn]], greedy: bool = True,
                     seed: int = 0) -> tuple[Any, list[Turn], np.ndarray]:
    """Replies to the contexts ``(p, q)``: (the Generation, the replies, their masks
    ``(B, SLOT)``); sampling draws its noise from ``seed`` (the same tokens in both backends)."""
    prompts = np.stack([vocab.prompt(p, q) for p, q in contexts])
    out = backend.generate(model, prompts, SLOT, greedy=greedy, seed=seed)
    replies, mask = vocab.replies(out.new_tokens)
    return out, replies, mask


def simulate(backend: ModuleType, model: Any, vocab: Vocabulary,
             openings: Sequence[tuple[Turn, Turn]], turns: int, greedy: bool = True,
             seed: int = 0) -> tuple[list[list[Turn]], list[tuple[np.ndarray, np.ndarray]]]:
    """Self-play from each opening (two turns) for ``turns`` more turns: (the conversations,
    and for each generated turn the token rows ``(B, 3 SLOT)`` and reply masks ``(B, SLOT)``).
    Turn k's sampling noise comes from ``(seed, k)``."""
    conversations = [list(o) for o in openings]
    records = []
    for k in range(turns):
        noise = int(np.random.SeedSequence([seed, 67, k]).generate_state(1)[0])
        out, replies, mask = generate_replies(
            backend, model, vocab, [(c[-2], c[-1]) for c in conversations], greedy, noise)
        for c, reply in zip(conversations, replies):
            c.append(reply)
        records.append((out.tokens, mask))
    return conversations, records


def dialogue_length(conversation: Sequence[Turn], opening: int = 2) -> int:
    """Generated turns before the first dull or repeated one."""
    for k in range(opening, len(conversation)):
        turn = conversation[k]
        if is_dull(turn) or turn in conversation[:k]:
            return k - opening
    return len(conversation) - opening


def distinct(turns: Sequence[Turn], n: int) -> float:
    """Distinct n-grams (within turns) / all n-grams; 0 when there are none."""
    grams = [tuple(t[i: i + n]) for t in turns for i in range(len(t) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def dialogue_figures(conversations: Sequence[Sequence[Turn]], opening: int = 2,
                     samples: int = 3) -> dict[str, Any]:
    """``dull_rate``, ``dialogue_length``, ``distinct_1``, ``distinct_2`` of the generated
    turns, and the first ``samples`` conversations as lists of strings."""
    generated = [t for c in conversations for t in c[opening:]]
    return {
        "dull_rate": float(np.mean([is_dull(t) for t in generated])),
        "dialogue_length": float(np.mean([dialogue_length(c, opening) for c in conversations])),
        "distinct_1": distinct(generated, 1),
        "distinct_2": distinct(generated, 2),
        "samples": [[" ".join(t) for t in c] for c in conversations[:samples]],
    }
