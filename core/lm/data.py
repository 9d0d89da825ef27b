"""Token streams cut into (input, target) windows, with batches drawn from core's NumPy RNG.

A window of ``block_size + 1`` tokens gives the inputs ``x = w[:-1]`` and the targets
``y = w[1:]``: at every position the model predicts the next token. Batches come from
``numpy.random.default_rng((seed, step))``, so both backends see the same batches and a resumed
run sees exactly the batches it would have seen.
"""

from __future__ import annotations

import numpy as np


class TokenData:
    """A token stream split into a training part and a validation part (the last
    ``val_fraction``).

    :param ids: the token ids ``(N,)``.
    :param block_size: window length T.
    :param val_fraction: share of the stream held out for evaluation.
    """

    def __init__(self, ids: np.ndarray, block_size: int, val_fraction: float = 0.1) -> None:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction: expected a value in (0, 1), got {val_fraction!r}")
        split = int(len(ids) * (1.0 - val_fraction))
        self.block_size = block_size
        self.splits = {"train": ids[:split], "val": ids[split:]}
        for name, part in self.splits.items():
            if len(part) < block_size + 1:
                raise ValueError(
                    f"ids: the {name} split has {len(part)} tokens, fewer than block_size + 1 = "
                    f"{block_size + 1}; give a longer text or a smaller block_size"
                )

    def batch(
        self, split: str, batch_size: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)``, each ``(batch_size, block_size)`` int64, from random offsets."""
        ids = self.splits[split]
        starts = rng.integers(0, len(ids) - self.block_size, size=batch_size)
        windows = np.stack([ids[s : s + self.block_size + 1] for s in starts])  # (B, T + 1)
        return windows[:, :-1], windows[:, 1:]


def train_rng(seed: int, step: int) -> np.random.Generator:
    """The generator of training batch ``step``: a function of (seed, step) only."""
    return np.random.default_rng((seed, 1, step))


def eval_rng(seed: int) -> np.random.Generator:
    """The generator of the evaluation batches: the same ones at every evaluation."""
    return np.random.default_rng((seed, 2))
