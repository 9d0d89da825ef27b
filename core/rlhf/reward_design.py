"""Reward design, measured (outline 2.3.2, 3.1.4, 9.2.1): one task, five rewards, five runs.

The task is ``sort-prompt`` (core/rlhf/tasks.py): after ``"31415926:"`` the answer must be
``"11234569"`` and the stop token. Its **true objective** is that exact answer (``success``);
the **true reward** is its partial credit, the share of the 8 positions equal to the sorted
prompt, halved without the stop. The policy starts from the pretrained reference (it answers
with the prompt's digits in no order) and is trained, with the same RL settings, against each
of these rewards; the runs are then scored on the true reward and the true objective:

===============  ==========================================  ===============================
design           r(prompt, completion)                       what RL can exploit
===============  ==========================================  ===============================
pairs            share of sorted adjacent pairs (the          any sorted string pays 1: a
                 sort-digits rule; the prompt is ignored)     constant answer is optimal
sparse           1 for the exact sorted answer and stop,      nothing to exploit, nothing to
                 else 0                                       learn: pi_ref almost never
                                                              succeeds, so every reward is 0
no-stop          share of positions right (prompt-aware),     the stop token costs nothing:
                 the stop ignored                             the policy may run on
learned          a Bradley-Terry reward model fitted to       its errors where it saw no
                 pi_ref's pairs labelled by the true reward   data (over-optimisation)
prompt+stop      share of positions right, halved without     (the design that works)
                 the stop (sort-prompt's own reward)
===============  ==========================================  ===============================

:func:`run_design` trains one design in one backend and logs, per update, the design's reward
(``reward``), the ``true_reward``, ``success`` (exact answer), ``stopped`` and ``kl``;
:func:`design_table` turns the runs into the table, and :func:`sample_profile` describes the
last samples in measured words (sorted? stopped? one constant answer? the prompt's digits?).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.rlhf.tasks import (
    DIGITS,
    SORT_LENGTH,
    SORT_PROMPT,
    RewardFn,
    TextTask,
    sorted_pairs_fraction,
    sorted_prompt,
    sorted_prompt_credit,
    strip_stop,
)


def pairs_reward(prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
    """r = share of the 7 adjacent pairs with x[i+1] >= x[i] (sort-digits' rule; the prompt is
    never read)."""
    return np.array([sorted_pairs_fraction(c) for c in completions], dtype=np.float64)


def sparse_reward(prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
    """r = 1 when the completion is exactly the sorted prompt and the stop, else 0."""
    return SORT_PROMPT.success(prompts, completions).astype(np.float64)


def credit_ignoring_stop(prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
    """r = (1/8) #{i < 8 : c_i = s_i} over the text before the stop (or the first 8 characters
    when there is none): sort-prompt's credit without its halving, so running on is free."""
    return np.array([sorted_prompt_credit(p, strip_stop(c)[0][:SORT_LENGTH] + "\n")
                     for p, c in zip(prompts, completions)], dtype=np.float64)


def positional_credit(answers: np.ndarray, targets: np.ndarray, stopped: np.ndarray) -> np.ndarray:
    """The batched float64 reference of sort-prompt's reward on token ids:

        r_b = (1 / L) sum_{i<L} [a_{b,i} = s_{b,i}] * (1 if stopped_b else 1/2)

    :param answers: ``(B, L)`` ids of the first L completion tokens.
    :param targets: ``(B, L)`` ids of the sorted prompts.
    :param stopped: ``(B,)`` whether each completion emitted the stop token.
    """
    answers, targets = np.asarray(answers), np.asarray(targets)
    if answers.shape != targets.shape or answers.ndim != 2:
        raise ValueError(f"answers, targets: expected two (B, L) arrays of one shape, got "
                         f"{answers.shape} and {targets.shape}")
    share = (answers == targets).mean(axis=1, dtype=np.float64)
    return np.where(np.asarray(stopped, dtype=bool), share, 0.5 * share)


