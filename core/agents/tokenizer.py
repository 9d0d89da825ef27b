"""A word-level tokeniser for text environments (outline 3.2.2-3.2.3): one id per word.

Text environments speak lower case words with "." and "," as their own words
(``core/interfaces/text_env.words``), from a finite vocabulary (each environment's
``vocabulary()``). So a language model acting in them needs no subword tokeniser: one id per
word, plus the special tokens below, and every id means something a student can read.

    ids:  0 <pad>   1..  the prompt's own words ("goal", ":", ".", "action"), then the
                         vocabulary, sorted

A word outside the vocabulary is not mapped to an "unknown" id: an LM that never saw the word
cannot score a command with it, so it is a ValueError that names the word (a vocabulary
mismatch between the LM and the environment).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from duetrl.core.interfaces.text_env import words

PAD = "<pad>"
"""The padding token (id 0): right-pads the rows of a batch; never scored."""

SPECIAL_TOKENS = (PAD,)
"""Special tokens, first in the vocabulary."""

PROMPT_WORDS = ("goal", ":", ".", "action")
"""The words ``text_env.prompt`` adds around the goal and the observation."""


class WordTokenizer:
    """One id per word: ``vocab[i]`` is the word with id i, the special tokens first.

    :param vocab: the tokens in id order, starting with :data:`SPECIAL_TOKENS`, no duplicates.

    Example:
        >>> tokenizer = WordTokenizer.from_words(["take", "the", "key"])
        >>> tokenizer.decode(tokenizer.encode("take the key"))
        'take the key'
    """

    kind = "word"

    def __init__(self, vocab: Sequence[str]) -> None:
        vocab = list(vocab)
        if tuple(vocab[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(f"vocab: expected the special tokens {list(SPECIAL_TOKENS)} first, "
                             f"got {vocab[: len(SPECIAL_TOKENS)]}")
        if len(set(vocab)) != len(vocab):
            raise ValueError(f"vocab: expected distinct words, got {len(vocab)} entries and "
                             f"{len(set(vocab))} distinct ones")
        self.vocab = vocab
        self.index = {word: i for i, word in enumerate(vocab)}

    @classmethod
    def from_words(cls, vocabulary: Iterable[str]) -> WordTokenizer:
        """The tokeniser of a vocabulary (entries may be phrases: each is split into words)."""
        found = {w for entry in vocabulary for w in words(str(entry))}
        prompt = [w for w in PROMPT_WORDS]
        return cls([*SPECIAL_TOKENS, *prompt, *sorted(found - set(prompt))])

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def pad_id(self) -> int:
        return self.index[PAD]

    def missing(self, vocabulary: Iterable[str]) -> list[str]:
        """The words of ``vocabulary`` this tokeniser does not know, sorted."""
        return sorted({w for entry in vocabulary for w in words(str(entry))} - set(self.index))

    def encode(self, text: str, name: str = "text") -> np.ndarray:
        """Token ids ``(n_words,)`` int64 of ``text``'s words.

        :raises ValueError: a word outside the vocabulary, named, with ``name`` (the argument).
        """
        tokens = words(text)
        unknown = [w for w in tokens if w not in self.index]
        if unknown:
            raise ValueError(
                f"{name}: vocabulary mismatch between the LM and the environment: the word(s) "
                f"{unknown} in {text!r} are not among the LM's {self.vocab_size} tokens; build "
                "the LM's tokeniser from the environment's vocabulary() (or pretrain it on a "
                "corpus that covers it)")
        return np.array([self.index[w] for w in tokens], dtype=np.int64)

    def decode(self, ids: Any) -> str:
        """The words of ``ids`` joined by spaces (padding left out)."""
        return " ".join(self.vocab[int(i)] for i in np.asarray(ids).ravel()
                        if int(i) != self.pad_id)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict for a checkpoint's metadata (:meth:`from_dict` reads it)."""
        return {"kind": self.kind, "vocab": list(self.vocab)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> WordTokenizer:
        if values.get("kind") != cls.kind:
            raise ValueError(f"tokenizer: expected a word tokeniser (kind 'word'), got kind "
                             f"{values.get('kind')!r}")
        return cls(values["vocab"])


__all__ = ["PAD", "PROMPT_WORDS", "SPECIAL_TOKENS", "WordTokenizer"]
