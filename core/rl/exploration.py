"""Exploration varied and measured (outline 2.2.3, 9.2.3): one knob per family, several seeds.

    DQN   the epsilon schedule of eps-greedy acting   (DQNSettings.epsilon_* fields)
    PPO   the entropy coefficient c_H of  L = L_clip + c_v L_V - c_H H[pi]   (PPOSettings.ent_coef)
    LM    the sampling temperature T of  pi_T(y_t) = softmax(z_t / T)   during RLOO training

The two RL families run on :class:`SparseChain`, a corridor whose near end pays a little at
once and whose far end pays much more, but only to a policy that walks all the way: the
classic trap of a learner that stops exploring. The LM family runs RLOO on ``sort-digits``
from the uniform reference (core/rlhf). Every ``run_*`` function returns one row per
(setting, seed); :func:`summarise` turns a metric of those rows into bootstrap CIs over seeds
(core/scale/statistics.py).

The RLHF run loop (core/rlhf/train.py) samples at temperature 1 and has no setting for
another one; :class:`SampleAtTemperature` hands it a backend whose ``generate`` samples at T
(the log-probabilities it returns stay the policy's own, at temperature 1: what the loss and
the KL use), without a change to the loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from duetrl.core.envs import register_envs
from duetrl.core.envs.sparse_chain import (  # noqa: F401  (SparseChain: the env, re-exported)
    CHAIN_ID,
    CHAIN_LENGTH,
    CHAIN_STEPS,
    NEAR_REWARD,
    SparseChain,
)

register_envs()  # duetrl/SparseChain-v0

EPSILON_SCHEDULES: dict[str, dict[str, float]] = {
    "fixed 1.0": {"epsilon_start": 1.0, "epsilon_final": 1.0},
    "1.0 -> 0.05": {"epsilon_start": 1.0, "epsilon_final": 0.05, "exploration_fraction": 0.5},
    "fixed 0.05": {"epsilon_start": 0.05, "epsilon_final": 0.05},
    "0 (greedy)": {"epsilon_start": 0.0, "epsilon_final": 0.0},
}
"""The DQN settings of each epsilon schedule (the decay is linear over half the budget)."""

DQN_CHAIN = {"num_envs": 4, "hidden_dim": 32, "learning_rate": 2e-3, "gamma": 0.95,
             "batch_size": 32, "buffer_size": 2000, "learning_starts": 128, "train_freq": 16,
             "gradient_steps": 16, "target_update_interval": 32, "n_step": 1,
             "eval_episodes": 1, "eval_interval": 10**9}
"""DQN's other settings on the corridor (small and quick; 1-step returns: off-policy)."""

LM_RLOO = {"algo": "rloo", "reference": "uniform", "prompts": 8, "group_size": 8,
           "learning_rate": 5e-3, "warmup": 10}
"""RLOO's settings for the temperature runs, pinned (not RLHFSettings' defaults, which move)."""

PPO_CHAIN = {"num_envs": 8, "num_steps": 32, "hidden_dim": 32, "learning_rate": 3e-3,
             "gamma": 0.95, "update_epochs": 4}
"""PPO's other settings on the corridor."""


def greedy_chain_return(q_or_logits: Any, n: int = CHAIN_LENGTH) -> float:
    """The return of the greedy policy on the corridor, from its scores per cell ``(n, 2)``.

    Walks from cell 1 taking the argmax action until an end or :data:`CHAIN_STEPS` steps:
    1.0 at the far end, ``NEAR_REWARD`` at the near one, 0 if it never ends (a loop).
    """
    scores = np.asarray(q_or_logits, dtype=np.float64)
    if scores.shape != (n, 2):
        raise ValueError(f"q_or_logits: expected scores of shape ({n}, 2), got {scores.shape}")
    cell = 1
    for _ in range(CHAIN_STEPS):
        cell += 1 if scores[cell, 1] > scores[cell, 0] else -1
        if cell == 0:
            return NEAR_REWARD
        if cell == n - 1:
            return 1.0
    return 0.0


def _check_seeds(seeds: Sequence[int]) -> list[int]:
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds: expected at least one seed, got none")
    return seeds


def run_dqn_epsilon(backend: str, schedules: Sequence[str], seeds: Sequence[int],
                    total_steps: int = 3000) -> list[dict[str, Any]]:
    """DQN on the corridor under each epsilon schedule of :data:`EPSILON_SCHEDULES`.

    :returns: one row per (schedule, seed): ``greedy_return`` (the greedy policy after
        ``total_steps`` env steps: 1 far end, 0.1 near end), ``train_return`` (mean return of
        the episodes collected while exploring), ``far_end_share`` (share of those episodes
        that reached the far end).
    """
    from duetrl.core.rl.dqn import DQNTrainer, make_dqn_settings

    unknown = [s for s in schedules if s not in EPSILON_SCHEDULES]
    if unknown or not schedules:
        raise ValueError(f"schedules: expected names from {list(EPSILON_SCHEDULES)}, got "
                         f"{list(schedules)!r}")
    rows = []
    for schedule in schedules:
        for seed in _check_seeds(seeds):
            settings = make_dqn_settings(**DQN_CHAIN, **EPSILON_SCHEDULES[schedule])
            trainer = DQNTrainer(CHAIN_ID, backend, settings, seed=seed, total_steps=total_steps)
            while trainer.env_steps < total_steps:
                trainer.step()
            q = trainer.agent.q_values(np.eye(CHAIN_LENGTH, dtype=np.float32))
            rows.append({"setting": schedule, "seed": seed, **_episode_stats(trainer),
                         "greedy_return": greedy_chain_return(q)})
    return rows


