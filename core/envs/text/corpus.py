"""True sentences about the text worlds, made in code, to pretrain a language-model policy
(outline 3.2.3, 9.3.2).

Every sentence states a fact the environments obey: which key opens which door, where each
thing belongs and which room holds which furniture, where the holes of the 4x4 frozen lake
are. The held-out words are covered too: they are seen here, in pretraining, and never in RL
training with ``split="train"``, which is what the generalisation test of 9.3.2 needs.
"""

from __future__ import annotations

import numpy as np
from gymnasium.envs.toy_text.frozen_lake import MAPS

from duetrl.core.envs.text.vocabulary import (
    COLOURS,
    FURNITURE_OF_PLACE,
    HOME_OF_OBJECT,
    PLACES,
    article,
)
from duetrl.core.interfaces.text_env import words


def world_facts() -> tuple[str, ...]:
    """Every true sentence the corpus draws from, in a fixed order (no duplicates)."""
    facts = []
    for colour in COLOURS.all:
        facts.append(f"the {colour} key opens the {colour} door.")
        facts.append(f"to open the {colour} door , take the {colour} key.")
        for other in COLOURS.all:
            if other != colour:
                facts.append(f"the {other} key does not open the {colour} door.")
    facts.append("you leave through an open door.")
    facts.append("you carry one thing at a time.")
    for place in PLACES.all:
        furniture = FURNITURE_OF_PLACE[place]
        facts.append(f"the {furniture} is in the {place}.")
        facts.append(f"there is {article(furniture)} {furniture} in the {place}.")
        facts.append(f"the hall leads to the {place}.")
    for name, furniture in HOME_OF_OBJECT.items():
        place = next(p for p, f in FURNITURE_OF_PLACE.items() if f == furniture)
        facts.append(f"the {name} belongs in the {furniture}.")
        facts.append(f"put the {name} in the {furniture}.")
        facts.append(f"to put the {name} away , go to the {place}.")
    lake = MAPS["4x4"]
    names = {"S": "ice", "F": "ice", "H": "a hole", "G": "the goal"}
    for row, line in enumerate(lake):
        for column, cell in enumerate(line):
            facts.append(f"row {row + 1} column {column + 1} is {names[cell]}.")
            if cell == "H":
                facts.append(f"there is a hole at row {row + 1} column {column + 1}.")
    facts.append("a hole ends the walk.")
    facts.append("walking into the edge , you stay where you are.")
    return tuple(facts)


def world_sentences(seed: int, n: int) -> list[str]:
    """``n`` true sentences about the worlds, drawn with replacement from :func:`world_facts`
    (every fact once first, in a seeded order, when ``n`` allows).

    :param seed: seeds the draw (same seed, same sentences).
    :param n: how many sentences (>= 0).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n: expected an int >= 0, got {n!r}")
    facts = world_facts()
    rng = np.random.default_rng(seed)
    first = [facts[i] for i in rng.permutation(len(facts))][:n]
    more = [facts[i] for i in rng.integers(len(facts), size=n - len(first))]
    return first + more


def corpus_vocabulary() -> tuple[str, ...]:
    """Every word of the corpus, sorted."""
    return tuple(sorted({word for fact in world_facts() for word in words(fact)}))