def check_prompt_aware(number: int, reward_fn: RewardFn) -> bool:
    """An exercise's check: does ``reward_fn`` close the pairs rule's loophole? It must pay 1
    for the sorted prompt and the stop, less than 1/2 for a constant sorted answer that is not
    the prompt's, less for the prompt's digits in the wrong order than sorted, and stay in
    [0, 1]. Prints ✓ or ✗ with what was expected (never raises on a wrong answer)."""
    from duetrl.core.exercises import report

    prompts = ["31415926:", "90000009:", "55321100:", "31415926:", "90000009:", "55321100:",
               "31415926:", "90000009:"]
    completions = ["11234569\n", "00000099\n", "00112355\n", "44444444\n", "11111111\n",
                   "99999999\n", "96543211\n", "90000009\n"]
    try:
        rewards = np.asarray(reward_fn(prompts, completions), dtype=np.float64).reshape(-1)
    except Exception as error:  # the student's code, whatever it raises
        return report(number, False, f"raised {type(error).__name__}: {error}")
    shown = ", ".join(f"{c.strip()!r} after {p!r}: {r:.3f}"
                      for p, c, r in zip(prompts, completions, rewards))
    if rewards.shape != (len(prompts),) or not np.all(np.isfinite(rewards)):
        return report(number, False, f"expected {len(prompts)} finite rewards, got {rewards}")
    problems = []
    if not np.allclose(rewards[:3], 1.0):
        problems.append("1 for each sorted prompt with the stop")
    if not np.all(rewards[3:6] < 0.5):
        problems.append("< 0.5 for a constant sorted answer that is not the prompt's")
    if not np.all(rewards[6:] < rewards[[0, 1]]):
        problems.append("less for the prompt's digits in the wrong order than sorted")
    if np.any(rewards < 0) or np.any(rewards > 1):
        problems.append("every reward in [0, 1]")
    if problems:
        return report(number, False, f"expected {'; '.join(problems)}; got {shown}")
    return report(number, True, f"the loophole is closed: {shown}")


@dataclass(frozen=True)
class RewardDesign:
    """One reward for sort-prompt: its name, the rule in words, the loophole it leaves, and the
    function (None for ``learned``: a reward model is fitted at run time)."""

    name: str
    rule: str
    loophole: str
    reward_fn: RewardFn | None


DESIGNS: dict[str, RewardDesign] = {d.name: d for d in (
    RewardDesign("pairs", "share of sorted adjacent pairs; the prompt is ignored",
                 "a constant sorted answer pays 1", pairs_reward),
    RewardDesign("sparse", "1 for the exact sorted answer and the stop, else 0",
                 "no signal: pi_ref never succeeds", sparse_reward),
    RewardDesign("no-stop", "share of positions right; the stop is ignored",
                 "the stop costs nothing: run on", credit_ignoring_stop),
    RewardDesign("learned", "Bradley-Terry reward model on pi_ref's labelled pairs",
                 "its errors off pi_ref's samples", None),
    RewardDesign("prompt+stop", "share of positions right, halved without the stop",
                 "none seen (the design that works)", SORT_PROMPT.reward_fn),
)}
"""The designs compared, in the order of the table."""


def get_design(name: str) -> RewardDesign:
    """The design called ``name``; a ValueError listing the known ones otherwise."""
    if name not in DESIGNS:
        raise ValueError(f"design: expected one of {list(DESIGNS)}, got {name!r}")
    return DESIGNS[name]


def design_task(design: str | RewardDesign, reward_fn: RewardFn | None = None) -> TextTask:
    """sort-prompt with the design's reward (``reward_fn`` for ``learned``: the reward model);
    prompts, corpus, stop and success (the true objective) stay sort-prompt's."""
    design = get_design(design) if isinstance(design, str) else design
    fn = reward_fn if reward_fn is not None else design.reward_fn
    if fn is None:
        raise ValueError(f"reward_fn: design {design.name!r} needs one (a fitted reward model)")
    return dataclasses.replace(SORT_PROMPT, name=f"sort-prompt[{design.name}]", reward_fn=fn)


def sample_profile(prompts: Sequence[str], completions: Sequence[str]) -> dict[str, float]:
    """Measured shares of ``completions``: ``stopped`` (the stop emitted), ``sorted`` (8 digits
    in non-decreasing order before the stop or the limit), ``prompt_digits`` (the prompt's
    digits, any order), ``exact`` (the true objective), ``distinct`` (distinct answers over
    answers: near 0 for one constant answer), and ``mode``, the commonest answer."""
    if len(prompts) != len(completions) or not completions:
        raise ValueError(f"completions: expected one per prompt (>= 1), got {len(completions)} "
                         f"for {len(prompts)} prompts")
    heads = [strip_stop(c) for c in completions]
    texts = [h[:SORT_LENGTH] for h, _ in heads]
    answers, counts = np.unique(texts, return_counts=True)
    return {
        "stopped": float(np.mean([s for _, s in heads])),
        "sorted": float(np.mean([len(t) == SORT_LENGTH and all(ch in DIGITS for ch in t)
                                 and list(t) == sorted(t) for t in texts])),
        "prompt_digits": float(np.mean([sorted(t) == sorted(p.rstrip(":"))
                                        for p, t in zip(prompts, texts)])),
        "exact": float(np.mean([c == sorted_prompt(p) + SORT_PROMPT.stop
                                for p, c in zip(prompts, completions)])),
        "distinct": len(answers) / len(texts),
        "mode": str(answers[np.argmax(counts)]),
    }


