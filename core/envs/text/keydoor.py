"""``duetrl/KeyDoor-v0``: find the key, open the door with it, leave (outline 3.2.2).

A hall leads to three rooms. One room has the exit door, of some colour; another holds the key
of that colour; the third holds a key of another colour. The agent starts in the hall with
empty hands and carries one key at a time. World fact (also in the pretraining corpus): the
red key opens the red door, and no other key does.

    goal: open the red door and leave
    you are in the hall. doors lead to the kitchen, the study and the garage. you carry nothing.
      [0] go to the kitchen   [1] go to the study   [2] go to the garage

The hall remembers (outline 3.2.2-3.2.3: partial observability, in words). Once a room has
been searched, the hall's text says what it holds, as the agent last saw it, and which rooms
are not searched yet; and the command that enters a searched room says so, naming the door
for the door's room (the way a player names a place seen before):

    you are in the hall. the kitchen has a blue key. the study has the red door. you have not
    searched the garage. you carry nothing.
      [0] go back to the kitchen   [1] go back to the red door   [2] go to the garage

(a room whose key was taken "is empty"). Why the environment says it, and not the agent's
prompt: without it the hall reads the same before and after a room was searched, so any
policy of the current text alone (the LM policy's prompt is the goal and this text; the MLP's
input is its bag of words) must choose the same room every time it stands there, and a greedy
one circles for ever. Two ways out: a prompt that carries the episode so far (every policy then
needs a memory, and the prompt grows with the episode, the GPT's cost with it: each state's
prompt is read once per command), or a text that is a Markov state. Text games do the second
(the player's notes, a map), and so do we: a memoryless policy can then be optimal, and the
longest prompt stays under 64 tokens (once a room is searched, the notes replace the 12-token
list of doors). Why the commands change too: a 2-layer, 32-wide GPT scores "go to the X" by
the probability of X, and learning which room name the notes make right (a room that "has the
red door", when the goal's door is red and the red key is in hand) is a binding of a name to a
sentence that such a model did not learn, neither from 1200 pretraining steps on such hall
facts nor from 40 PPO updates (measured: probability 0.33 for each of three rooms); "go back
to the red door" against "go to the garage" differs in words the state decides directly
(what is in hand, what the goal's colour is). Only the hall has notes: in a room what it holds
is in sight, so the rooms' texts, and with them the pretraining corpus's prompt-format facts
(core/agents/pretrain.py), are unchanged.

Sub-goals (for ``reward="shaped"``): taking the key of the door's colour, opening the door.
The oracle needs 6 steps at most (key room, take, hall, door room, open, leave); the greedy
searcher that opens the rooms in order, 10 (all three rooms, then back to the door).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from duetrl.core.envs.text.base import TextEnv
from duetrl.core.envs.text.vocabulary import COLOURS, PLACES, article

HALL = "hall"
HAND = "hand"


class KeyDoorState(NamedTuple):
    """Where the agent is, where each key is (a place or ``"hand"``), the door, a note, and
    the rooms the agent has been in (what the hall's text recalls)."""

    location: str
    keys: tuple[str, ...]  # aligned with KeyDoorEnv.key_colours
    door_open: bool
    left: bool
    note: str  # what the last command revealed ("" mostly)
    searched: frozenset[str] = frozenset()


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
        "here it locked open opens go take drop leave through does not with have no has empty "
        "searched back an , .".split()  # "an": an orange key (vocabulary.article)
        + list(COLOURS.all) + list(PLACES.all))

    def _new_episode(self, rng: np.random.Generator) -> tuple[str, KeyDoorState]:
        door = str(rng.choice(COLOURS.pick(self.split)))
        other = str(rng.choice([c for c in COLOURS.rest(self.split) if c != door]))
        self.rooms = tuple(str(r) for r in rng.choice(PLACES.rest(self.split), 3, replace=False))
        door_room, key_room, other_room = (self.rooms[i] for i in rng.permutation(3))
        self.door_colour, self.door_room = door, door_room
        self.key_colours = (door, other)
        self.key_rooms = (key_room, other_room)  # where each key lay at the start
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
            commands = [self._go(state, room) for room in self.rooms]
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

    def _go(self, state: KeyDoorState, room: str) -> str:
        """The hall's command to enter ``room``: "go to the kitchen" when it was never
        searched, "go back to the kitchen" when it was, "go back to the red door" for the
        searched room of the door (the way a player names a place seen before)."""
        if room not in state.searched:
            return f"go to the {room}"
        return f"go back to the {self.door_colour} door" if room == self.door_room else (
            f"go back to the {room}")

    def _next(self, state: KeyDoorState,
              command: str) -> tuple[KeyDoorState, tuple[str, ...]]:
        state = state._replace(note="")
        verb, *_, noun = command.split()
        if command.startswith("go back to the "):
            noun = self.door_room if noun == "door" else noun
        if command.startswith(("go to the ", "go back to the ")):
            searched = state.searched if noun == HALL else state.searched | {noun}
            return state._replace(location=noun, searched=searched), ()
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
            parts += [self._recall(state, room) for room in self.rooms if room in state.searched]
            unseen = [f"the {room}" for room in self.rooms if room not in state.searched]
            if len(unseen) == len(self.rooms):
                parts.append(f"doors lead to {', '.join(unseen[:-1])} and {unseen[-1]}.")
            elif unseen:
                parts.append(f"you have not searched {' and '.join(unseen)}.")
        for colour, where in zip(self.key_colours, state.keys):
            if where == state.location:
                parts.append(f"{article(colour)} {colour} key lies on the floor.")
        if state.location == self.door_room:
            status = "open" if state.door_open else "locked"
            door = f"{article(self.door_colour)} {self.door_colour} door"
            parts.append(f"there is {door} here, it is {status}.")
        holding = self._holding(state)
        parts.append(f"you carry the {holding} key." if holding else "you carry nothing.")
        return " ".join(parts)

    def _recall(self, state: KeyDoorState, room: str) -> str:
        """What a searched room holds, as the hall's text says it: "the study has the red door
        and a blue key." or "the kitchen is empty." (keys move only by the agent's hand, so
        what it saw there is still true)."""
        things = [f"the {self.door_colour} door"] if room == self.door_room else []
        things += [f"{article(colour)} {colour} key" for colour, where
                   in zip(self.key_colours, state.keys) if where == room]
        if not things:
            return f"the {room} is empty."
        return f"the {room} has {' and '.join(things)}."

    def _success(self, state: KeyDoorState) -> bool:
        return state.left

    def key_room_observations(self) -> dict[str, dict]:
        """This episode's world seen from each key's room, hands empty, door closed (what
        ``core/agents/pretrain.take_probabilities`` probes): ``"matching"`` where the key of
        the door's colour lies, ``"other"`` where the other key lies; the commands are "go to
        the hall" and "take the K key". The episode goes on unchanged.

        :raises RuntimeError: before ``reset``."""
        if self.state is None:
            raise RuntimeError("key_room_observations: no episode; call reset() first")
        saved, views = self.state, {}
        start = KeyDoorState(HALL, self.key_rooms, False, False, "")  # as the episode began
        for label, room in zip(("matching", "other"), start.keys):
            self.state = start._replace(location=room)
            views[label] = self._observation()
        self.state = saved
        return views
