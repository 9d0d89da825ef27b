"""Evaluating an LM agent (outline 3.2.3, 9.3.2): success rates, the run's summary figures,
its plot, and the transcript of one episode (``duetrl agent eval|watch``).

Every function takes the trainer (``core/agents/train.LMAgentRun``: its ``settings``,
``envs``, ``outputs`` and ``probabilities``); ``LMAgentRun.success_rate``, ``generalisation``,
``evaluate`` and ``plot`` call them. Evaluation episodes use seeds of their own stream
(``episode_seed(..., stream=1)``), never a training episode's, and the same ones for every
policy of a seed, so figures compare policies on the same worlds.

Figures (outline 9.3.2): the success rate over ``eval_episodes`` episodes, greedy
(``success_rate``: argmax pi, what a deployed agent does) and sampled from pi
(``sampled_success_rate``: the policy PPO trains), on the training environment and on its
held-out split (``heldout_success_rate``, ``heldout_sampled_success_rate``: objects and colours
seen in pretraining, never in RL).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from duetrl.core.agents.episodes import MAX_EPISODE_STEPS, episode_seed, make_env, play
from duetrl.core.interfaces.text_env import check_action

LMAgentRun = Any
"""``core/agents/train.LMAgentRun`` (not imported: train imports this module)."""


def success_rate(trainer: LMAgentRun, episodes: int | None = None, split: str | None = None,
                 greedy: bool = True) -> dict[str, float]:
    """Play ``episodes`` seeded evaluation episodes (default ``eval_episodes``): success_rate,
    mean return. ``greedy``: argmax pi, else sampled from pi (noise seeded by the run's seed);
    ``split``: the environment made with this ``split`` (e.g. ``"heldout"``; default: the
    training environment)."""
    s = trainer.settings
    episodes = s.eval_episodes if episodes is None else episodes
    seeds = [episode_seed(s.seed, 0, i, stream=1) for i in range(episodes)]
    envs = trainer.envs if split is None else split_envs(trainer, split)
    rng = None if greedy else np.random.default_rng([s.seed, 11])
    played = []
    for first in range(0, episodes, len(envs)):
        played += play(trainer.outputs, envs, seeds[first: first + len(envs)], rng)
    return {"success_rate": float(np.mean([t["success"] for t in played])),
            "eval_return": float(np.mean([sum(t["rewards"]) for t in played])),
            "eval_episodes": episodes}


def split_envs(trainer: LMAgentRun, split: str) -> list[Any]:
    """``num_envs`` environments of ``split``, made once per trainer (closed by its close())."""
    made = trainer.__dict__.setdefault("_envs_of_split", {})
    if split not in made:
        made[split] = [make_env(trainer.settings.env, split=split)
                       for _ in range(trainer.settings.num_envs)]
    return made[split]


def has_splits(trainer: LMAgentRun) -> bool:
    """Whether the environment takes ``split`` (duetrl's text worlds do)."""
    return hasattr(trainer.envs[0].unwrapped, "split")


def generalisation(trainer: LMAgentRun) -> dict[str, float | None]:
    """Greedy and sampled success on the held-out split (None for an environment without
    splits), and sampled success on the training environment."""
    figures: dict[str, float | None] = {
        "sampled_success_rate": success_rate(trainer, greedy=False)["success_rate"]}
    heldout = has_splits(trainer)
    for prefix, greedy in (("heldout_", True), ("heldout_sampled_", False)):
        figures[f"{prefix}success_rate"] = (
            success_rate(trainer, split="heldout", greedy=greedy)["success_rate"]
            if heldout else None)
    return figures


def summary(trainer: LMAgentRun) -> dict[str, Any]:
    """The figures of the ``--json`` summary after the run loop's base keys."""
    s, h = trainer.settings, trainer.history
    return {
        "env": s.env, "policy": s.policy, **success_rate(trainer), **generalisation(trainer),
        "env_steps": trainer.env_steps, "episodes": trainer.episodes,
        "train_success_rate": h["success_rate"][-1] if h.get("success_rate") else None,
        "env_steps_per_s": (trainer.env_steps / trainer.collect_seconds
                            if trainer.collect_seconds else None),
        "updates_per_s": (trainer.updates / trainer.step_seconds
                          if trainer.step_seconds else None),
    }


def plot(trainer: LMAgentRun, run_dir: Path) -> Path | None:
    """Success rate and mean return of each update's episodes against env steps."""
    if not trainer.history:
        return None
    from duetrl.core.plots import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    h = trainer.history
    for ax, key in zip(axes, ("success_rate", "episode_return")):
        ax.plot(h["env_steps"], h[key])
        ax.set_xlabel("env steps")
        ax.set_ylabel(key.replace("_", " "))
        ax.grid(alpha=0.3)
    fig.suptitle(trainer.description)
    return save_figure(fig, Path(run_dir) / "success.png")


def transcript(trainer: LMAgentRun, seed: int, greedy: bool = True) -> list[dict[str, Any]]:
    """One episode played by ``trainer``'s policy (greedy, or sampled with noise from
    ``seed``): per step the text, each command with its probability, the command taken, the
    reward, and at the end whether it succeeded."""
    env, rng = trainer.envs[0], np.random.default_rng([seed, 13])
    observation, _ = env.reset(seed=seed)
    steps = []
    for _ in range(MAX_EPISODE_STEPS):
        probabilities = trainer.probabilities(observation)
        scores = np.log(probabilities)
        if not greedy:
            scores = scores + rng.gumbel(size=len(probabilities))
        action = check_action(int(np.argmax(scores)), observation["admissible"])
        next_observation, reward, terminated, truncated, info = env.step(action)
        steps.append({"goal": observation["goal"], "text": observation["text"],
                      "commands": list(observation["admissible"]),
                      "probabilities": [float(p) for p in probabilities], "action": action,
                      "reward": float(reward), "done": bool(terminated or truncated),
                      "success": bool(info.get("success", False))})
        if terminated or truncated:
            break
        observation = next_observation
    return steps


__all__ = ["generalisation", "has_splits", "plot", "split_envs", "success_rate", "summary",
           "transcript"]