def run_ppo_entropy(backend: str, coefficients: Sequence[float], seeds: Sequence[int],
                    total_steps: int = 8192, **overrides: Any) -> list[dict[str, Any]]:
    """PPO on the corridor with each entropy coefficient ``c_H``.

    :param overrides: PPO settings that replace :data:`PPO_CHAIN`'s (e.g.
        ``normalize_advantages=False``); an unknown name raises ValueError.

    :returns: one row per (coefficient, seed): ``greedy_return`` (the most likely action in
        every cell), ``train_return``, ``far_end_share`` (as :func:`run_dqn_epsilon`'s).
    """
    from duetrl.core.interfaces.rl_settings import make_settings
    from duetrl.core.reference.policy import mlp_forward
    from duetrl.core.rl.train import PolicyGradientTrainer

    if not coefficients or any(not float(c) >= 0 for c in coefficients):
        raise ValueError(f"coefficients: expected entropy weights >= 0, got {list(coefficients)!r}")
    rows = []
    for coefficient in coefficients:
        for seed in _check_seeds(seeds):
            settings = make_settings("ppo", **{**PPO_CHAIN, **overrides},
                                     ent_coef=float(coefficient))
            trainer = PolicyGradientTrainer("ppo", CHAIN_ID, backend, settings, seed=seed,
                                            total_steps=total_steps)
            while trainer.env_steps < total_steps:
                trainer.step()
            params = trainer.backend.export_params(trainer.agent)  # canonical, NumPy
            logits, _ = mlp_forward(params, "policy", np.eye(CHAIN_LENGTH))
            rows.append({"setting": float(coefficient), "seed": seed, **_episode_stats(trainer),
                         "greedy_return": greedy_chain_return(logits)})
    return rows


def _episode_stats(trainer: Any) -> dict[str, float]:
    """Mean training return and the share of episodes that reached the far end."""
    returns = np.array([r for _, r in trainer.episode_log], dtype=np.float64)
    if returns.size == 0:
        return {"train_return": 0.0, "far_end_share": 0.0, "episodes": 0}
    return {"train_return": float(returns.mean()), "far_end_share": float((returns == 1.0).mean()),
            "episodes": int(returns.size)}


class SampleAtTemperature:
    """``backend`` with ``generate`` sampling at ``temperature``; everything else as it is.

    What the RLHF loop gets back is unchanged in meaning: ``log_probs`` are the policy's own
    (temperature 1), so the loss is the policy's, fed samples of pi_T.
    """

    def __init__(self, backend: ModuleType, temperature: float) -> None:
        if not float(temperature) > 0:
            raise ValueError(f"temperature: expected a number > 0, got {temperature!r}")
        self._backend, self.temperature = backend, float(temperature)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def generate(self, model: Any, prompt: np.ndarray, max_new_tokens: int, **sampling: Any):
        return self._backend.generate(model, prompt, max_new_tokens,
                                      temperature=self.temperature, **sampling)


def run_lm_temperature(backend: ModuleType, temperatures: Sequence[float], seeds: Sequence[int],
                       updates: int = 60, beta: float = 0.0) -> list[dict[str, Any]]:
    """RLOO on ``sort-digits`` from the uniform reference, sampling at each temperature T.

    :returns: one row per (T, seed): ``reward`` (mean reward of a fresh batch sampled at
        T = 1 from the trained policy, i.e. the policy itself), ``train_reward`` (mean reward
        of the last 10 training batches, sampled at T), ``distinct`` (share of distinct
        completions in that fresh batch), ``success`` (share of sorted answers in it).
    """
    from duetrl.core.rlhf.train import RLHFRun, RLHFSettings

    if not temperatures:
        raise ValueError("temperatures: expected at least one temperature, got none")
    rows = []
    for temperature in temperatures:
        tempered = SampleAtTemperature(backend, temperature)  # checks T > 0
        for seed in _check_seeds(seeds):
            settings = RLHFSettings(**LM_RLOO, beta=beta, updates=updates, seed=seed)
            run = RLHFRun(tempered, settings)
            rewards = [run.update(u)[0]["reward"] for u in range(updates)]
            run.backend = backend  # the trained policy itself: a fresh batch at T = 1
            fresh = run.sample(updates, stream=1)
            rows.append({"setting": float(temperature), "seed": seed,
                         "reward": float(fresh.rewards.mean()),
                         "train_reward": float(np.mean(rewards[-10:])),
                         "distinct": len(set(fresh.completions)) / len(fresh.completions),
                         "success": float(np.mean(fresh.success))})
    return rows


def summarise(rows: Sequence[dict[str, Any]], metric: str, reps: int = 2000,
              seed: int = 0) -> dict[Any, dict[str, Any]]:
    """Bootstrap CIs over seeds of ``metric``, per setting (core/scale/statistics.py).

    :returns: ``{setting: {"runs", "mean", "mean_ci", "iqm", "iqm_ci", ...}}`` in the order
        the settings first appear in ``rows``.
    :raises ValueError: ``metric`` is not a key of the rows.
    """
    from duetrl.core.scale.statistics import aggregate_statistics

    if not rows or any(metric not in row for row in rows):
        keys = sorted(rows[0]) if rows else []
        raise ValueError(f"metric: expected a key of every row, one of {keys}, got {metric!r}")
    scores: dict[Any, list[float]] = {}
    for row in rows:
        scores.setdefault(row["setting"], []).append(float(row[metric]))
    stats = aggregate_statistics({str(k): np.array(v) for k, v in scores.items()}, reps, seed)
    return {k: stats[str(k)] for k in scores}
