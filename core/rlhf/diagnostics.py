"""Warnings that name the cause when an RL run on a text task goes wrong (outline 3.1.5,
9.2.1), read from its per-update history (``RLHFRun.history`` or the run's log.csv).

What the first defaults of ``duetrl rlhf train`` did on sort-digits (grpo, 8 prompts,
lr 5e-3, no missing-stop penalty), update by update:

======  ======  ======  =======  ==================================================
update  reward  KL      stopped  what happened
======  ======  ======  =======  ==================================================
3       0.567   0.04    0.97     a rare run-on sample got a positive advantage ...
4       0.545   4.69    0.03     ... and one Adam step made the stop token rare
5       0.045   21.61   0.22     the next step made ':' the answer: a collapse
======  ======  ======  =======  ==================================================

Each rule below looks for one of these signs and says, in one line, what it means and which
flag to change:

- **the stop token lost**: the share of completions that stop fell below ``stop_floor``
  after starting at or above ``stop_start``: the reward does not ask for the stop;
- **a KL jump**: KL rose by more than ``kl_jump`` nats in one update: one step moved the
  policy far (a learning rate too large for the batch's noise);
- **a reward collapse**: the reward fell below ``collapse`` times its first value.

Only the first update of each sign is reported.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path


def run_warnings(
    history: Mapping[str, Sequence[float]],
    kl_jump: float = 5.0,
    collapse: float = 0.5,
    stop_start: float = 0.9,
    stop_floor: float = 0.5,
) -> list[str]:
    """One line per sign of trouble in ``history`` (keys ``reward``, ``kl`` and, with a stop
    token, ``stopped``; one value per update), in the order of the updates they happened at.

    :raises ValueError: naming ``history`` when ``reward`` or ``kl`` is missing or the
        columns differ in length.
    """
    for key in ("reward", "kl"):
        if key not in history:
            raise ValueError(f"history: expected a {key!r} column, got {sorted(history)}")
    reward, kl = list(history["reward"]), list(history["kl"])
    stopped = list(history.get("stopped", [1.0] * len(reward)))
    if not len(reward) == len(kl) == len(stopped):
        raise ValueError(f"history: expected columns of one length, got reward {len(reward)}, "
                         f"kl {len(kl)}, stopped {len(stopped)}")
    found: list[tuple[int, str]] = []
    if stopped and stopped[0] >= stop_start:
        lost = next((u for u, s in enumerate(stopped) if s < stop_floor), None)
        if lost is not None:
            found.append((lost, f"update {lost + 1}: only {stopped[lost]:.0%} of completions "
                                f"emit the stop token ({stopped[0]:.0%} at the start): the "
                                f"reward does not ask for it, so RL let it go; pass "
                                f"--missing-stop-penalty 0.5 (or a reward that pays less "
                                f"without the stop)"))
    jump = next((u for u in range(1, len(kl)) if kl[u] - kl[u - 1] > kl_jump), None)
    if jump is not None:
        found.append((jump, f"update {jump + 1}: KL jumped from {kl[jump - 1]:.2f} to "
                            f"{kl[jump]:.2f} nats in one update: one step moved the policy "
                            f"far; lower --learning-rate or raise --prompts (less noise per "
                            f"step)"))
    if reward and reward[0] > 0:
        fall = next((u for u, r in enumerate(reward) if r < collapse * reward[0]), None)
        if fall is not None:
            found.append((fall, f"update {fall + 1}: the reward collapsed from "
                                f"{reward[0]:.3f} to {reward[fall]:.3f}: see the samples "
                                f"(duetrl rlhf sample); a smaller --learning-rate or a larger "
                                f"--beta keeps the policy near the reference"))
    return [line for _, line in sorted(found, key=lambda item: item[0])]


def log_warnings(path: str | Path, **thresholds: float) -> list[str]:
    """:func:`run_warnings` of a run's log.csv (the file ``duetrl rlhf train`` writes)."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns = {key: [float(row[key]) for row in rows]
               for key in ("reward", "kl", "stopped") if rows and key in rows[0]}
    return run_warnings(columns, **thresholds)
