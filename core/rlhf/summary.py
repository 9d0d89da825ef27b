"""What an RL run on a text task reports: the summary of its history, the exact optimum it is
measured against when one is known, and its reward/KL plot."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from duetrl.core.rlhf.settings import RLHFSettings


def summarize(history: dict[str, list[float]], updates: int | None = None) -> dict[str, float]:
    """mean_reward, kl, entropy, success: each averaged over the last 10% of updates (>= 1)."""
    n = len(history["reward"])
    tail = max(1, math.ceil(0.1 * n))
    out = {
        key: float(np.mean(history[key][-tail:])) if n else float("nan")
        for key in ("reward", "kl", "entropy", "success")
    }
    extra = {}
    if "true_reward" in history:  # a learned reward: the task's own, over the same updates
        extra["mean_true_reward"] = float(np.mean(history["true_reward"][-tail:]))
        extra["initial_true_reward"] = float(history["true_reward"][0])
    return {
        **extra,
        "mean_reward": out["reward"],
        "kl": out["kl"],
        "entropy": out["entropy"],
        "success_rate": out["success"],
        "initial_reward": float(history["reward"][0]) if n else float("nan"),
        "updates": int(updates if updates is not None else n),
        "last_updates_averaged": tail,
    }


def plot_reward_kl(
    histories: dict[str, dict[str, list[float]]],
    path: str | Path,
    exact: dict[str, float] | None = None,
    title: str = "",
) -> Path:
    """Reward (left) and KL(pi || pi_ref) (right) against updates, one line per run; dashed
    lines at the exact optimum's values when given."""
    from duetrl.core.plots import pyplot, save_figure

    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for label, h in histories.items():
        axes[0].plot(h["update"], h["reward"], label=label)
        if "true_reward" in h:  # --reward learned: the task's reward of the same samples
            axes[0].plot(h["update"], h["true_reward"], linestyle="--", label=f"{label} (true r)")
        axes[1].plot(h["update"], h["kl"], label=label)
    for ax, key, ylabel in ((axes[0], "mean_reward", "mean reward"), (axes[1], "kl", "KL (nats)")):
        if exact is not None:
            ax.axhline(exact[key], color="grey", linestyle="--", linewidth=1, label="exact pi*")
        ax.set_xlabel("update")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def exact_optimum(settings: RLHFSettings) -> dict[str, float] | None:
    """E_pi*[r] and KL(pi* || pi_ref) when they are known (sort-digits, uniform reference)."""
    if settings.task != "sort-digits" or settings.reference != "uniform" or settings.beta <= 0:
        return None
    if settings.kl_target > 0:
        return None
    from duetrl.core.rlhf.optimum import sort_digits_optimum

    optimum = sort_digits_optimum(settings.beta)
    return {"mean_reward": optimum.mean_reward, "kl": optimum.kl}
