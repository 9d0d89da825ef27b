"""The mirror holds: same files, same public names in the same order; core imports no framework."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
RL_FILES = ["agents.py", "losses.py", "optim.py", "policy.py", "reinforce.py", "returns.py"]


def top_level_names(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.append(node.name)
            if isinstance(node, ast.ClassDef):
                names += [f"{node.name}.{n.name}" for n in node.body
                          if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")
                          and n.name not in ("build", "call", "forward", "get_config")]
    return [n for n in names if not n.split(".")[-1].startswith("_")]


@pytest.mark.parametrize("name", RL_FILES)
def test_backend_files_mirror_each_other(name):
    torch_names = top_level_names(ROOT / "backends" / "torch" / name)
    tf_names = top_level_names(ROOT / "backends" / "tf" / name)
    assert torch_names == tf_names


def test_backends_export_the_same_names_in_the_same_order(backends):
    assert backends["torch"].__all__ == backends["tf"].__all__
    for name in backends["torch"].__all__:
        assert hasattr(backends["torch"], name) and hasattr(backends["tf"], name), name


def test_rl_core_imports_no_framework():
    modules = ["duetrl.core.rl.train", "duetrl.core.rl.session", "duetrl.core.rl.compare", "duetrl.core.cli.rl",
               "duetrl.core.cli.demo", "duetrl.core.reference.algorithms", "duetrl.core.envs", "duetrl.core.cli"]
    code = (f"import sys; import {', '.join(modules)}; "
            "bad = [m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_identity_envs_pass_gymnasiums_checker():
    import gymnasium as gym
    from gymnasium.utils.env_checker import check_env

    from duetrl.core.envs import ENV_IDS

    for env_id in ENV_IDS:
        check_env(gym.make(env_id).unwrapped)
