"""Gymnasium environments the book needs, and vector environments for training.

Importing this package registers:

* ``duetrl/Identity-v0``: the observation is the one-hot code of a target among 4; reward 1
  when the action names the target. Episodes are cut after 16 steps (a truncation), so a
  random policy scores 4 and a perfect one 16: the quickest check that a learner learns.
* ``duetrl/IdentityContinuous-v0``: the observation is a target in [-1, 1]; the action is a
  real number in [-1, 1] and the reward -(action - target)^2. Cut after 16 steps.
* ``duetrl/SparseChain-v0``: a corridor of 16 cells, 0.1 at the near end (one step away), 1
  at the far end (14 steps away); cut after 40 steps. The trap of a learner that stops
  exploring (:mod:`duetrl.core.envs.sparse_chain`; outline 2.2.3, 9.2.3).
* ``duetrl/KeyDoor-v0``, ``duetrl/Household-v0``, ``duetrl/TextFrozenLake-v0``: text
  environments (outline 3.2.2; :mod:`duetrl.core.envs.text`).
"""

from __future__ import annotations

import gymnasium as gym

from duetrl.core.envs.identity import IdentityContinuousEnv, IdentityEnv
from duetrl.core.envs.sparse_chain import CHAIN_ID, CHAIN_STEPS, SparseChain
from duetrl.core.envs.vector import EnvInfo, describe_env, make_vector_env

ENV_IDS: tuple[str, ...] = ("duetrl/Identity-v0", "duetrl/IdentityContinuous-v0", CHAIN_ID)
"""The environments with array observations (what vector envs, MLPs and RLlib take)."""

TEXT_ENV_IDS: tuple[str, ...] = ("duetrl/KeyDoor-v0", "duetrl/Household-v0",
                                 "duetrl/TextFrozenLake-v0")
"""The text environments: observations in words, for language-model policies."""

TEXT_ENTRY_POINTS = {
    "duetrl/KeyDoor-v0": "duetrl.core.envs.text.keydoor:KeyDoorEnv",
    "duetrl/Household-v0": "duetrl.core.envs.text.household:HouseholdEnv",
    "duetrl/TextFrozenLake-v0": "duetrl.core.envs.text.frozenlake:TextFrozenLakeEnv",
}
"""The text environments (outline 3.2.2: core/envs/text); each keeps its own time limit."""


def register_envs() -> None:
    """Register duetrl's environments with Gymnasium (safe to call twice)."""
    if "duetrl/Identity-v0" not in gym.registry:
        gym.register("duetrl/Identity-v0", entry_point=IdentityEnv, max_episode_steps=16)
    if "duetrl/IdentityContinuous-v0" not in gym.registry:
        gym.register("duetrl/IdentityContinuous-v0", entry_point=IdentityContinuousEnv,
                     max_episode_steps=16)
    if CHAIN_ID not in gym.registry:
        gym.register(CHAIN_ID, entry_point=SparseChain, max_episode_steps=CHAIN_STEPS)
    for env_id, entry_point in TEXT_ENTRY_POINTS.items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=entry_point)


def newest_env_id(name: str) -> str:
    """The newest registered version of a Gymnasium environment ``name`` (no ``-vN``).

    Versions move between Gymnasium releases: Taxi is ``Taxi-v4`` on Gymnasium 1.4 and
    ``Taxi-v3`` on 1.2 (the release Ray's RLlib pins), so code that must run on both asks here.
    """
    from gymnasium.envs.registration import find_highest_version

    version = find_highest_version(None, name)
    if version is None:
        raise ValueError(f"env: no version of {name!r} is registered with Gymnasium "
                         f"{gym.__version__}")
    return f"{name}-v{version}"


register_envs()

__all__ = ["ENV_IDS", "TEXT_ENV_IDS", "EnvInfo", "IdentityContinuousEnv", "IdentityEnv",
           "SparseChain",
           "describe_env", "make_vector_env", "newest_env_id", "register_envs"]
