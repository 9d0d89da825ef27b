"""Experience replay for DQN: host arrays, uniform sampling, n-step returns, seeded.

The buffer keeps the last ``capacity`` vector steps of ``num_envs`` environments, time-major,
as a ring: row t holds, per environment, (s_t, a_t, r_t, s_{t+1}, terminated_t, truncated_t)
and ``valid`` (0 for the reset step that Gymnasium's NEXT_STEP autoreset inserts after an
episode end: its action is ignored, so it is no transition).

A sampled transition (t, e) becomes an n-step one by walking forward along environment e:

    r^(n)   = sum_{k<m} gamma^k r_{t+k}
    s'      = s_{t+m}   (the stored next state of step t+m-1: the true final state at a
                         truncation, not the reset state)
    term    = terminated_{t+m-1}
    gamma^n = gamma^m   (``discounts``)

where m = n, or fewer if the episode stops first (a termination *or* a truncation at t+k
ends the walk at m = k+1) or the newest step is reached. A truncation leaves term = 0, so DQN
bootstraps from s' there (CleanRL's known bug is to treat it as a termination).
"""

from __future__ import annotations

import numpy as np

from duetrl.core.interfaces.rl import check_discount, check_positive_int


class ReplayBuffer:
    """A ring of the last ``capacity`` vector steps.

    :param capacity: vector steps kept (``capacity * num_envs`` transitions).
    :param num_envs: environments stepped together.
    :param state_shape: one observation's shape; ``state_dtype`` its dtype.
    :param n_step: steps summed into each return (1 = plain DQN).
    :param gamma: the discount of those sums.
    :param batch_size: the batch :meth:`sample` will be asked for; checked against capacity.
    """

    def __init__(self, capacity: int, num_envs: int, state_shape: tuple[int, ...],
                 n_step: int = 1, gamma: float = 0.99, batch_size: int = 1,
                 state_dtype: str = "float64") -> None:
        check_positive_int("buffer_size", capacity)
        check_positive_int("num_envs", num_envs)
        check_positive_int("n_step", n_step)
        check_positive_int("batch_size", batch_size)
        check_discount("gamma", gamma)
        if capacity * num_envs < batch_size:
            raise ValueError(
                f"buffer_size: the replay buffer holds {capacity} steps x {num_envs} envs = "
                f"{capacity * num_envs} transitions, fewer than one batch of {batch_size}; "
                f"raise --buffer-size or lower --batch-size")
        self.capacity, self.num_envs, self.n_step, self.gamma = capacity, num_envs, n_step, gamma
        self.batch_size = batch_size
        shape = (capacity, num_envs)
        self.states = np.zeros(shape + tuple(state_shape), state_dtype)
        self.next_states = np.zeros(shape + tuple(state_shape), state_dtype)
        self.actions = np.zeros(shape, np.int64)
        self.rewards = np.zeros(shape)
        self.terminations = np.zeros(shape, bool)
        self.truncations = np.zeros(shape, bool)
        self.valid = np.zeros(shape, bool)
        self.position = 0   # the next row to write
        self.rows = 0       # rows written so far, at most capacity

    def __len__(self) -> int:
        """Transitions held (reset steps excluded)."""
        return int(self.valid.sum())

    def add(self, states: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
            next_states: np.ndarray, terminations: np.ndarray, truncations: np.ndarray,
            valid: np.ndarray | None = None) -> None:
        """Store one vector step; each argument has a leading axis of ``num_envs``."""
        row = self.position
        self.states[row], self.next_states[row] = states, next_states
        self.actions[row], self.rewards[row] = actions, rewards
        self.terminations[row], self.truncations[row] = terminations, truncations
        self.valid[row] = True if valid is None else valid
        self.position = (row + 1) % self.capacity
        self.rows = min(self.rows + 1, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``batch_size`` transitions, uniformly among the valid ones, as n-step transitions.

        :returns: ``{"states", "actions", "rewards", "next_states", "terminations",
            "discounts"}`` with a leading axis of ``batch_size`` (see the module's table).
        :raises ValueError: when fewer than ``batch_size`` transitions are stored.
        """
        held = len(self)
        if held < batch_size:
            raise ValueError(
                f"batch_size: the replay buffer holds {held} transitions, fewer than a batch of "
                f"{batch_size}; collect more first (--learning-starts >= --batch-size)")
        rows = rng.integers(0, self.rows, size=batch_size)
        envs = rng.integers(0, self.num_envs, size=batch_size)
        bad = ~self.valid[rows, envs]
        while bad.any():  # redraw the reset steps (a few percent at most)
            rows[bad] = rng.integers(0, self.rows, size=int(bad.sum()))
            envs[bad] = rng.integers(0, self.num_envs, size=int(bad.sum()))
            bad = ~self.valid[rows, envs]
        # steps available after row t: up to the newest written row, (position - 1)
        available = (self.position - rows - 1) % self.capacity + 1 if self.rows == \
            self.capacity else self.rows - rows
        returns = np.zeros(batch_size)
        last = rows.copy()
        steps = np.zeros(batch_size, np.int64)
        active = np.ones(batch_size, bool)
        for k in range(self.n_step):
            active &= k < available
            index = (rows + k) % self.capacity
            returns += np.where(active, self.gamma**k * self.rewards[index, envs], 0.0)
            last = np.where(active, index, last)
            steps += active
            active &= ~(self.terminations[index, envs] | self.truncations[index, envs])
        return {
            "states": self.states[rows, envs],
            "actions": self.actions[rows, envs],
            "rewards": returns,
            "next_states": self.next_states[last, envs],
            "terminations": self.terminations[last, envs],
            "discounts": self.gamma ** steps.astype(np.float64),
        }

    def sample_many(self, count: int, batch_size: int,
                    rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``count`` batches of :meth:`sample`, drawn in turn, stacked: (count, batch_size, ...)."""
        batches = [self.sample(batch_size, rng) for _ in range(count)]
        return {k: np.stack([b[k] for b in batches]) for k in batches[0]}
