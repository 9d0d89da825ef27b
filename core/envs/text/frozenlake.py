"""``duetrl/TextFrozenLake-v0``: Gymnasium's FrozenLake, told in words (outline 3.2.2).

The wrapped environment is Gymnasium's own ``FrozenLakeEnv`` (its map, its moves, its slippery
ice when ``is_slippery=True``); this class only turns its cell into a sentence and its four
actions into commands:

    goal: reach the goal at row 4 column 4 without falling into a hole
    you are at row 1 column 1. north is the edge, east is ice, south is ice, west is the edge.
      [0] go north   [1] go east   [2] go south   [3] go west

All four commands are always admissible, as in FrozenLake (walking into the edge keeps you
where you are). ``is_slippery`` defaults to False here (Gymnasium's default is True): on
slippery ice even the optimal policy falls in about a quarter of the 4x4 episodes, while the
oracle succeeds in every deterministic one. Rows and columns are counted from 1.

The map is fixed, so no word is held out: ``split`` is accepted (and checked) for a uniform
interface, and every split gives the same episodes.

Sub-goals (for ``reward="shaped"``): coming closer to the goal than before, counted in
shortest-path steps around the holes (one bonus per distance reached).
"""

from __future__ import annotations

from collections import deque

import numpy as np
from gymnasium.envs.toy_text.frozen_lake import FrozenLakeEnv

from duetrl.core.envs.text.base import TextEnv

DIRECTIONS = ("north", "east", "south", "west")
"""The commands' order; FrozenLake's own action ids follow in :data:`LAKE_ACTION`."""

LAKE_ACTION = {"north": 3, "east": 2, "south": 1, "west": 0}
"""FrozenLake's actions: 0 left, 1 down, 2 right, 3 up."""

STEP = {"north": (-1, 0), "east": (0, 1), "south": (1, 0), "west": (0, -1)}

CELL_WORDS = {"S": "ice", "F": "ice", "H": "a hole", "G": "the goal"}


class TextFrozenLakeEnv(TextEnv):
    """FrozenLake in words: where you are, what lies in each direction, four commands.

    :param is_slippery: passed to FrozenLake (True: a move goes sideways 2 times in 3).
    :param map_name: FrozenLake's ``"4x4"`` or ``"8x8"`` map.
    :param split: accepted for a uniform interface; the map is fixed, all splits are the same.
    :param reward: ``"sparse"``, ``"shaped"`` or ``"shaped_repeating"``.
    :param max_steps: time limit (default 100 for 4x4, 200 for 8x8, as Gymnasium's).
    :param render_mode: None or ``"ansi"``.
    """

    WORDS = frozenset(
        "you are at row column north south east west is the edge ice a hole goal go fell into "
        "reached reach without falling , .".split() + [str(n) for n in range(1, 9)])

    def __init__(self, is_slippery: bool = False, map_name: str = "4x4", split: str = "train",
                 reward: str = "sparse", max_steps: int | None = None,
                 render_mode: str | None = None):
        if map_name not in ("4x4", "8x8"):
            raise ValueError(f"map_name: expected '4x4' or '8x8', got {map_name!r}")
        if not isinstance(is_slippery, bool):
            raise ValueError(f"is_slippery: expected True or False, got {is_slippery!r}")
        self.DEFAULT_MAX_STEPS = 100 if map_name == "4x4" else 200
        super().__init__(split=split, reward=reward, max_steps=max_steps,
                         render_mode=render_mode)
        self.lake = FrozenLakeEnv(map_name=map_name, is_slippery=is_slippery)
        self.desc = [[cell.decode() for cell in row] for row in self.lake.desc]
        self.size = len(self.desc)
        self.distance = self._distances()
        self.policy = self._optimal_policy()

    # ---- the world ----
    def _new_episode(self, rng: np.random.Generator) -> tuple[str, int]:
        cell, _ = self.lake.reset(seed=int(rng.integers(2**31)))
        goal_row, goal_column = self._goal_cell()
        return (f"reach the goal at row {goal_row + 1} column {goal_column + 1} without "
                f"falling into a hole"), int(cell)

    def _commands(self, state: int) -> tuple[str, ...]:
        return tuple(f"go {direction}" for direction in DIRECTIONS)

    def _act(self, command: str) -> tuple[str, ...]:
        before = self.distance[self.state]
        cell, *_ = self.lake.step(LAKE_ACTION[command.split()[1]])
        self.state = int(cell)
        after = self.distance[self.state]
        return (f"closer {after}",) if after < before else ()

    def _describe(self, state: int) -> str:
        row, column = divmod(state, self.size)
        where = f"row {row + 1} column {column + 1}"
        if self.desc[row][column] == "H":
            return f"you fell into a hole at {where}."
        if self.desc[row][column] == "G":
            return f"you reached the goal at {where}."
        around = []
        for direction in DIRECTIONS:
            r, c = row + STEP[direction][0], column + STEP[direction][1]
            inside = 0 <= r < self.size and 0 <= c < self.size
            around.append(f"{direction} is {CELL_WORDS[self.desc[r][c]] if inside else 'the edge'}")
        return f"you are at {where}. {', '.join(around)}."

    def _success(self, state: int) -> bool:
        return self.desc[state // self.size][state % self.size] == "G"

    def _failure(self, state: int) -> bool:
        return self.desc[state // self.size][state % self.size] == "H"

    def oracle_action(self) -> int:
        """The command of the optimal policy (value iteration on FrozenLake's transitions)."""
        if self.state is None or self.done:
            raise RuntimeError("oracle_action: the episode has ended (or not begun); call reset()")
        return int(self.policy[self.state])

    # ---- helpers ----
    def _goal_cell(self) -> tuple[int, int]:
        return next((r, c) for r in range(self.size) for c in range(self.size)
                    if self.desc[r][c] == "G")

    def _distances(self) -> np.ndarray:
        """Shortest-path steps to the goal around the holes (deterministic moves); inf if none."""
        distance = np.full(self.size * self.size, np.inf)
        goal = self._goal_cell()
        distance[goal[0] * self.size + goal[1]] = 0
        queue = deque([goal])
        while queue:
            row, column = queue.popleft()
            for dr, dc in STEP.values():
                r, c = row + dr, column + dc
                if (0 <= r < self.size and 0 <= c < self.size and self.desc[r][c] != "H"
                        and distance[r * self.size + c] == np.inf):
                    distance[r * self.size + c] = distance[row * self.size + column] + 1
                    queue.append((r, c))
        return distance

    def _optimal_policy(self, gamma: float = 0.99, sweeps: int = 1000) -> np.ndarray:
        """Greedy command index per cell from value iteration on ``lake.P`` (gamma < 1 prefers
        short paths; ties go to the first command)."""
        cells = self.size * self.size
        values = np.zeros(cells)
        q = np.zeros((cells, len(DIRECTIONS)))
        for _ in range(sweeps):
            for cell in range(cells):
                for index, direction in enumerate(DIRECTIONS):
                    q[cell, index] = sum(
                        p * (reward + (0.0 if done else gamma * values[nxt]))
                        for p, nxt, reward, done in self.lake.P[cell][LAKE_ACTION[direction]])
            new = q.max(axis=1)
            if np.max(np.abs(new - values)) < 1e-12:
                break
            values = new
        return np.argmax(np.round(q, 12), axis=1)
