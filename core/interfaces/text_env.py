"""Text environments (outline 3.2.2): the contract between a world described in words and an
agent that reads it (a language model acting as the policy, outline 3.2.3).

An observation is a dict of three entries:

===============  ==========================  ================================================
Key              Type                        Description
===============  ==========================  ================================================
goal             str                         what to achieve, in words: "open the door and
                                             leave the room"
text             str                         what the agent perceives now: "you are in the
                                             hall. a red key lies on the floor."
admissible       tuple[str, ...]             the commands that make sense now, in words, 1 to
                                             ``MAX_ADMISSIBLE`` of them: ("take the red key",
                                             "go north", ...); the list changes with the state
===============  ==========================  ================================================

The action is an index into ``admissible`` (``Discrete(MAX_ADMISSIBLE)``); an index outside the
current list is refused with a ValueError naming it and the list (:func:`check_action`). At the
end of an episode ``info["success"]`` says whether the goal was reached. Text is lower case
words separated by single spaces, with "." and "," as their own words (:func:`words`), so a
word-level tokeniser built from the environments' :func:`vocabulary` covers every text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

MAX_ADMISSIBLE = 16
"""The most commands one observation offers (the size of the action space)."""

MAX_TEXT_LENGTH = 512
"""The longest goal or observation, in characters (Gymnasium's ``Text`` space needs one)."""

OBSERVATION_KEYS = ("goal", "text", "admissible")

_WORD = re.compile(r"[a-z0-9_']+|[.,]")


def words(text: str) -> list[str]:
    """The words of ``text``: lower case runs of letters and digits, "." and "," on their own."""
    return _WORD.findall(text.lower())


def prompt(observation: Mapping[str, Any]) -> str:
    """The text an LM policy conditions on: the goal, then what it perceives, then "action :".

        goal : open the door and leave . you are in the hall . ... action :
    """
    check_observation(observation)
    return " ".join(["goal", ":", *words(observation["goal"]), ".", *words(observation["text"]),
                     "action", ":"])


def check_observation(observation: Mapping[str, Any]) -> None:
    """Raise ValueError unless ``observation`` has the three entries with 1..MAX_ADMISSIBLE
    commands."""
    if not isinstance(observation, Mapping) or set(observation) != set(OBSERVATION_KEYS):
        got = sorted(observation) if isinstance(observation, Mapping) else type(observation)
        raise ValueError(f"observation: expected a dict with keys {list(OBSERVATION_KEYS)}, "
                         f"got {got}")
    admissible = observation["admissible"]
    if isinstance(admissible, str) or not isinstance(admissible, Sequence) or not admissible:
        raise ValueError(f"admissible: expected 1 to {MAX_ADMISSIBLE} commands in words, "
                         f"got {admissible!r}")
    if len(admissible) > MAX_ADMISSIBLE:
        raise ValueError(f"admissible: expected at most {MAX_ADMISSIBLE} commands, "
                         f"got {len(admissible)}")


def check_action(action: Any, admissible: Sequence[str]) -> int:
    """The action as an int index into ``admissible``; ValueError naming it and the list."""
    if isinstance(action, bool) or not isinstance(action, int) and not (
            hasattr(action, "dtype") and getattr(action, "shape", None) == ()
            and str(action.dtype).startswith(("int", "uint"))):
        raise ValueError(f"action: expected an int index into the admissible commands "
                         f"{list(admissible)}, got {action!r}")
    index = int(action)
    if not 0 <= index < len(admissible):
        raise ValueError(f"action: expected an index in [0, {len(admissible)}) into the "
                         f"admissible commands {list(admissible)}, got {index}")
    return index
