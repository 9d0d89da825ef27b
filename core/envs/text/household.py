"""``duetrl/Household-v0``: put a thing where it belongs (outline 3.2.2).

A hall leads to four rooms, each with one piece of furniture (the fridge is in the kitchen,
the shelf in the study: :data:`~duetrl.core.envs.text.vocabulary.FURNITURE_OF_PLACE`). Three
things lie on the floors, at most two to a room; the goal names one (never lying in its home
room) and the furniture it belongs in, following the world facts (the apple belongs in the fridge:
:data:`~duetrl.core.envs.text.vocabulary.HOME_OF_OBJECT`). The agent starts in the hall and
carries one thing at a time.

    goal: put the apple in the fridge
    you are in the study. there is a shelf here. the apple is on the floor. you carry nothing.
      [0] go to the hall   [1] take the apple

Sub-goal (for ``reward="shaped"``): taking the thing the goal names. The oracle needs 5 steps
at most (room, take, hall, room, put).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from duetrl.core.envs.text.base import TextEnv
from duetrl.core.envs.text.vocabulary import (
    FURNITURE_OF_PLACE,
    HOME_OF_OBJECT,
    OBJECTS,
    PLACE_OF_FURNITURE,
    PLACES,
    article,
)

HALL = "hall"
ROOMS = 4
"""Rooms off the hall."""
HAND = "hand"


class HouseholdState(NamedTuple):
    """Where the agent is and where each thing is: a room (its floor), furniture, or hand."""

    location: str
    things: tuple[str, ...]  # aligned with HouseholdEnv.objects; objects[0] is the goal's


class HouseholdEnv(TextEnv):
    """Take the thing the goal names to the furniture it belongs in.

    :param split: words episodes use (``"train"``, ``"heldout"``: the goal's thing is a held-out
        object, ``"all"``).
    :param reward: ``"sparse"``, ``"shaped"`` or ``"shaped_repeating"``.
    :param max_steps: time limit (default 20).
    :param render_mode: None or ``"ansi"``.
    """

    DEFAULT_MAX_STEPS = 20
    WORDS = frozenset(
        "you are in the hall doors lead to and carry nothing there is a here on floor go take "
        "put , .".split() + list(PLACES.all) + list(OBJECTS.all)
        + list(FURNITURE_OF_PLACE.values()))

    def _new_episode(self, rng: np.random.Generator) -> tuple[str, HouseholdState]:
        target = str(rng.choice(OBJECTS.pick(self.split)))
        home = HOME_OF_OBJECT[target]
        others = [p for p in PLACES.rest(self.split) if p != PLACE_OF_FURNITURE[home]]
        rooms = [PLACE_OF_FURNITURE[home], *rng.choice(others, ROOMS - 1, replace=False)]
        self.rooms = tuple(str(rooms[i]) for i in rng.permutation(ROOMS))
        distractors = [o for o in OBJECTS.rest(self.split) if o != target]
        self.objects = (target, *(str(o) for o in rng.choice(distractors, 2, replace=False)))
        # the goal's thing lies away from its home; at most two things to a room
        floors = [str(rng.choice([r for r in self.rooms if r != PLACE_OF_FURNITURE[home]]))]
        for _ in self.objects[1:]:
            floors.append(str(rng.choice([r for r in self.rooms if floors.count(r) < 2])))
        state = HouseholdState(HALL, tuple(floors))
        return f"put the {target} in the {home}", state

    def _room_of(self, where: str) -> str:
        return PLACE_OF_FURNITURE.get(where, where)

    def _commands(self, state: HouseholdState) -> tuple[str, ...]:
        if state.location == HALL:
            return tuple(f"go to the {room}" for room in self.rooms)
        commands = [f"go to the {HALL}"]
        holding = [o for o, where in zip(self.objects, state.things) if where == HAND]
        if holding:
            commands.append(f"put the {holding[0]} in the {FURNITURE_OF_PLACE[state.location]}")
        else:
            commands += [f"take the {o}" for o, where in zip(self.objects, state.things)
                         if self._room_of(where) == state.location]
        return tuple(commands)

    def _next(self, state: HouseholdState,
              command: str) -> tuple[HouseholdState, tuple[str, ...]]:
        parts = command.split()  # go to the X | take the O | put the O in the F
        verb, name, last = parts[0], parts[2], parts[-1]
        if verb == "go":
            return state._replace(location=last), ()
        index = self.objects.index(name)
        where = HAND if verb == "take" else last
        things = state.things[:index] + (where,) + state.things[index + 1:]
        events = ("took the thing",) if verb == "take" and index == 0 else ()
        return state._replace(things=things), events

    def _describe(self, state: HouseholdState) -> str:
        parts = [f"you are in the {state.location}."]
        if state.location == HALL:
            *first, last = (f"the {room}" for room in self.rooms)
            parts.append(f"doors lead to {', '.join(first)} and {last}.")
        else:
            furniture = FURNITURE_OF_PLACE[state.location]
            parts.append(f"there is {article(furniture)} {furniture} here.")
            for name, where in zip(self.objects, state.things):
                if where == furniture:
                    parts.append(f"the {name} is in the {furniture}.")
                elif where == state.location:
                    parts.append(f"the {name} is on the floor.")
        holding = [o for o, where in zip(self.objects, state.things) if where == HAND]
        parts.append(f"you carry the {holding[0]}." if holding else "you carry nothing.")
        return " ".join(parts)

    def _success(self, state: HouseholdState) -> bool:
        return state.things[0] == HOME_OF_OBJECT[self.objects[0]]
