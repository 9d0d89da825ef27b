"""Runs: the one training loop (``loop.run``) and the one both-backends driver
(``compare.compare``) that every trainer of duetrl is run by."""

from duetrl.core.run.compare import compare, max_param_difference
from duetrl.core.run.loop import BASE_KEYS, Diverged, Trainer, run

__all__ = ["BASE_KEYS", "Diverged", "Trainer", "compare", "max_param_difference", "run"]
