"""A dialogue corpus made in code, with the flaw of real chat logs (outline 6.1.1).

Five topics (food, music, travel, sports, weather), three questions each, two specific
answers per question. A dialogue is a chain of turns drawn from a small Markov chain:

    after a question         a dull reply with p = 0.4, else one of its two specific answers
    after a specific answer  "what about you" (0.3), another question on the topic (0.6),
                             a dull reply (0.1)
    after "what about you"   a specific answer to the question that was being discussed
    after a dull reply       another dull reply (0.5), else a question on a new topic

The dull replies (``DULL_REPLIES``: "i don't know", "i'm not sure", "i have no idea") are
the realistic flaw (Li et al. 2016, section 1): together they follow 40% of the questions,
while each specific answer follows only 30% of them, so the first word "i" is the most
likely one after any question and a maximum-likelihood chatbot decoding greedily answers
"i don't know" -- and after a dull reply the corpus itself goes on dully half of the time,
so greedy self-play stalls.

Rows for the GPT: a turn occupies a slot of ``SLOT`` tokens, its words left-padded and closed
by <sep>; the context is two slots (the turn before last, p, and the last turn, q), the reply
follows with its words and <sep>, right-padded:

    [pad .. p <sep>][pad .. q <sep>][a <sep> pad ..]        block_size = 3 SLOT
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

MAX_WORDS = 7
"""Words per turn at most."""
SLOT = MAX_WORDS + 1
"""Tokens per turn: the words, left-padded, and <sep>."""
CONTEXT = 2 * SLOT
"""Context tokens: the turn before last (p) and the last turn (q)."""
SPECIALS = ("<pad>", "<sep>")

TOPICS: dict[str, dict[str, tuple[str, str]]] = {
    "food": {
        "what do you like to eat": ("pasta with tomato sauce", "fresh fish and rice"),
        "do you cook at home": ("yes every evening", "only on weekends"),
        "what did you have for lunch": ("a salad with eggs", "rice and beans"),
    },
    "music": {
        "what music do you listen to": ("mostly jazz and blues", "old rock songs"),
        "do you play an instrument": ("yes the guitar", "a little piano"),
        "have you been to a concert lately": ("yes a jazz band last week", "not since the summer"),
    },
    "travel": {
        "where did you go on holiday": ("to the mountains in the north",
                                        "a small island by the sea"),
        "do you like to travel": ("yes trains most of all", "only to warm places"),
        "where would you like to go next": ("somewhere by the sea", "the old cities of the south"),
    },
    "sports": {
        "do you play any sport": ("football on sundays", "tennis with friends"),
        "who won the game last night": ("the home team by two goals", "it was a draw"),
        "how often do you go running": ("three times a week", "every morning before work"),
    },
    "weather": {
        "how is the weather today": ("sunny and warm", "cold with some rain"),
        "do you like the rain": ("yes it is calm", "not when it is cold"),
        "will it snow this week": ("maybe on friday", "the news says no"),
    },
}

DULL_REPLIES = ("i don't know", "i'm not sure", "i have no idea")
"""The generic replies: frequent in the corpus, and the list S of the ease-of-answering reward."""
WHAT_ABOUT_YOU = "what about you"

P_DULL_AFTER_QUESTION = 0.4
P_DULL_AFTER_DULL = 0.5
P_FOLLOW = (0.3, 0.6, 0.1)  # after an answer: what about you, another question, dull

Turn = tuple[str, ...]


def _words(text: str) -> Turn:
    return tuple(text.split())


def all_words() -> list[str]:
    """Every corpus word, sorted (the vocabulary after the specials)."""
    texts = [*DULL_REPLIES, WHAT_ABOUT_YOU]
    for questions in TOPICS.values():
        for question, answers in questions.items():
            texts += [question, *answers]
    return sorted({w for t in texts for w in t.split()})


def is_dull(turn: Sequence[str]) -> bool:
    """True when ``turn`` is one of ``DULL_REPLIES``."""
    return " ".join(turn) in DULL_REPLIES


def dialogue(rng: np.random.Generator, turns: int) -> list[Turn]:
    """One dialogue of ``turns`` turns drawn from the chain of the module docstring."""
    topics = list(TOPICS)
    topic = topics[rng.integers(len(topics))]
    question = list(TOPICS[topic])[rng.integers(3)]
    out, kind = [_words(question)], "question"
    while len(out) < turns:
        if kind in ("question", "about"):
            if kind == "question" and rng.random() < P_DULL_AFTER_QUESTION:
                out.append(_words(DULL_REPLIES[rng.integers(3)]))
                kind = "dull"
            else:
                out.append(_words(TOPICS[topic][question][rng.integers(2)]))
                kind = "answer"
        elif kind == "answer":
            choice = rng.choice(3, p=P_FOLLOW)
            if choice == 0:
                out.append(_words(WHAT_ABOUT_YOU))
                kind = "about"
            elif choice == 1:
                question = list(TOPICS[topic])[rng.integers(3)]
                out.append(_words(question))
                kind = "question"
            else:
                out.append(_words(DULL_REPLIES[rng.integers(3)]))
                kind = "dull"
        else:  # after a dull reply: more of the same, or a fresh topic
            if rng.random() < P_DULL_AFTER_DULL:
                out.append(_words(DULL_REPLIES[rng.integers(3)]))
            else:
                topic = topics[rng.integers(len(topics))]
                question = list(TOPICS[topic])[rng.integers(3)]
                out.append(_words(question))
                kind = "question"
    return out


def make_dialogues(count: int, seed: int, turns: int = 6) -> list[list[Turn]]:
    """``count`` dialogues of ``turns`` turns, a function of ``seed`` only."""
    rng = np.random.default_rng((seed, 61))
    return [dialogue(rng, turns) for _ in range(count)]


def is_question(turn: Sequence[str]) -> bool:
    """True when ``turn`` is one of the topics' questions ("what about you" is not one)."""
    return any(" ".join(turn) in questions for questions in TOPICS.values())