def describe(profile: dict[str, float]) -> str:
    """One line of what the samples look like, from :func:`sample_profile`'s figures."""
    parts = [f"{profile['sorted']:.0%} sorted", f"{profile['stopped']:.0%} stop",
             f"{profile['prompt_digits']:.0%} the prompt's digits",
             f"{profile['exact']:.0%} exact"]
    if profile["distinct"] <= 0.25:
        parts.append(f"mostly {profile['mode']!r}")
    return ", ".join(parts)


@dataclass
class DesignRun:
    """One design trained in one backend: per-update ``history`` (reward = the design's,
    true_reward, success, stopped, kl) and the last update's ``prompts`` and ``completions``."""

    design: str
    backend: str
    history: dict[str, list[float]] = field(default_factory=dict)
    prompts: list[str] = field(default_factory=list)
    completions: list[str] = field(default_factory=list)


def run_design(
    backend: ModuleType,
    design: str,
    reference: tuple[GPTConfig, dict[str, np.ndarray]],
    updates: int,
    reward_fn: RewardFn | None = None,
    **settings: Any,
) -> DesignRun:
    """Train a policy from ``reference`` for ``updates`` updates against ``design``'s reward.

    :param reward_fn: the reward model for ``learned`` (any ``RewardFn``; None otherwise).
    :param settings: RLHFSettings fields (algo, beta, learning_rate, seed, prompts, ...); the
        missing-stop penalty is 0 unless given: each design says what it pays for the stop.
    """
    from duetrl.core.rlhf.train import RLHFRun, RLHFSettings

    task = design_task(design, reward_fn)
    run = RLHFRun(backend, RLHFSettings(task=task, updates=updates,  # type: ignore[arg-type]
                                        **{"missing_stop_penalty": 0.0, **settings}), reference)
    result = DesignRun(design, backend.NAME)
    for update in range(updates):
        metrics, data = run.update(update)
        true = SORT_PROMPT.rewards(data.prompts, data.completions)
        values = {**metrics, "true_reward": float(true.mean())}
        for key in ("update", "reward", "true_reward", "success", "stopped", "kl"):
            result.history.setdefault(key, []).append(values[key])
        result.prompts, result.completions = list(data.prompts), list(data.completions)
    return result


def design_table(runs: Sequence[DesignRun], last_fraction: float = 0.1) -> list[dict[str, Any]]:
    """One row per run: the design's reward at the start and the end, the true reward, the
    success rate, the stop rate and KL (each over the last ``last_fraction`` of updates), and
    what the last samples look like."""
    rows = []
    for r in runs:
        h = r.history
        tail = max(1, math.ceil(last_fraction * len(h["reward"])))
        end = {k: float(np.mean(h[k][-tail:])) for k in ("reward", "true_reward", "success",
                                                         "stopped", "kl")}
        profile = sample_profile(r.prompts, r.completions)
        rows.append({"design": r.design, "backend": r.backend,
                     "initial_reward": float(h["reward"][0]), "reward": end["reward"],
                     "initial_true_reward": float(h["true_reward"][0]),
                     "true_reward": end["true_reward"], "success": end["success"],
                     "stopped": end["stopped"], "kl": end["kl"], "samples": describe(profile),
                     "example": f"{r.prompts[0]} -> {r.completions[0]!r}"})
    return rows


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The table as fixed-width text."""
    lines = [f"{'design':<12} {'backend':<6} {'its reward':>12} {'true reward':>12} "
             f"{'success':>8} {'KL':>6}  samples"]
    for r in rows:
        lines.append(f"{r['design']:<12} {r['backend']:<6} "
                     f"{r['initial_reward']:5.2f}->{r['reward']:4.2f} "
                     f"{r['initial_true_reward']:5.2f}->{r['true_reward']:4.2f} "
                     f"{r['success']:8.2f} {r['kl']:6.2f}  {r['samples']}; {r['example']}")
    return "\n".join(lines)


def plot_designs(runs: Sequence[DesignRun], path: str | Path, title: str = "") -> Path:
    """Three panels against updates, one line per run (5-update moving averages): the design's
    own reward, the true reward, and the stop rate."""
    from duetrl.core.plots import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for r in runs:
        style = "--" if r.backend == "tf" else "-"
        for ax, key in zip(axes, ("reward", "true_reward", "stopped")):
            values = np.asarray(r.history[key])
            window = min(5, len(values))
            smooth = np.convolve(values, np.ones(window) / window, mode="valid")
            steps = np.asarray(r.history["update"])[len(values) - len(smooth):]
            ax.plot(steps, smooth, style, label=f"{r.design} ({r.backend})")
    for ax, name in zip(axes, ("the design's own reward", "true reward (sorted prompt + stop)",
                               "share of completions that stop")):
        ax.set_xlabel("update")
        ax.set_title(name)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)
