"""``duetrl/KeyDoor-v0``: find the key, open the door with it, leave (outline 3.2.2).

A hall leads to three rooms. One room has the exit door, of some colour; another holds the key
of that colour; the third holds a key of another colour. The agent starts in the hall with
empty hands and carries one key at a time. World fact (also in the pretraining corpus): the
red key opens the red door, and no other key does.

    goal: open the red door and leave
    you are in the hall. doors lead to the kitchen, the study and the garage. you carry nothing.
      [0] go to the kitchen   [1] go to the study   [2] go to the garage

Sub-goals (for ``reward="shaped"``): taking the key of the door's colour, opening the door.
The oracle needs 6 steps at most (key room, take, hall, door room, open, leave).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from duetrl.core.envs.text.base import TextEnv
from duetrl.core.envs.text.vocabulary import COLOURS, PLACES

HALL = "hall"
HAND = "hand"


class KeyDoorState(NamedTuple):
    """Where the agent is, where each key is (a place or ``"hand"``), the door, a note."""

    location: str
    keys: tuple[str, ...]  # aligned with KeyDoorEnv.key_colours
    door_open: bool
    left: bool
    note: str  # what the last command revealed ("" mostly)


class KeyDoorEnv(TextEnv):
    """Find the key of the door's colour, open the door, leave.

    :param split: words episodes use (``"train"``, ``"heldout"``: the door's colour is a
        held-out colour, ``"all"``).
    :param reward: ``"sparse"``, ``"shaped"`` or ``"shaped_repeating"``.
    :param max_steps: time limit (default 24).
    :param render_mode: None or ``"ansi"``.
    """

    DEFAULT_MAX_STEPS = 24
    WORDS = frozenset(
        "you are in the hall doors lead to and carry nothing a key lies on floor there is door "
        "here it locked open opens go take drop leave through does not with have no , .".split()
        + list(COLOURS.all) + list(PLACES.all))

    def _new_episode(self, rng: np.random.Generator) -> tuple[str, KeyDoorState]:
        door = str(rng.choice(COLOURS.pick(self.split)))
        other = str(rng.choice([c for c in COLOURS.rest(self.split) if c != door]))
        self.rooms = tuple(str(r) for r in rng.choice(PLACES.rest(self.split), 3, replace=False))
        door_room, key_room, other_room = (self.rooms[i] for i in rng.permutation(3))
        self.door_colour, self.door_room = door, door_room
        self.key_colours = (door, other)
        state = KeyDoorState(HALL, (key_room, other_room), False, False, "")
        return f"open the {door} door and leave", state

    def _holding(self, state: KeyDoorState) -> str | None:
        for colour, where in zip(self.key_colours, state.keys):
            if where == HAND:
                return colour
        return None

    def _commands(self, state: KeyDoorState) -> tuple[str, ...]:
        holding = self._holding(state)
        if state.location == HALL:
            commands = [f"go to the {room}" for room in self.rooms]
        else:
            commands = [f"go to the {HALL}"]
        if holding is None:
            commands += [f"take the {colour} key" for colour, where in
                         zip(self.key_colours, state.keys) if where == state.location]
        else:
            commands.append(f"drop the {holding} key")
        if state.location == self.door_room:
            verb = "leave through" if state.door_open else "open"
            commands.append(f"{verb} the {self.door_colour} door")
        return tuple(commands)

    def _next(self, state: KeyDoorState,
              command: str) -> tuple[KeyDoorState, tuple[str, ...]]:
        state = state._replace(note="")
        verb, *_, noun = command.split()
        if command.startswith("go to the "):
            return state._replace(location=noun), ()
        if verb in ("take", "drop"):
            colour = command.split()[2]
            index = self.key_colours.index(colour)
            where = HAND if verb == "take" else state.location
            keys = state.keys[:index] + (where,) + state.keys[index + 1:]
            events = ("took the key",) if verb == "take" and colour == self.door_colour else ()
            return state._replace(keys=keys), events
        if verb == "open":
            holding = self._holding(state)
            if holding == self.door_colour:
                return state._replace(door_open=True), ("opened the door",)
            note = (f"the {self.door_colour} door does not open with the {holding} key."
                    if holding else "you have no key.")
            return state._replace(note=note), ()
        if command.startswith("leave through"):
            return state._replace(left=True), ()
        raise AssertionError(f"unknown command {command!r}")

    def _describe(self, state: KeyDoorState) -> str:
        if state.left:
            return f"you leave through the {self.door_colour} door."
        parts = [f"you are in the {state.location}."]
        if state.note:
            parts.append(state.note)
        if state.location == HALL:
            *first, last = (f"the {room}" for room in self.rooms)
            parts.append(f"doors lead to {', '.join(first)} and {last}.")
        for colour, where in zip(self.key_colours, state.keys):
            if where == state.location:
                parts.append(f"a {colour} key lies on the floor.")
        if state.location == self.door_room:
            status = "open" if state.door_open else "locked"
            parts.append(f"there is a {self.door_colour} door here, it is {status}.")
        holding = self._holding(state)
        parts.append(f"you carry the {holding} key." if holding else "you carry nothing.")
        return " ".join(parts)

    def _success(self, state: KeyDoorState) -> bool:
        return state.left
