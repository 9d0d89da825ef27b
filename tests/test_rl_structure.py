"""RL structure not covered by tests/test_structure.py and tests/test_mirror.py: every algorithm
is one file per backend that reads in the order of the math, and the identity environments
pass Gymnasium's checker."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from duetrl.core.interfaces.rl import ALGORITHMS

ROOT = Path(__file__).parent.parent
MATH_ORDER = ["prepare", "compute_loss", "train_step", "update"]
"""returns or GAE and advantages, the loss, the gradient step, the whole update."""


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_each_algorithm_is_one_file_in_the_order_of_the_math(backend, algorithm):
    tree = ast.parse((ROOT / "backends" / backend / f"{algorithm}.py").read_text())
    functions = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]
    assert [name for name in functions if name in MATH_ORDER] == MATH_ORDER, functions
    assert functions[-1] == "update", "the whole update comes last, after its pieces"


def test_agents_run_the_update_of_their_algorithm_file(backends):
    from duetrl.core.interfaces.rl_settings import make_settings

    for backend in backends.values():
        for algorithm in ALGORITHMS:
            agent = backend.Agent(algorithm, 4, 2, False, make_settings(algorithm), "float32")
            assert agent.algorithm_module.__name__ == f"{backend.__name__}.{algorithm}"


def test_identity_envs_pass_gymnasiums_checker():
    import gymnasium as gym
    from gymnasium.utils.env_checker import check_env

    from duetrl.core.envs import ENV_IDS

    for env_id in ENV_IDS:
        check_env(gym.make(env_id).unwrapped)
