"""Playing episodes of a text environment with a policy that scores the admissible commands
(outline 3.2.3), for training and evaluation alike (``core/agents/train.py``,
``core/agents/evaluation.py``).

A policy here is a function ``outputs(observations) -> {"log_pi": (S, K), "counts": (S,),
...}`` (``LMAgentRun.outputs``: one batched pass over the states of every episode still
running). Each step of :func:`play` takes, for every such episode,

    a = argmax_k (log pi(a_k | s) + g_k),   g_k ~ Gumbel(0, 1) from ``rng``   (a sample of pi)
    a = argmax_k log pi(a_k | s)                                  (greedy, when ``rng`` is None)

with the noise drawn by core's NumPy generator, so both backends pick the same commands from
the same scores.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from duetrl.core.interfaces.text_env import MAX_ADMISSIBLE

MAX_EPISODE_STEPS = 500
"""An episode still running after this many steps is cut (a truncation), whatever the env."""

Outputs = Callable[[Sequence[Mapping[str, Any]]], Mapping[str, np.ndarray]]
"""A policy's pass over a list of observations: ``log_pi`` (S, K) and ``counts`` (S,) at least."""


def episode_seed(seed: int, update: int, index: int, stream: int = 0) -> int:
    """The reset seed of episode ``index`` of update ``update`` (stream 1: evaluation)."""
    return int(np.random.SeedSequence([seed, 5, stream, update, index]).generate_state(1)[0])


def make_env(env_id: str, **kwargs: Any) -> Any:
    """A Gymnasium text environment (duetrl's are registered by importing duetrl.core.envs);
    ``kwargs`` go to its constructor (e.g. ``split="heldout"``)."""
    import gymnasium as gym

    import duetrl.core.envs  # noqa: F401  (registers duetrl/...)

    return gym.make(env_id, **kwargs)


def env_vocabulary(env: Any) -> list[str]:
    """Every word ``env`` may say: its ``vocabulary()`` (the text-environment contract)."""
    vocabulary = getattr(env.unwrapped, "vocabulary", None)
    if vocabulary is None:
        raise ValueError(f"env: {env.spec.id if env.spec else env} has no vocabulary(); a text "
                         "environment must list its words (core/interfaces/text_env.py)")
    return list(vocabulary())


def play(outputs: Outputs, envs: Sequence[Any], seeds: Sequence[int],
         rng: np.random.Generator | None) -> list[dict[str, Any]]:
    """One episode per seed, episode i in ``envs[i]`` (``len(seeds) <= len(envs)``), all
    stepped together: Gumbel-max samples of pi with noise from ``rng``, or greedy when it is
    None.

    :returns: per episode ``observations``, ``actions``, ``rewards``, ``log_probs`` (log
        pi(a | s) of the command taken) and, when ``outputs`` gives ``values``, ``values``
        (V(s)) (lists, one entry per step), ``terminated``, ``final`` (the last observation)
        and ``success``. The log-probs and values are the ones the commands were chosen with:
        PPO's pi_old and GAE's V need no second pass over the states.
    """
    n = len(seeds)
    observations = [envs[i].reset(seed=int(seed))[0] for i, seed in enumerate(seeds)]
    trajectories: list[dict[str, Any]] = [
        {"observations": [], "actions": [], "rewards": [], "log_probs": [], "values": []}
        for _ in range(n)]
    ends: list[dict[str, Any]] = [{} for _ in range(n)]
    active = list(range(n))
    for _ in range(MAX_EPISODE_STEPS):
        if not active:
            break
        noise = rng.gumbel(size=(n, MAX_ADMISSIBLE)) if rng is not None else None
        out = outputs([observations[i] for i in active])
        still = []
        for row, i in enumerate(active):
            count = int(out["counts"][row])
            scores = out["log_pi"][row, :count]
            if noise is not None:
                scores = scores + noise[i, :count]  # Gumbel-max: a sample of pi
            action = int(np.argmax(scores))
            next_observation, reward, terminated, truncated, info = envs[i].step(action)
            t = trajectories[i]
            t["observations"].append(observations[i])
            t["actions"].append(action)
            t["rewards"].append(float(reward))
            t["log_probs"].append(float(out["log_pi"][row, action]))
            if "values" in out:
                t["values"].append(float(out["values"][row]))
            if terminated or truncated:
                ends[i] = {"terminated": bool(terminated), "final": next_observation,
                           "success": bool(info.get("success", False))}
            else:
                observations[i] = next_observation
                still.append(i)
        active = still
    for i in active:  # cut by MAX_EPISODE_STEPS: a truncation
        ends[i] = {"terminated": False, "final": observations[i], "success": False}
    for t, end in zip(trajectories, ends):
        t.update(end)
    return trajectories


__all__ = ["MAX_EPISODE_STEPS", "Outputs", "env_vocabulary", "episode_seed", "make_env", "play"]