def openings(dialogues: Sequence[Sequence[Turn]], seed: int = 0) -> list[tuple[Turn, Turn]]:
    """Where simulated conversations start, one per dialogue: a question q and the turn p
    before it (empty when q opens the dialogue; never a dull one), drawn from ``seed``. The
    paper starts from a real message; a question is where the MLE chatbot goes dull."""
    rng = np.random.default_rng((seed, 71))
    out = []
    for d in dialogues:
        places = [k for k in range(len(d)) if is_question(d[k]) and not (k and is_dull(d[k - 1]))]
        k = places[rng.integers(len(places))]  # d[0] is a question: never empty
        out.append((d[k - 1] if k else (), d[k]))
    return out


Example = tuple[Turn, Turn, Turn]
"""(p, q, a): the turn before last, the last turn, the reply."""


def examples(dialogues: Sequence[Sequence[Turn]]) -> list[Example]:
    """Every (p, q, a) of the dialogues (p is empty for the reply to the opening turn)."""
    out = []
    for d in dialogues:
        for k in range(1, len(d)):
            out.append((d[k - 2] if k >= 2 else (), d[k - 1], d[k]))
    return out


def backward_examples(pairs: Sequence[Example]) -> list[Example]:
    """The backward model's examples: (empty, a, q), it learns p(q | a)."""
    return [((), a, q) for _, q, a in pairs]


@dataclass(frozen=True)
class Vocabulary:
    """One token per word: ``<pad>``, ``<sep>``, then the corpus words."""

    @cached_property
    def words(self) -> list[str]:
        return [*SPECIALS, *all_words()]

    @cached_property
    def ids(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.words)}

    @property
    def pad(self) -> int:
        return 0

    @property
    def sep(self) -> int:
        return 1

    @property
    def size(self) -> int:
        return len(self.words)

    @property
    def block_size(self) -> int:
        return 3 * SLOT

    def check_turn(self, turn: Sequence[str] | str, name: str = "turn",
                   allow_empty: bool = False) -> Turn:
        """``turn`` (a string split on spaces, or words) as a tuple, checked: not empty (unless
        ``allow_empty``), at most ``MAX_WORDS`` words, every word in the vocabulary.

        :raises ValueError: naming ``name``, what was expected and what was given.
        """
        words = tuple(turn.split()) if isinstance(turn, str) else tuple(turn)
        if not words and not allow_empty:
            raise ValueError(f"{name}: expected a turn of 1 to {MAX_WORDS} words, got an empty one")
        if len(words) > MAX_WORDS:
            raise ValueError(f"{name}: expected at most {MAX_WORDS} words, got {len(words)}: "
                             f"{' '.join(words)!r}")
        unknown = [w for w in words if w not in self.ids or w in SPECIALS]
        if unknown:
            raise ValueError(f"{name}: expected words of the corpus vocabulary ({self.size - 2} "
                             f"words, e.g. {', '.join(self.words[2:6])}), got {unknown[:5]} in "
                             f"{' '.join(words)!r}")
        return words

    def slot(self, turn: Sequence[str]) -> np.ndarray:
        """``(SLOT,)`` the turn's words left-padded, then <sep> (an empty turn: only <sep>)."""
        row = np.full(SLOT, self.pad, np.int64)
        row[MAX_WORDS - len(turn): MAX_WORDS] = [self.ids[w] for w in turn]
        row[MAX_WORDS] = self.sep
        return row

    def prompt(self, p: Sequence[str], q: Sequence[str]) -> np.ndarray:
        """``(CONTEXT,)`` the two context slots: where the reply starts."""
        return np.concatenate([self.slot(p), self.slot(q)])

    def rows(self, triples: Sequence[Example]) -> tuple[np.ndarray, np.ndarray]:
        """Token rows ``(N, block_size)`` of (p, q, a) and their weights ``(N, block_size - 1)``:
        1 where the next token is a reply word or the reply's <sep> (the loss on the reply
        only), 0 on the context and the padding."""
        tokens = np.full((len(triples), self.block_size), self.pad, np.int64)
        weights = np.zeros((len(triples), self.block_size - 1))
        for i, (p, q, a) in enumerate(triples):
            tokens[i, :CONTEXT] = self.prompt(p, q)
            ids = [self.ids[w] for w in a] + [self.sep]
            tokens[i, CONTEXT: CONTEXT + len(ids)] = ids
            weights[i, CONTEXT - 1: CONTEXT - 1 + len(ids)] = 1.0  # column t predicts t + 1
        return tokens, weights

    def replies(self, new_tokens: np.ndarray) -> tuple[list[Turn], np.ndarray]:
        """Generated tokens ``(B, SLOT)`` -> (each reply's words before its first <sep>, at most
        ``MAX_WORDS``; the mask ``(B, SLOT)`` of the reply's tokens up to and including <sep>)."""
        new_tokens = np.asarray(new_tokens)
        is_sep = new_tokens == self.sep
        after = np.cumsum(is_sep, axis=1) - is_sep > 0  # strictly after the first <sep>
        mask = (~after).astype(np.float64)
        turns = []
        for row, keep in zip(new_tokens, mask):
            turns.append(tuple(self.words[t] for t in row[keep > 0] if t != self.sep)[:MAX_WORDS])
        return turns, mask
