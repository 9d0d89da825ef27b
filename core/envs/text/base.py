"""What every text world shares (outline 3.2.2): spaces, seeding, checked steps, rewards, a time
limit, rendering and an oracle.

A world is a small model written as pure functions of a hashable state; :class:`TextEnv` runs
it as a Gymnasium environment:

====================  ============================================================================
Subclass provides     Meaning
====================  ============================================================================
``_new_episode(rng)``  draw a world and its first state from the split; returns (goal, state)
``_commands(s)``       the admissible commands in state ``s``, in words
``_next(s, command)``  the next state and the sub-goal events the step reached (for shaping)
``_describe(s)``       what the agent perceives in ``s``, in words
``_success(s)``        whether ``s`` achieves the goal (the episode terminates)
``_failure(s)``        whether ``s`` ends the episode without success (default: never)
``WORDS``              every word the world's texts can contain
====================  ============================================================================

Rewards (3.2.4). ``reward="sparse"``: 1 on the step that reaches the goal, else 0.
``reward="shaped"``: the same, plus :data:`SHAPING_BONUS` the first time in an episode each
sub-goal is reached (taking the right key, opening the door...); paid once, a bonus cannot be
farmed, so an optimal policy still heads for the goal. ``reward="shaped_repeating"`` pays the
bonus every time: the classic bug, kept on purpose to show its failure (an agent that drops
and takes the key again earns more than one that leaves).

Spaces. Gymnasium's ``check_env`` passes with the observation space a ``Dict`` of ``Text``
(goal, text) and ``Sequence(Text)`` (admissible, a tuple of commands). The action space is a
``Discrete(MAX_ADMISSIBLE)`` whose ``sample()`` without a mask draws among the current
admissible indices (:class:`AdmissibleDiscrete`), and each step's ``info["action_mask"]`` is
the mask for ``sample(mask=...)``. ``check_env`` samples an action one step after a reset and
uses it right after ``reset(seed=123)``: every world's first state offers at least as many
commands as any state one step later, so that action is admissible (the tests check this).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from duetrl.core.envs.text.vocabulary import check_split
from duetrl.core.interfaces.text_env import (
    MAX_ADMISSIBLE,
    MAX_TEXT_LENGTH,
    check_action,
    check_observation,
    words,
)

CHARSET = "abcdefghijklmnopqrstuvwxyz0123456789 .,'"
"""Every character a goal, a text or a command may contain."""

REWARDS = ("sparse", "shaped", "shaped_repeating")
"""The values of ``reward``: see the module's docstring."""

SHAPING_BONUS = 0.1
"""The shaped reward's bonus for reaching a sub-goal (small beside the success reward of 1)."""

PROMPT_WORDS = frozenset({"goal", ":", "action", "."})
"""Words :func:`duetrl.core.interfaces.text_env.prompt` adds around the texts."""


class AdmissibleDiscrete(spaces.Discrete):
    """``Discrete(MAX_ADMISSIBLE)`` whose ``sample()`` without a mask picks an admissible index.

    :param env: the environment whose current admissible commands bound the sample.
    """

    def __init__(self, env: TextEnv):
        super().__init__(MAX_ADMISSIBLE)
        self._env = env

    def sample(self, mask: Any = None, probability: Any = None) -> np.int64:
        if mask is None and probability is None:
            mask = self._env.action_mask()
        return super().sample(mask=mask, probability=probability)


