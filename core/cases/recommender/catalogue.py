"""The item catalogue (outline 6.2.1): items in topics, each with a three-word title, a hidden
position in taste space, a hidden quality and a popularity; and the token layout the GPT reads.

    v_i = e_{topic(i)} + 0.3 noise          the item's latent factors (d = number of topics)
    q_i ~ N(0, quality_std^2)               quality: what makes a user click, not what she finds
    log popularity_i ~ N(0, 1)              what the logging policy shows most

A title is (style, topic noun, format), e.g. "quiet jazz podcast": its topic noun tells the
item's topic, nothing tells its quality. Tokens: 0 = <bos>, then the N item tokens, then the
title words. A session of items h_1 .. h_L is read as

    <bos> h_1 h_2 ... h_L                               (titles=False)
    <bos> w_11 w_12 w_13 h_1 w_21 w_22 w_23 h_2 ...     (titles=True: each title, then its item)

and the user state after t items is the hidden state at item h_t's token (position
``t (W + 1)`` with W = 3 title words, or ``t``), at t = 0 the <bos>.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from duetrl.core.interfaces.recommender import ITEM_OFFSET

TOPICS = ("jazz", "space", "cooking", "football", "history", "travel", "chess", "garden")
TOPIC_NOUNS = {
    "jazz": ("jazz", "saxophone", "swing"),
    "space": ("space", "planets", "rockets"),
    "cooking": ("cooking", "bread", "spices"),
    "football": ("football", "goals", "derby"),
    "history": ("history", "empires", "castles"),
    "travel": ("travel", "islands", "trains"),
    "chess": ("chess", "openings", "endgames"),
    "garden": ("garden", "roses", "seeds"),
}
STYLES = ("quiet", "epic", "short", "classic", "wild", "modern", "secret", "golden")
FORMATS = ("podcast", "film", "series", "documentary")
TITLE_WORDS = 3
BOS = 0


@dataclass(frozen=True)
class Catalogue:
    """N items: ``topic`` (N,), ``factors`` (N, d), ``quality`` (N,), ``popularity`` (N,) (log
    scale), ``titles`` (N, 3) word ids, ``words`` the title vocabulary."""

    topic: np.ndarray
    factors: np.ndarray
    quality: np.ndarray
    popularity: np.ndarray
    titles: np.ndarray
    words: tuple[str, ...]

    @property
    def size(self) -> int:
        return len(self.topic)

    @property
    def vocab_size(self) -> int:
        """<bos>, the items, the title words."""
        return ITEM_OFFSET + self.size + len(self.words)

    def title(self, item: int) -> str:
        """The item's title as text, e.g. ``"quiet jazz podcast"``."""
        return " ".join(self.words[w] for w in self.titles[item])

    def tokens_per_item(self, titles: bool) -> int:
        return TITLE_WORDS + 1 if titles else 1

    def block_size(self, history: int, titles: bool) -> int:
        """Tokens of a session of ``history`` items: <bos> and each item's tokens."""
        return 1 + history * self.tokens_per_item(titles)

    def encode(self, sessions: np.ndarray, titles: bool) -> np.ndarray:
        """Token rows (S, 1 + L (W + 1) or 1 + L) of item sessions (S, L)."""
        sessions = np.asarray(sessions)
        items = ITEM_OFFSET + sessions  # (S, L)
        if titles:
            words = ITEM_OFFSET + self.size + self.titles[sessions]  # (S, L, W)
            items = np.concatenate([words, items[..., None]], axis=2).reshape(len(sessions), -1)
        bos = np.full((len(sessions), 1), BOS)
        return np.concatenate([bos, items], axis=1).astype(np.int64)

    def state_positions(self, first: int, last: int, titles: bool) -> np.ndarray:
        """Token positions of the user states after t = first .. last items (inclusive)."""
        return np.arange(first, last + 1) * self.tokens_per_item(titles)


def make_catalogue(
    n_topics: int = 6, items_per_topic: int = 8, quality_std: float = 1.0, seed: int = 0
) -> Catalogue:
    """A catalogue of ``n_topics * items_per_topic`` items, drawn from ``seed``.

    :raises ValueError: ``n_topics`` outside [2, 8] or ``items_per_topic`` < 2.
    """
    if not 2 <= n_topics <= len(TOPICS):
        raise ValueError(f"n_topics: expected an int in [2, {len(TOPICS)}], got {n_topics!r}")
    if items_per_topic < 2:
        raise ValueError(f"items_per_topic: expected an int >= 2, got {items_per_topic!r}")
    rng = np.random.default_rng((seed, 61))
    topic = np.repeat(np.arange(n_topics), items_per_topic)
    n = len(topic)
    factors = np.eye(n_topics)[topic] + 0.3 * rng.normal(size=(n, n_topics))
    quality = quality_std * rng.normal(size=n)
    popularity = rng.normal(size=n)
    nouns = [w for t in TOPICS[:n_topics] for w in TOPIC_NOUNS[t]]
    words = tuple(STYLES) + tuple(nouns) + tuple(FORMATS)
    index = {w: i for i, w in enumerate(words)}
    titles = np.zeros((n, TITLE_WORDS), np.int64)
    for i in range(n):
        noun = TOPIC_NOUNS[TOPICS[topic[i]]][rng.integers(3)]
        titles[i] = (
            index[STYLES[rng.integers(len(STYLES))]],
            index[noun],
            index[FORMATS[rng.integers(len(FORMATS))]],
        )
    return Catalogue(topic, factors, quality, popularity, titles, words)
