"""Text environments (outline 3.2.2): worlds described in words, commands chosen in words
(the contract: core/interfaces/text_env.py).

=============================  ====================================================
Id                             World
=============================  ====================================================
``duetrl/KeyDoor-v0``          find the key, open the door with it, leave
``duetrl/Household-v0``        put a thing where it belongs
``duetrl/TextFrozenLake-v0``   Gymnasium's FrozenLake, in words
=============================  ====================================================

Each takes ``split`` (which words episodes use), ``reward`` (sparse or shaped) and
``max_steps``; each has ``oracle_action()`` and ``vocabulary()``. :func:`world_sentences`
makes the pretraining corpus of true sentences about these worlds; :func:`world_vocabulary`
is every word of the worlds and the corpus, for a word-level tokeniser.
"""

from __future__ import annotations

from duetrl.core.envs.text.base import REWARDS, SHAPING_BONUS, TextEnv, show, text_words
from duetrl.core.envs.text.corpus import corpus_vocabulary, world_facts, world_sentences
from duetrl.core.envs.text.frozenlake import TextFrozenLakeEnv
from duetrl.core.envs.text.household import HouseholdEnv
from duetrl.core.envs.text.keydoor import KeyDoorEnv
from duetrl.core.envs.text.vocabulary import SPLITS

TEXT_ENVS: dict[str, type[TextEnv]] = {
    "duetrl/KeyDoor-v0": KeyDoorEnv,
    "duetrl/Household-v0": HouseholdEnv,
    "duetrl/TextFrozenLake-v0": TextFrozenLakeEnv,
}
"""The registered text environments, by id."""


def world_vocabulary() -> tuple[str, ...]:
    """Every word of every text world and of the corpus, sorted."""
    found = set(corpus_vocabulary())
    for env_class in TEXT_ENVS.values():
        found |= set(env_class.vocabulary())
    return tuple(sorted(found))


__all__ = ["REWARDS", "SHAPING_BONUS", "SPLITS", "TEXT_ENVS", "HouseholdEnv", "KeyDoorEnv",
           "TextEnv", "TextFrozenLakeEnv", "corpus_vocabulary", "show", "text_words",
           "world_facts", "world_sentences", "world_vocabulary"]
