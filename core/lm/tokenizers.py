"""Tokenisers trained on a given text, with no downloads: characters, and a small BPE.

Both map text to int64 ids and back, and serialise to a JSON-friendly dict stored in
checkpoints (``to_dict`` / :func:`tokenizer_from_dict`).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Any

import numpy as np

# GPT-2's pre-tokenisation, simplified: words with their leading space, digit runs,
# punctuation runs, whitespace. Merges never cross these pieces.
_PIECES = re.compile(r" ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+")


class CharTokenizer:
    """One id per character: ``vocab[i]`` is the character with id i.

    :param vocab: the characters, in id order (no duplicates).
    """

    kind = "char"

    def __init__(self, vocab: list[str] | str) -> None:
        vocab = list(vocab)
        if not vocab or len(set(vocab)) != len(vocab):
            raise ValueError(f"vocab: expected distinct characters, got {len(vocab)} entries")
        self.vocab = vocab
        self.index = {c: i for i, c in enumerate(vocab)}

    @classmethod
    def train(cls, text: str) -> CharTokenizer:
        """The sorted set of characters of ``text``."""
        if not text:
            raise ValueError("text: expected a non-empty training text, got ''")
        return cls(sorted(set(text)))

    @classmethod
    def printable(cls) -> CharTokenizer:
        """The 100 printable ASCII characters: one tokeniser for every English corpus here."""
        return cls(list(string.printable))

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> np.ndarray:
        """Token ids ``(len(text),)``; an unknown character is a ValueError naming it."""
        try:
            return np.array([self.index[c] for c in text], dtype=np.int64)
        except KeyError as error:
            raise ValueError(
                f"text: character {error.args[0]!r} is not in the tokeniser's vocabulary of "
                f"{self.vocab_size} characters"
            ) from None

    def decode(self, ids: Any) -> str:
        """The text of token ids ``(T,)``."""
        return "".join(self.vocab[int(i)] for i in np.asarray(ids).reshape(-1))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "vocab": self.vocab}


class BPETokenizer:
    """Byte-pair encoding over characters (Sennrich et al. 2016; GPT-2 uses bytes).

    Training starts from the characters of the text and repeatedly merges the most frequent
    adjacent pair of tokens inside a pre-tokenised piece, until ``vocab_size`` tokens exist.
    Encoding applies the learned merges in the order they were learned.

    :param vocab: token strings in id order.
    :param merges: the learned pairs, first learned first.
    """

    kind = "bpe"

    def __init__(self, vocab: list[str], merges: list[tuple[str, str]]) -> None:
        self.vocab = list(vocab)
        self.merges = [tuple(m) for m in merges]
        self.index = {t: i for i, t in enumerate(self.vocab)}
        self.rank = {pair: r for r, pair in enumerate(self.merges)}
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def train(cls, text: str, vocab_size: int) -> BPETokenizer:
        """Learn merges on ``text`` until the vocabulary has ``vocab_size`` tokens (or no pair
        occurs twice)."""
        if not text:
            raise ValueError("text: expected a non-empty training text, got ''")
        vocab = sorted(set(text))
        if vocab_size < len(vocab):
            raise ValueError(
                f"vocab_size: expected at least the {len(vocab)} distinct characters of the "
                f"text, got {vocab_size}"
            )
        words = {tuple(piece): n for piece, n in Counter(_PIECES.findall(text)).items()}
        merges = []
        while len(vocab) < vocab_size:
            pairs: Counter = Counter()
            for word, n in words.items():
                for pair in zip(word, word[1:]):
                    pairs[pair] += n
            if not pairs:
                break
            best = max(pairs.items(), key=lambda item: (item[1], item[0]))[0]  # ties: fixed
            if pairs[best] < 2:
                break
            merges.append(best)
            vocab.append(best[0] + best[1])
            words = {_merge(word, best): n for word, n in words.items()}
        return cls(vocab, merges)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def _encode_piece(self, piece: str) -> list[int]:
        if piece not in self._cache:
            word = tuple(piece)
            while len(word) > 1:
                pairs = [(self.rank.get(p, len(self.rank)), p) for p in zip(word, word[1:])]
                rank, pair = min(pairs)
                if rank == len(self.rank):
                    break
                word = _merge(word, pair)
            try:
                self._cache[piece] = [self.index[t] for t in word]
            except KeyError as error:
                raise ValueError(
                    f"text: character {error.args[0]!r} is not in the tokeniser's vocabulary"
                ) from None
        return self._cache[piece]

    def encode(self, text: str) -> np.ndarray:
        """Token ids of ``text``; an unknown character is a ValueError naming it."""
        ids = [i for piece in _PIECES.findall(text) for i in self._encode_piece(piece)]
        return np.array(ids, dtype=np.int64)

    def decode(self, ids: Any) -> str:
        """The text of token ids ``(T,)``."""
        return "".join(self.vocab[int(i)] for i in np.asarray(ids).reshape(-1))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "vocab": self.vocab, "merges": [list(m) for m in self.merges]}


def _merge(word: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    """``word`` with every adjacent occurrence of ``pair`` joined into one token."""
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            out.append(word[i] + word[i + 1])
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


Tokenizer = CharTokenizer | BPETokenizer


def tokenizer_from_dict(values: dict[str, Any]) -> Tokenizer:
    """Rebuild a tokeniser from its ``to_dict()``."""
    kind = values.get("kind")
    if kind == "char":
        return CharTokenizer(values["vocab"])
    if kind == "bpe":
        return BPETokenizer(values["vocab"], [tuple(m) for m in values["merges"]])
    raise ValueError(f"tokenizer: expected kind 'char' or 'bpe', got {kind!r}")