class TextEnv(gym.Env):
    """A world described in words; actions index the admissible commands.

    :param split: which words episodes use: ``"train"``, ``"heldout"`` or ``"all"``
        (:mod:`duetrl.core.envs.text.vocabulary`).
    :param reward: ``"sparse"``, ``"shaped"`` or ``"shaped_repeating"`` (see the module).
    :param max_steps: the time limit: the episode is truncated after this many steps.
    :param render_mode: None or ``"ansi"`` (``render()`` returns the goal, text and commands).
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}
    WORDS: frozenset[str] = frozenset()
    DEFAULT_MAX_STEPS = 32

    def __init__(self, split: str = "train", reward: str = "sparse",
                 max_steps: int | None = None, render_mode: str | None = None):
        self.split = check_split(split)
        if reward not in REWARDS:
            raise ValueError(f"reward: expected one of {list(REWARDS)}, got {reward!r}")
        self.reward_kind = reward
        max_steps = self.DEFAULT_MAX_STEPS if max_steps is None else max_steps
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"max_steps: expected an int >= 1, got {max_steps!r}")
        self.max_steps = max_steps
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode: expected None or one of "
                             f"{self.metadata['render_modes']}, got {render_mode!r}")
        self.render_mode = render_mode
        text = spaces.Text(MAX_TEXT_LENGTH, charset=CHARSET)
        self.observation_space = spaces.Dict(
            {"goal": text, "text": text, "admissible": spaces.Sequence(text)})
        self.action_space = AdmissibleDiscrete(self)
        self.goal = ""
        self.state: Hashable = None
        self.steps = 0
        self.done = False
        self.paid: set[str] = set()

    # ---- the world: subclasses fill these in ----
    def _new_episode(self, rng: np.random.Generator) -> tuple[str, Hashable]:
        raise NotImplementedError

    def _commands(self, state: Hashable) -> tuple[str, ...]:
        raise NotImplementedError

    def _next(self, state: Hashable, command: str) -> tuple[Hashable, tuple[str, ...]]:
        raise NotImplementedError

    def _describe(self, state: Hashable) -> str:
        raise NotImplementedError

    def _success(self, state: Hashable) -> bool:
        raise NotImplementedError

    def _failure(self, state: Hashable) -> bool:
        return False

    def _act(self, command: str) -> tuple[str, ...]:
        """Move ``self.state`` on by ``command``; returns the sub-goal events reached."""
        self.state, events = self._next(self.state, command)
        return events

    # ---- the Gymnasium API ----
    def reset(self, *, seed: int | None = None,
              options: dict | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        self.goal, self.state = self._new_episode(self.np_random)
        self.steps, self.done, self.paid = 0, False, set()
        return self._observation(), {"success": False, "action_mask": self.action_mask()}

    def step(self, action: Any) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        if self.state is None or self.done:
            raise RuntimeError("step: the episode has ended (or not begun); call reset() first")
        admissible = self._commands(self.state)
        index = check_action(action, admissible)  # before anything changes
        events = self._act(admissible[index])
        self.steps += 1
        success = bool(self._success(self.state))
        terminated = success or bool(self._failure(self.state))
        truncated = not terminated and self.steps >= self.max_steps
        self.done = terminated or truncated
        reward = float(success) + self._bonus(events)
        info = {"success": success, "action_mask": self.action_mask()}
        return self._observation(), reward, terminated, truncated, info

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        return show(self._observation())

    # ---- what agents and tests use ----
    def admissible(self) -> tuple[str, ...]:
        """The commands admissible now, in words."""
        return self._commands(self.state)

    def action_mask(self) -> np.ndarray:
        """1 for each admissible index of ``Discrete(MAX_ADMISSIBLE)``, 0 elsewhere (int8)."""
        mask = np.zeros(MAX_ADMISSIBLE, dtype=np.int8)
        if self.state is not None:
            mask[:len(self._commands(self.state))] = 1
        else:
            mask[0] = 1
        return mask

    @classmethod
    def vocabulary(cls) -> tuple[str, ...]:
        """Every word this world can emit (held-out words included), with the prompt's, sorted."""
        return tuple(sorted(cls.WORDS | PROMPT_WORDS))

    def oracle_action(self) -> int:
        """An optimal command index now: the first step of a shortest path to success (BFS)."""
        if self.state is None or self.done:
            raise RuntimeError("oracle_action: the episode has ended (or not begun); call reset()")
        first: dict[Hashable, int] = {}
        frontier: deque[Hashable] = deque()
        for index, command in enumerate(self._commands(self.state)):
            state, _ = self._next(self.state, command)
            if state not in first:
                first[state] = index
                frontier.append(state)
        while frontier:
            state = frontier.popleft()
            if self._success(state):
                return first[state]
            if self._failure(state):
                continue
            for command in self._commands(state):
                following, _ = self._next(state, command)
                if following not in first:
                    first[following] = first[state]
                    frontier.append(following)
        raise RuntimeError("oracle_action: no command sequence reaches the goal from here")

    # ---- helpers ----
    def _bonus(self, events: tuple[str, ...]) -> float:
        if self.reward_kind == "sparse":
            return 0.0
        if self.reward_kind == "shaped_repeating":
            return SHAPING_BONUS * len(events)
        new = [event for event in events if event not in self.paid]
        self.paid.update(new)
        return SHAPING_BONUS * len(set(new))

    def _observation(self) -> dict[str, Any]:
        observation = {"goal": self.goal, "text": self._describe(self.state),
                       "admissible": self._commands(self.state)}
        check_observation(observation)
        for key in ("goal", "text"):
            if len(observation[key]) > MAX_TEXT_LENGTH:
                raise ValueError(f"{key}: {len(observation[key])} characters, more than "
                                 f"MAX_TEXT_LENGTH = {MAX_TEXT_LENGTH}")
        return observation


def show(observation: dict[str, Any]) -> str:
    """The observation for a person: the goal, the text and the numbered commands."""
    lines = [f"goal: {observation['goal']}", observation["text"]]
    lines += [f"  [{index}] {command}" for index, command in enumerate(observation["admissible"])]
    return "\n".join(lines)


def text_words(observation: dict[str, Any]) -> set[str]:
    """Every word of an observation: goal, text and commands (for vocabulary checks)."""
    found = set(words(observation["goal"])) | set(words(observation["text"]))
    for command in observation["admissible"]:
        found |= set(words(command))
    return found
