"""The words of the text worlds, each list split into ``train`` and ``heldout`` words, and the
fixed facts that tie them together (where each thing belongs, which room holds which piece of
furniture).

Held-out words are for the generalisation test of outline 9.3.2: they appear in the pretraining
corpus (:func:`duetrl.core.envs.text.corpus.world_sentences`) but never in an RL episode made
with ``split="train"``. An environment's ``split`` picks the words its episodes use:

==========  ===================================================================================
split       words an episode uses
==========  ===================================================================================
train       only ``train`` words
heldout     the words the goal turns on (the door's colour, the object to put away) are
            ``heldout`` words; the rest (rooms, distractors) come from all words
all         any word, ``train`` or ``heldout``
==========  ===================================================================================
"""

from __future__ import annotations

from typing import NamedTuple

SPLITS = ("train", "heldout", "all")
"""The values of an environment's ``split`` argument."""


class Words(NamedTuple):
    """One list of words, split in two: ``train`` words and ``heldout`` words."""

    train: tuple[str, ...]
    heldout: tuple[str, ...]

    @property
    def all(self) -> tuple[str, ...]:
        """Every word, train words first."""
        return self.train + self.heldout

    def pick(self, split: str) -> tuple[str, ...]:
        """The words an episode of ``split`` may use for something the goal turns on."""
        split = check_split(split)
        return {"train": self.train, "heldout": self.heldout, "all": self.all}[split]

    def rest(self, split: str) -> tuple[str, ...]:
        """The words an episode of ``split`` may use for everything else (rooms, distractors)."""
        return self.train if check_split(split) == "train" else self.all


COLOURS = Words(train=("red", "blue", "green", "yellow"), heldout=("purple", "orange"))
"""Colours of keys and doors (KeyDoor)."""

PLACES = Words(train=("kitchen", "bathroom", "bedroom", "study"), heldout=("garage", "cellar"))
"""Rooms off the hall (KeyDoor, Household); the hall itself is in every house."""

OBJECTS = Words(train=("apple", "milk", "towel", "soap", "shirt", "book"),
                heldout=("cheese", "sock", "hammer", "wine"))
"""Things to put away (Household)."""

FURNITURE_OF_PLACE = {"kitchen": "fridge", "bathroom": "cabinet", "bedroom": "wardrobe",
                      "study": "shelf", "garage": "toolbox", "cellar": "rack"}
"""World fact: the one piece of furniture each room holds ("the fridge is in the kitchen")."""

HOME_OF_OBJECT = {"apple": "fridge", "milk": "fridge", "towel": "cabinet", "soap": "cabinet",
                  "shirt": "wardrobe", "book": "shelf", "cheese": "fridge", "sock": "wardrobe",
                  "hammer": "toolbox", "wine": "rack"}
"""World fact: where each thing belongs ("the apple belongs in the fridge")."""

PLACE_OF_FURNITURE = {furniture: place for place, furniture in FURNITURE_OF_PLACE.items()}


def article(word: str) -> str:
    """The indefinite article English puts before ``word``: "an" before a vowel sound, which for
    every word of these worlds is a first letter a, e, i, o or u ("an orange key", "an apple"),
    else "a" ("a red key", "a fridge"). Every text world and the pretraining corpus say "a"/"an"
    through this one function, so the LM reads in pretraining exactly what RL shows it.

    :param word: the word that follows (a colour, a thing), lower case.
    """
    if not isinstance(word, str) or not word:
        raise ValueError(f"word: expected a non-empty string, got {word!r}")
    return "an" if word[0] in "aeiou" else "a"


def check_split(split: object) -> str:
    """``split`` if it is one of :data:`SPLITS`, else a ValueError naming it."""
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {list(SPLITS)}, got {split!r}")
    return str(split)


def _check_facts() -> None:
    # a train object must belong in a train room, or split="train" could not place it
    for name in OBJECTS.train:
        assert PLACE_OF_FURNITURE[HOME_OF_OBJECT[name]] in PLACES.train, name
    assert set(HOME_OF_OBJECT) == set(OBJECTS.all)
    assert set(FURNITURE_OF_PLACE) == set(PLACES.all)
    # Household says "there is a fridge here" and its WORDS have no "an": keep it true
    assert all(article(f) == "a" for f in FURNITURE_OF_PLACE.values())


_check_facts()
