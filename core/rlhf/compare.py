"""RL on a text task in both backends side by side, in lockstep (``duetrl compare rlhf``).

Both runs start from the same reference weights, draw the same prompts and the same sampling
noise (core's NumPy RNG), so as long as their float32 arithmetic agrees they sample the same
completions, see the same rewards and take the same update. Rounding differences (~1e-7 per
operation) grow through Adam's updates; once a logit difference flips one sampled token, the
two runs see different batches and go their own ways (the same story as ``compare ppo``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from duetrl.core.backend import load_backends
from duetrl.core.rlhf.train import RLHFRun, RLHFSettings


def compare_rlhf(
    settings: RLHFSettings,
    reference: tuple[Any, dict[str, np.ndarray]] | None = None,
    threads: int = 1,
) -> dict[str, Any]:
    """Run ``settings.updates`` updates in torch and tf, one update of each in turn.

    :param reference: the pretrained reference's ``(config, params)``; None for
        ``settings.reference == "uniform"``.
    :returns: ``{"rows": [per-update dict], "same_tokens_updates", "max_param_diff",
        "wall_s": {backend: seconds}, "summary": {backend: {mean_reward, kl}}}``; a row holds
        both backends' reward, kl and loss, whether the sampled tokens were identical, and the
        largest absolute difference between the two policies' parameters after the update.
    """
    import time

    backends = load_backends(["torch", "tf"])
    runs = {}
    for name, backend in backends.items():
        backend.set_num_threads(threads)
        runs[name] = RLHFRun(backend, settings, reference)
    rows, wall = [], {name: 0.0 for name in runs}
    same_until = 0
    for update in range(settings.updates):
        metrics, tokens = {}, {}
        for name, run in runs.items():
            began = time.perf_counter()
            metrics[name], data = run.update(update)
            wall[name] += time.perf_counter() - began
            tokens[name] = data.tokens
        params = {name: run.backend.export_params(run.policy) for name, run in runs.items()}
        diff = max(
            float(np.max(np.abs(params["torch"][k].astype(np.float64) - params["tf"][k])))
            for k in params["torch"]
        )
        same = bool(np.array_equal(tokens["torch"], tokens["tf"]))
        if same and same_until == update:
            same_until = update + 1
        rows.append({
            "update": update + 1,
            "same_tokens": same,
            "max_param_diff": diff,
            **{f"{key}_{name}": metrics[name][key] for name in runs
               for key in ("reward", "kl", "loss")},
        })
    summary = {}
    for name in runs:
        tail = max(1, int(np.ceil(0.1 * len(rows))))
        summary[name] = {
            "mean_reward": float(np.mean([r[f"reward_{name}"] for r in rows[-tail:]])),
            "kl": float(np.mean([r[f"kl_{name}"] for r in rows[-tail:]])),
        }
    return {
        "rows": rows,
        "same_tokens_updates": same_until,
        "max_param_diff": rows[-1]["max_param_diff"] if rows else 0.0,
        "wall_s": wall,
        "summary": summary,
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
