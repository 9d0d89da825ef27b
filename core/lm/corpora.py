"""Corpora made in code, or shipped with Python: nothing is fetched at run time.

- ``markov``: text from a random first-order Markov chain whose entropy rate is known, so a
  learning test can say how close to the best possible loss a model came.
- ``templates``: short English sentences from templates.
- ``digits``: additions written out, ``"123+45=168"``, one per line.
- ``pydoc``: the English help texts of Python's own documentation (``pydoc_data.topics``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

MARKOV_ALPHABET = "abcdefghijklmnopqrstuvwxyz"


@dataclass
class MarkovChain:
    """A first-order Markov chain over ``num_states`` symbols.

    entropy rate  H = -sum_i pi_i sum_j P_ij log P_ij   (nats per symbol)

    with ``P`` the transition matrix and ``pi`` its stationary distribution (pi P = pi): the
    lowest expected next-token loss any model can reach once it has seen one symbol of context.
    """

    transitions: np.ndarray  # (S, S), rows sum to 1

    @classmethod
    def random(cls, num_states: int = 8, concentration: float = 0.3, seed: int = 0) -> MarkovChain:
        """Rows drawn from Dirichlet(concentration): small values give peaked, low-entropy rows."""
        if not 2 <= num_states <= len(MARKOV_ALPHABET):
            raise ValueError(f"num_states: expected 2..{len(MARKOV_ALPHABET)}, got {num_states!r}")
        rng = np.random.default_rng(seed)
        return cls(rng.dirichlet(np.full(num_states, concentration), size=num_states))

    @property
    def stationary(self) -> np.ndarray:
        """pi with pi P = pi: the left eigenvector of P for eigenvalue 1, normalised."""
        values, vectors = np.linalg.eig(self.transitions.T)
        pi = np.real(vectors[:, np.argmin(np.abs(values - 1.0))])
        return pi / pi.sum()

    @property
    def entropy_rate(self) -> float:
        """H = -sum_i pi_i sum_j P_ij log P_ij, in nats."""
        p = self.transitions
        row_entropy = -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=1)
        return float(self.stationary @ row_entropy)

    def sample(self, length: int, seed: int = 0) -> np.ndarray:
        """A path of ``length`` states, starting from the stationary distribution."""
        rng = np.random.default_rng(seed)
        cumulative = np.cumsum(self.transitions, axis=1)
        states = np.empty(length, dtype=np.int64)
        states[0] = rng.choice(len(self.transitions), p=self.stationary)
        uniforms = rng.uniform(size=length)
        for t in range(1, length):
            row = cumulative[states[t - 1]]
            states[t] = min(int(np.searchsorted(row, uniforms[t])), len(row) - 1)
        return states

    def text(self, length: int, seed: int = 0) -> str:
        """:meth:`sample` written with the letters a, b, c, ..."""
        return "".join(MARKOV_ALPHABET[s] for s in self.sample(length, seed))


_SUBJECTS = ["the cat", "a dog", "the old man", "my sister", "the teacher", "a small bird"]
_VERBS = ["sees", "likes", "follows", "paints", "finds", "helps"]
_OBJECTS = ["the river", "a red ball", "the garden", "her friend", "the moon", "a green tree"]
_ENDINGS = [".", " today.", " again.", " every day.", " in the morning."]


def template_text(num_sentences: int = 2000, seed: int = 0) -> str:
    """Sentences ``subject verb object ending``, one per line."""
    rng = np.random.default_rng(seed)
    parts = (_SUBJECTS, _VERBS, _OBJECTS, _ENDINGS)
    lines = []
    for _ in range(num_sentences):
        s, v, o, e = (p[rng.integers(len(p))] for p in parts)
        lines.append(f"{s} {v} {o}{e}")
    return "\n".join(lines) + "\n"


def digits_text(num_lines: int = 2000, max_value: int = 999, seed: int = 0) -> str:
    """Additions ``a+b=c``, one per line, with a, b uniform in [0, max_value]."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, max_value + 1, size=(2, num_lines))
    return "".join(f"{x}+{y}={x + y}\n" for x, y in zip(a, b))


def pydoc_text(max_chars: int | None = None) -> str:
    """English prose shipped with CPython: the help topics of ``pydoc_data.topics``,
    restricted to printable ASCII."""
    import string
    from pydoc_data.topics import topics

    text = "\n".join(topics[key] for key in sorted(topics))
    allowed = set(string.printable)
    text = "".join(c for c in text if c in allowed)
    return text if max_chars is None else text[:max_chars]


CORPORA = ("markov", "templates", "digits", "pydoc")


def load_corpus(name: str, num_chars: int = 200_000, seed: int = 0) -> str:
    """The text of corpus ``name`` (one of :data:`CORPORA`), about ``num_chars`` long."""
    if name == "markov":
        return MarkovChain.random(seed=seed).text(num_chars, seed=seed + 1)
    if name == "templates":
        return template_text(max(1, num_chars // 30), seed)[:num_chars]
    if name == "digits":
        return digits_text(max(1, num_chars // 11), seed=seed)[:num_chars]
    if name == "pydoc":
        return pydoc_text(num_chars)
    raise ValueError(f"corpus: expected one of {list(CORPORA)}, got {name!r}")


def corpus_text(name: str, num_chars: int, seed: int) -> str:
    """A named corpus (:data:`CORPORA`) or the first ``num_chars`` characters of a text file
    (``duetrl lm train --corpus``, ``duetrl lm mlm --corpus``)."""
    if name in CORPORA:
        return load_corpus(name, num_chars, seed)
    path = Path(name)
    if not path.is_file():
        raise FileNotFoundError(
            f"--corpus: expected one of {list(CORPORA)} or a text file, got {name!r}"
        )
    return path.read_text(encoding="utf-8")[:num_chars]
