"""Importing a TensorFlow module of duetrl directly is as safe as ``load_backend("tf")``: the
reproducible-floats switch is set and torch is loaded before TensorFlow (core/backend.py)."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = """
import os, sys
from duetrl.backends.tf import dqn  # a submodule, the package's __init__ runs first
loaded = list(sys.modules)
print(loaded.index("torch") < loaded.index("tensorflow"), os.environ["TF_ENABLE_ONEDNN_OPTS"])
"""


def test_a_direct_import_sets_the_environment_and_loads_torch_first(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "0"]
