"""The user simulator (outline 6.2.1): users with hidden tastes, the sessions they make on their
own, and the clicks they give to what they are shown.

    u = e_{g1} + 0.5 e_{g2} + 0.2 noise            a user: a favourite topic g1, a second g2
    p(u, i) = sigmoid(3 u.v_i + q_i - 2.5)         the chance she clicks item i when shown it
    P(she picks i herself) ~ exp(2 u.v_i + 0.7 log popularity_i)

Her own picks (the session history) follow her topics and what is popular, not quality: a
model that imitates them (supervised next-item prediction) learns the topics, but only the
clicks on recommended items reveal which items of a topic are good. Each user likes the items
of one or two topics, several of them well: the top-K regime of the paper, where a slate of K
items can hold several good ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from duetrl.core.cases.recommender.catalogue import Catalogue


@dataclass(frozen=True)
class Simulator:
    """The hidden rules of the users of ``catalogue`` (the constants of the module docstring)."""

    catalogue: Catalogue
    affinity_scale: float = 3.0
    click_bias: float = -2.5
    second_topic: float = 0.5
    taste_scale: float = 2.0
    popularity_pull: float = 0.7

    def users(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Latent tastes (n, d) of ``n`` new users."""
        d = self.catalogue.factors.shape[1]
        first = rng.integers(d, size=n)
        second = (first + rng.integers(1, d, size=n)) % d  # another topic
        eye = np.eye(d)
        return eye[first] + self.second_topic * eye[second] + 0.2 * rng.normal(size=(n, d))

    def click_probs(self, users: np.ndarray) -> np.ndarray:
        """p(u, i) (n, N) = sigmoid(3 u.v_i + q_i - 2.5): the true reward of showing item i."""
        c = self.catalogue
        logits = self.affinity_scale * users @ c.factors.T + c.quality + self.click_bias
        return 1.0 / (1.0 + np.exp(-logits))

    def sessions(self, users: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
        """Item ids (n, length) each user picks herself, no item twice, in random order:
        a Plackett-Luce draw (Gumbel top-``length``) from exp(2 u.v_i + 0.7 popularity_i)."""
        c = self.catalogue
        if not 1 <= length <= c.size:
            raise ValueError(f"length: expected an int in [1, {c.size}], got {length!r}")
        scores = self.taste_scale * users @ c.factors.T + self.popularity_pull * c.popularity
        picked = np.argsort(-(scores + rng.gumbel(size=scores.shape)), axis=1)[:, :length]
        order = np.argsort(rng.random(picked.shape), axis=1)  # forget the preference order
        return np.take_along_axis(picked, order, axis=1)

    def clicks(self, users: np.ndarray, items: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Rewards r ~ Bernoulli(p(u, a)) (n, E) of showing ``items`` (n, E) to ``users``."""
        p = np.take_along_axis(self.click_probs(users), np.asarray(items), axis=1)
        return (rng.random(p.shape) < p).astype(np.float64)
