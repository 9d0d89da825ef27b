"""benchmarks/dqn.py still runs (tiny settings; speed is never asserted in tests)."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def test_dqn_benchmark_runs_on_tiny_settings() -> None:
    path = Path(__file__).parent.parent / "benchmarks" / "dqn.py"
    spec = importlib.util.spec_from_file_location("bench_dqn", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = module.main(
        ["--seeds", "0", "--total-steps", "300", "--no-sb3", "--json", "--set",
         '{"hidden_dim": 8, "learning_starts": 128, "gradient_steps": 2, "train_freq": 16}'])
    assert results["ours_torch"][0]["env_steps"] >= 300 and results["ratio_tf_torch"] > 0
