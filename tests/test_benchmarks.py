"""The benchmark scripts still run (tiny sizes; speed itself is never asserted in tests)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCHMARKS = Path(__file__).parent.parent / "benchmarks"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_attention_benchmark_runs_on_tiny_shapes(capsys) -> None:
    results = load("attention").main(
        ["--batch", "2", "--length", "8", "--d-model", "16", "--heads", "2", "--repeats", "1",
         "--threads", "1", "--json"]
    )
    assert set(results) == {"torch", "tf"}
    assert all(r["ours"] > 0 and r["builtin"] > 0 for r in results.values())
