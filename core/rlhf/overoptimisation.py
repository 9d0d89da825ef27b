"""RL against a learned reward: over-optimisation (Gao, Schulman and Hilton 2022, "Scaling laws
for reward model overoptimization"; outline 3.1.4).

A small reward model fitted to pairs from pi_ref only (core/rlhf/reward_training.py) is an
imperfect, exploitable proxy: RL against it at a small KL coefficient drives the policy where
r_phi was never trained, and the learned reward keeps rising while the true reward (the task's
rule, logged beside it as ``true_reward``) falls. ``duetrl rlhf overoptimisation`` runs this.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import numpy as np

from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.rlhf.train import RLHFRun, RLHFSettings
from duetrl.core.run import run
from duetrl.core.run.loop import run_paths


def overoptimisation_sweep(
    backend: ModuleType,
    reference: tuple[GPTConfig, dict[str, np.ndarray]],
    reward_model_path: str | Path,
    betas: Sequence[float],
    updates: int = 80,
    algo: str = "rloo",
    seed: int = 0,
    progress: bool = False,
    out: str | Path | None = None,
) -> dict[float, dict[str, list[float]]]:
    """RL against the learned reward at each beta: ``{beta: history}`` (core/rlhf/train.py's
    metrics per update, ``reward`` the learned one and ``true_reward`` the task's).

    The policy maximises E[r_learned] - beta KL(pi || pi_ref); the smaller beta, the further
    it may move from the samples r_learned was fitted on, and the more of r_learned's errors
    it finds. Each beta is one run of ``duetrl.core.run.run``, in ``out/beta_<beta>/`` (None:
    a temporary folder).
    """
    if not betas:
        raise ValueError("betas: expected at least one KL coefficient")
    histories: dict[float, dict[str, list[float]]] = {}
    for beta in betas:
        # the sweep the README and the tutorial measured: 8 prompts a batch at step size 5e-3, no
        # missing-stop penalty (a learned reward is the subject; `rlhf train` defaults differ)
        settings = RLHFSettings(algo=algo, beta=float(beta), updates=updates, seed=seed,
                                reward="learned", reward_model=str(reward_model_path),
                                learning_rate=5e-3, prompts=8, missing_stop_penalty=0.0)
        trainer = RLHFRun(backend, settings, reference)
        folder = None if out is None else Path(out) / f"beta_{float(beta):g}"
        with run_paths(None, folder) as (run_dir, _):
            run(trainer, run_dir, quiet=True, unit="update")
        histories[float(beta)] = trainer.history
        if progress:
            row = overoptimisation_table({float(beta): trainer.history})[0]
            print(f"beta {beta:g}: learned {row['learned_reward']:.3f}, true "
                  f"{row['true_reward']:.3f}, KL {row['kl']:.2f} nats")
    return histories


def overoptimisation_table(
    histories: dict[float, dict[str, list[float]]], last_fraction: float = 0.1
) -> list[dict[str, float]]:
    """One row per beta: learned and true reward and KL, each averaged over the last
    ``last_fraction`` of updates, and the true reward's peak (a 10-update moving average)."""
    rows = []
    for beta, h in histories.items():
        n = len(h["reward"])
        tail = max(1, math.ceil(last_fraction * n))
        true = np.asarray(h["true_reward"])
        window = min(10, n)
        smooth = np.convolve(true, np.ones(window) / window, mode="valid")
        rows.append({
            "beta": beta,
            "kl": float(np.mean(h["kl"][-tail:])),
            "learned_reward": float(np.mean(h["reward"][-tail:])),
            "true_reward": float(np.mean(true[-tail:])),
            "initial_true_reward": float(np.mean(true[:window])),
            "peak_true_reward": float(smooth.max()),
        })
    return rows


def plot_overoptimisation(
    histories: dict[float, dict[str, list[float]]], path: str | Path, title: str = ""
) -> Path:
    """Learned (solid) and true (dashed) reward: left, against updates for each beta (10-update
    moving averages); right, the end of each run against its KL(pi || pi_ref)."""
    from duetrl.core.plots import pyplot, save_figure

    plt = pyplot()

    def smooth(values: list[float]) -> np.ndarray:
        window = min(10, len(values))
        return np.convolve(values, np.ones(window) / window, mode="valid")

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (beta, h) in enumerate(histories.items()):
        color = colors[i % len(colors)]
        steps = np.asarray(h["update"])[len(h["update"]) - len(smooth(h["reward"])):]
        axes[0].plot(steps, smooth(h["reward"]), color=color, label=f"beta {beta:g} learned")
        axes[0].plot(steps, smooth(h["true_reward"]), color=color, linestyle="--",
                     label=f"beta {beta:g} true")
    rows = sorted(overoptimisation_table(histories), key=lambda r: r["kl"])
    kls = [r["kl"] for r in rows]
    axes[1].plot(kls, [r["learned_reward"] for r in rows], "o-", label="learned reward")
    axes[1].plot(kls, [r["true_reward"] for r in rows], "s--", label="true reward")
    for r in rows:
        axes[1].annotate(f"beta {r['beta']:g}", (r["kl"], r["true_reward"]), fontsize=8,
                         textcoords="offset points", xytext=(4, -10))
    axes[0].set_xlabel("update")
    axes[1].set_xlabel("KL(pi || pi_ref) (nats), last 10% of updates")
    for ax, name in ((axes[0], "during training"), (axes[1], "end of each run")):
        ax.set_ylabel("reward")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)
