"""Vector environments for training, with clear errors for what an algorithm cannot handle.

Autoreset: Gymnasium 1.x vector environments reset a finished sub-environment on the *next*
call to ``step`` (``AutoresetMode.NEXT_STEP``, the default, and the only mode of the fast
NumPy CartPole). So the observation returned with ``terminated``/``truncated`` is the true
final observation (we bootstrap from it at a truncation), and the following step is a reset
step whose action is ignored: the rollout marks it with ``mask = 0`` and skips it.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np


@dataclass
class EnvInfo:
    """What an agent needs to know about an environment."""

    env_id: str
    state_dim: int
    action_dim: int
    continuous: bool
    action_low: np.ndarray | None = None
    action_high: np.ndarray | None = None
    reward_threshold: float | None = None
    max_episode_steps: int | None = None


def check_env_id(env_id: str) -> gym.envs.registration.EnvSpec:
    """The registered spec of ``env_id``, or a ValueError saying it is unknown."""
    # duetrl's own environments are registered: importing this module ran core/envs/__init__
    try:
        return gym.spec(env_id)
    except gym.error.Error as error:
        raise ValueError(
            f"env: unknown environment id {env_id!r} ({error}); try CartPole-v1, Pendulum-v1 "
            f"or duetrl/Identity-v0"
        ) from None


def make_vector_env(env_id: str, num_envs: int, seed: int | None = None) -> gym.vector.VectorEnv:
    """``num_envs`` copies of ``env_id`` stepped together (NumPy-vectorised where available).

    :param seed: when given, the environments are reset once with seeds ``seed, seed+1, ...``.
    """
    spec = check_env_id(env_id)
    mode = "vector_entry_point" if spec.vector_entry_point is not None else "sync"
    envs = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode)
    if seed is not None:
        envs.action_space.seed(seed)
    return envs


def describe_env(envs: gym.vector.VectorEnv, env_id: str, algorithm: str) -> EnvInfo:
    """Sizes and kind of an environment's spaces, or a ValueError naming what is unsupported."""
    obs_space, action_space = envs.single_observation_space, envs.single_action_space
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        raise ValueError(
            f"env: {algorithm} needs a flat Box observation space, got {obs_space} from {env_id!r}"
        )
    spec = gym.spec(env_id)
    common = dict(env_id=env_id, state_dim=int(obs_space.shape[0]),
                  reward_threshold=spec.reward_threshold,
                  max_episode_steps=spec.max_episode_steps)
    if isinstance(action_space, gym.spaces.Discrete):
        return EnvInfo(action_dim=int(action_space.n), continuous=False, **common)
    if isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
        return EnvInfo(action_dim=int(action_space.shape[0]), continuous=True,
                       action_low=action_space.low, action_high=action_space.high, **common)
    raise ValueError(
        f"env: {algorithm} handles Discrete or 1-D Box action spaces, got {action_space} from "
        f"{env_id!r}"
    )
