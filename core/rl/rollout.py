"""Collecting experience from vector environments: written once, used by both backends.

Two ways to collect, both returning a *rollout*: time-major host arrays of shape (T, N, ...)
with ``states``, ``next_states`` (the true next observation, the final one at an episode end),
``actions``, ``log_probs``, ``rewards``, ``terminations``, ``truncations`` and ``mask``.

* :func:`collect_episodes` (REINFORCE): reset, then step until every environment has finished
  one episode; steps after an environment's first episode are padding (mask 0). Arrays are
  padded to ``max_steps`` rows, so the update always sees one shape (no TF retracing).
* :func:`collect_steps` (PPO): T steps of every environment, episodes running across rollouts.
  With NEXT_STEP autoreset (see duetrl.core.envs.vector) the step after an episode end is a reset
  step: mask 0.

Sampling noise (Gumbel or N(0, 1)) and PPO's minibatch permutations come from
:class:`NoiseSource`, NumPy seeded, so both backends act and update alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from duetrl.core.envs.vector import EnvInfo


class NoiseSource:
    """Seeded NumPy randomness shared by both backends: action noise and minibatch order."""

    def __init__(self, seed: int, stream: int = 0):
        self.action_rng = np.random.default_rng([seed, stream, 1])
        self.permutation_rng = np.random.default_rng([seed, stream, 2])

    def action_noise(self, num_envs: int, info: EnvInfo) -> np.ndarray:
        """(N, action_dim): Gumbel noise g = -log(-log u) for categories, N(0, 1) for Gaussians."""
        if info.continuous:
            return self.action_rng.standard_normal((num_envs, info.action_dim))
        return self.action_rng.gumbel(size=(num_envs, info.action_dim))

    def permutations(self, epochs: int, batch_size: int, num_minibatches: int) -> np.ndarray:
        """(epochs, num_minibatches, batch_size // num_minibatches) row indices, int64."""
        rows = [self.permutation_rng.permutation(batch_size) for _ in range(epochs)]
        return np.stack(rows).reshape(epochs, num_minibatches, -1).astype(np.int64)


@dataclass
class EnvState:
    """Where each environment is between rollouts (for :func:`collect_steps`)."""

    observations: np.ndarray
    pending_reset: np.ndarray
    episode_return: np.ndarray
    episode_length: np.ndarray
    finished: list = field(default_factory=list)  # (return, length) of completed episodes


def start(envs, seed: int | None) -> EnvState:
    """Reset every environment (seeds ``seed, seed+1, ...``) and start counting episodes."""
    observations, _ = envs.reset(seed=seed)
    n = envs.num_envs
    return EnvState(observations, np.zeros(n, bool), np.zeros(n), np.zeros(n, np.int64))


def _empty(num_steps: int, num_envs: int, info: EnvInfo) -> dict:
    action_shape = (num_steps, num_envs) + ((info.action_dim,) if info.continuous else ())
    return {
        "states": np.zeros((num_steps, num_envs, info.state_dim)),
        "next_states": np.zeros((num_steps, num_envs, info.state_dim)),
        "actions": np.zeros(action_shape, np.float64 if info.continuous else np.int64),
        "log_probs": np.zeros((num_steps, num_envs)),
        "rewards": np.zeros((num_steps, num_envs)),
        "terminations": np.zeros((num_steps, num_envs), bool),
        "truncations": np.zeros((num_steps, num_envs), bool),
        "mask": np.zeros((num_steps, num_envs)),
    }


def _env_step(envs, agent, noise: NoiseSource, info: EnvInfo, observations: np.ndarray):
    """Act on every environment at once; returns (action output, step results)."""
    out = agent.act(observations, noise.action_noise(envs.num_envs, info))
    actions = out["actions"]
    if info.continuous:  # the policy's unclipped action is what its log-prob refers to
        env_actions = np.clip(actions, info.action_low, info.action_high).astype(np.float32)
    else:
        env_actions = actions.astype(np.int64)
    return out, envs.step(env_actions)


def collect_steps(envs, agent, noise: NoiseSource, info: EnvInfo, state: EnvState,
                  num_steps: int) -> tuple[dict, int]:
    """T = ``num_steps`` steps of every environment; returns ``(rollout, env steps taken)``."""
    rollout = _empty(num_steps, envs.num_envs, info)
    for t in range(num_steps):
        out, (next_obs, reward, terminated, truncated, _) = _env_step(
            envs, agent, noise, info, state.observations)
        valid = ~state.pending_reset  # a reset step (NEXT_STEP autoreset) is no transition
        rollout["states"][t], rollout["next_states"][t] = state.observations, next_obs
        rollout["actions"][t], rollout["log_probs"][t] = out["actions"], out["log_probs"]
        rollout["rewards"][t] = np.where(valid, reward, 0.0)
        rollout["terminations"][t] = terminated & valid
        rollout["truncations"][t] = truncated & valid
        rollout["mask"][t] = valid
        state.episode_return += np.where(valid, reward, 0.0)
        state.episode_length += valid
        done = (terminated | truncated) & valid
        for i in np.flatnonzero(done):
            state.finished.append((float(state.episode_return[i]), int(state.episode_length[i])))
        state.episode_return[done], state.episode_length[done] = 0.0, 0
        state.pending_reset, state.observations = done, next_obs
    return rollout, num_steps * envs.num_envs


def collect_episodes(envs, agent, noise: NoiseSource, info: EnvInfo, max_steps: int,
                     seed: int | None = None) -> tuple[dict, int, list]:
    """One episode from each environment, padded to ``max_steps`` rows.

    An episode still running after ``max_steps`` is cut there (the last row is a cut).
    :returns: ``(rollout, env steps taken, [(return, length) of each finished episode])``.
    """
    rollout = _empty(max_steps, envs.num_envs, info)
    observations, _ = envs.reset(seed=seed)
    alive = np.ones(envs.num_envs, bool)
    episode_return = np.zeros(envs.num_envs)
    steps = 0
    for t in range(max_steps):
        out, (next_obs, reward, terminated, truncated, _) = _env_step(
            envs, agent, noise, info, observations)
        steps += envs.num_envs
        rollout["states"][t], rollout["next_states"][t] = observations, next_obs
        rollout["actions"][t], rollout["log_probs"][t] = out["actions"], out["log_probs"]
        rollout["rewards"][t] = np.where(alive, reward, 0.0)
        rollout["terminations"][t] = terminated & alive
        rollout["truncations"][t] = (truncated | (t == max_steps - 1)) & alive
        rollout["mask"][t] = alive
        episode_return += np.where(alive, reward, 0.0)
        alive &= ~(terminated | truncated)
        observations = next_obs
        if not alive.any():
            break
    lengths = rollout["mask"].sum(axis=0)
    return rollout, steps, [(float(r), int(n)) for r, n in zip(episode_return, lengths)]
