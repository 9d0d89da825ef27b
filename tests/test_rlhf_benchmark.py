"""benchmarks/rlhf.py still runs (tiny settings; speed itself is never asserted in tests)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCHMARKS = Path(__file__).parent.parent / "benchmarks"


def test_rlhf_benchmark_runs_on_tiny_settings(capsys) -> None:
    spec = importlib.util.spec_from_file_location("bench_rlhf", BENCHMARKS / "rlhf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = module.main(
        ["--objectives", "rloo,dpo", "--updates", "3", "--min-timed", "1", "--warmup", "1",
         "--prompts", "2", "--group-size", "2", "--pretrain-steps", "5", "--smooth", "1",
         "--target", "0.0"]
    )
    assert set(results["objectives"]) == {"rloo", "dpo"}
    for result in results["objectives"].values():
        for name in ("torch", "tf"):
            assert result[name]["samples_per_s"] > 0 and result[name]["updates_per_s"] > 0
            assert result[name]["time_to_target_s"] is not None  # target 0: the first update
        assert result["tf_vs_torch"]["updates_per_s"] > 0
    assert "tf/torch" in capsys.readouterr().out
