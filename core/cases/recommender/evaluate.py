"""Evaluating a recommender (outline 6.2.3): on the simulator, which knows every user's click
probabilities, and off-line, from events a behaviour policy logged.

On the simulator, at each held-out user's last state s (after her L items):

    top-K reward     1/K sum_{a in top-K of pi(. | s)} p(u, a)     the slate shown, the headline
    expected clicks  sum_a alpha_K(a | s) p(u, a)                  K draws from pi (the paper's J_K)
    oracle           1/K sum of the K largest p(u, .)              what knowing u would give

Off-line, from held-out events (s_n, a_n, r_n, beta(a_n | s_n)) logged by beta, without the
simulator: the click rate of one item drawn from pi, V(pi) = E_s sum_a pi(a | s) p(u, a), by

    IPS = 1/n sum_n w_n r_n,   SNIPS = sum_n w_n r_n / sum_n w_n,   w_n = pi(a_n | s_n) / beta_n

and the expected clicks with w_n = alpha_K(a_n | s_n) / beta(a_n | s_n) (IPS; the paper's
item-wise decomposition of the slate's reward; SNIPS's normalisation assumes E_beta[w] = 1,
which holds for pi, not for alpha_K, whose weights average sum_a alpha_K(a | s) <= K). The
simulator gives each estimate's true value, so the estimators themselves are checked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from duetrl.core.reference.recommender import ips, slate_inclusion, snips


def top_k_items(scores: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` items with the largest scores ``(U, N)`` -> ``(U, k)``, best first (ties: the
    lower id first, as a stable sort)."""
    if not 1 <= k <= scores.shape[-1]:
        raise ValueError(f"k: expected an int in [1, {scores.shape[-1]}], got {k!r}")
    return np.argsort(-scores, axis=-1, kind="stable")[..., :k]


def top_k_reward(scores: np.ndarray, click_probs: np.ndarray, k: int) -> float:
    """Mean over users of 1/K sum of p(u, a) over the top-K items of ``scores``."""
    slate = top_k_items(scores, k)
    return float(np.take_along_axis(click_probs, slate, axis=-1).mean())


def expected_clicks(pi: np.ndarray, click_probs: np.ndarray, k: int) -> float:
    """Mean over states of sum_a alpha_K(a | s) p(u, a): the slate of K draws from pi."""
    return float((slate_inclusion(pi, k) * click_probs).sum(axis=-1).mean())


def simulator_figures(
    pi: np.ndarray, click_probs: np.ndarray, behaviour: np.ndarray, k: int
) -> dict[str, float]:
    """``top_k_reward``, ``expected_clicks``, ``oracle_top_k_reward`` and the logging policy's
    ``behaviour_top_k_reward``, from pi (U, N), the users' p (U, N) and beta (U, N)."""
    return {
        "top_k_reward": top_k_reward(pi, click_probs, k),
        "expected_clicks": expected_clicks(pi, click_probs, k),
        "oracle_top_k_reward": top_k_reward(click_probs, click_probs, k),
        "behaviour_top_k_reward": top_k_reward(behaviour, click_probs, k),
    }


def offline_figures(
    pi_events: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    propensities: np.ndarray,
    click_probs: np.ndarray,
    k: int,
) -> dict[str, float]:
    """IPS and SNIPS of pi's click rate, IPS of the expected clicks, and their true values.

    :param pi_events: pi(. | s_n) at every logged state ``(S, E, N)``.
    :param actions: the logged items ``(S, E)``; ``rewards`` the clicks, ``propensities``
        beta(a_n | s_n), both ``(S, E)``.
    :param click_probs: the users' p(u, .) ``(S, N)`` (the truth the estimates aim at).
    """
    p = click_probs[:, None, :]  # (S, 1, N): a user's p is the same at each of her states
    pi_chosen = np.take_along_axis(pi_events, actions[..., None], axis=-1)[..., 0]
    alpha = slate_inclusion(pi_events, k)  # (S, E, N)
    alpha_chosen = np.take_along_axis(alpha, actions[..., None], axis=-1)[..., 0]
    weights = pi_chosen / propensities
    return {
        "ips": ips(weights, rewards),
        "snips": snips(weights, rewards),
        "true_click_rate": float((pi_events * p).sum(axis=-1).mean()),
        "max_weight": float(weights.max()),
        "ips_expected_clicks": ips(alpha_chosen / propensities, rewards),
        "true_expected_clicks": float((alpha * p).sum(axis=-1).mean()),
    }


def paired_difference(
    x: np.ndarray, y: np.ndarray, reps: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """Seed by seed, d_i = x_i - y_i (the two methods saw the same catalogue, users and logs):
    the mean of d, its 95% percentile-bootstrap CI (seeds resampled; None with one seed), and in
    how many seeds x won."""
    d = np.asarray(x, np.float64) - np.asarray(y, np.float64)
    ci = None
    if len(d) >= 2:
        rng = np.random.default_rng(seed)
        means = d[rng.integers(0, len(d), (reps, len(d)))].mean(axis=1)
        ci = [float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))]
    return {"mean": float(d.mean()), "ci": ci, "wins": int((d > 0).sum()), "seeds": len(d)}


def method_statistics(scores: dict[str, list[float]], reps: int = 2000) -> dict[str, Any]:
    """IQM, mean and their 95% bootstrap CIs of each method's scores over seeds
    (``core/scale/statistics.py``); for top_k against each other method, P(X > Y) with its CI
    and the paired difference (the scores of every method in the same seed order)."""
    from duetrl.core.scale.statistics import aggregate_statistics, improvement_with_ci

    arrays = {name: np.asarray(values, np.float64) for name, values in scores.items()}
    out: dict[str, Any] = {"methods": aggregate_statistics(arrays, reps)}
    if "top_k" in arrays:
        out["p_top_k_better"], out["top_k_minus"] = {}, {}
        for name, values in arrays.items():
            if name != "top_k":
                point, ci = improvement_with_ci(arrays["top_k"], values, reps)
                out["p_top_k_better"][name] = {"p": point, "ci": ci}
                out["top_k_minus"][name] = paired_difference(arrays["top_k"], values, reps)
    return out


def plot_recommender(
    histories: dict[str, dict[str, list[float]]], path: str | Path, switch: int | None = None
) -> Path:
    """Held-out top-K reward of the learned slate, one line per label."""
    from duetrl.core.plots import plot_curves

    curves = {}
    for label, h in histories.items():
        update, reward = np.asarray(h["update"]), np.asarray(h["top_k_reward"])
        evaluated = ~np.isnan(reward)
        curves[f"{label}: top-K reward"] = (update[evaluated], reward[evaluated])
    title = "held-out users" + (f" (supervised warm-up: updates 1-{switch})" if switch else "")
    return plot_curves(
        curves, path, xlabel="update", ylabel="mean click probability of the slate", title=title
    )
