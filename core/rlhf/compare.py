"""RL on a text task in both backends side by side, in lockstep (``duetrl compare rlhf``).

Both runs start from the same reference weights, draw the same prompts and the same sampling
noise (core's NumPy RNG), so as long as their float32 arithmetic agrees they sample the same
completions, see the same rewards and take the same update. Rounding differences (~1e-7 per
operation) grow through Adam's updates; once a logit difference flips one sampled token, the
two runs see different batches and go their own ways (the same story as ``compare ppo``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from duetrl.core.backend import load_backends
from duetrl.core.rlhf.train import RLHFRun, RLHFSettings
from duetrl.core.run import compare
from duetrl.core.tolerances import TOLERANCES

ROW_KEYS = ("reward", "kl", "loss")
"""Each backend's metrics a row of the table keeps."""


def same_tokens(runs: Mapping[str, RLHFRun]) -> bool:
    """Whether every backend sampled exactly the same tokens in its last update."""
    tokens = [run.last.tokens for run in runs.values() if run.last is not None]
    return len(tokens) == len(runs) and all(np.array_equal(tokens[0], t) for t in tokens[1:])


def compare_rlhf(
    settings: RLHFSettings,
    reference: tuple[Any, dict[str, np.ndarray]] | None = None,
    threads: int = 1,
    quiet: bool = True,
) -> dict[str, Any]:
    """Run ``settings.updates`` updates in torch and tf, one update of each in turn
    (``duetrl.core.run.compare``).

    :param reference: the pretrained reference's ``(config, params)``; None for
        ``settings.reference == "uniform"``.
    :param quiet: no progress bar.
    :returns: ``{"rows": [per-update dict], "same_tokens_updates", "max_param_diff",
        "wall_s": {backend: seconds}, "summary": {backend: {mean_reward, kl}}}`` and the
        driver's ``tolerance`` and ``updates_within_tolerance``; a row holds both backends'
        reward, kl and loss, whether the sampled tokens were identical (``same_tokens``), and
        the largest absolute difference between the two policies' parameters after the update.
    """
    runs = {}
    for name, backend in load_backends(["torch", "tf"]).items():
        backend.set_num_threads(threads)
        runs[name] = RLHFRun(backend, settings, reference)
    result = compare(
        runs, lambda run: run.backend.export_params(run.policy),
        tolerance=TOLERANCES["float32_model"], same=same_tokens, quiet=quiet,
        description=f"compare {settings.algo}",
    )
    rows = [
        {"update": row["update"], "same_tokens": row["same"],
         "max_param_diff": row["max_param_diff"],
         **{f"{key}_{name}": row[f"{key}_{name}"] for name in runs for key in ROW_KEYS}}
        for row in result["rows"]
    ]
    backends = result["backends"]
    return {
        "rows": rows,
        "same_tokens_updates": result["same_updates"],
        "max_param_diff": result["max_param_diff"],
        "wall_s": {name: backends[name]["wall_s"] for name in runs},
        "summary": {name: {"mean_reward": backends[name]["mean_reward"],
                           "kl": backends[name]["kl"]} for name in runs},
        "tolerance": result["tolerance"],
        "updates_within_tolerance": result["updates_within_tolerance"],
    }


def format_compare(result: dict[str, Any], every: int = 10) -> str:
    """A table of every ``every``-th update: both backends' reward, KL, same tokens, weights."""
    lines = [
        f"{'update':>6}  {'reward torch':>12}  {'reward tf':>9}  {'kl torch':>8}  {'kl tf':>8}  "
        f"{'same tokens':>11}  {'max |dW|':>9}"
    ]
    rows = result["rows"]
    for row in rows:
        if row["update"] % every and row is not rows[-1] and row["update"] != 1:
            continue
        lines.append(
            f"{row['update']:>6}  {row['reward_torch']:>12.4f}  {row['reward_tf']:>9.4f}  "
            f"{row['kl_torch']:>8.4f}  {row['kl_tf']:>8.4f}  {str(row['same_tokens']):>11}  "
            f"{row['max_param_diff']:>9.2e}"
        )
    lines.append(
        f"identical completions for the first {result['same_tokens_updates']} of {len(rows)} "
        f"updates; time torch {result['wall_s']['torch']:.1f} s, tf {result['wall_s']['tf']:.1f} s"
    )
    return "\n".join(lines)
