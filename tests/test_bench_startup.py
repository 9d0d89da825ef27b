"""benchmarks/run_all.py reads benchmarks/startup.py's JSON: one row per work, CPU seconds of
the first update beyond a steady one in each backend; never a timing assertion."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).parent.parent / "benchmarks"


def test_the_startup_reader_takes_the_figures_startup_prints():
    spec = importlib.util.spec_from_file_location("bench_run_all_startup",
                                                  BENCHMARKS / "run_all.py")
    run_all = importlib.util.module_from_spec(spec)
    sys.modules["bench_run_all_startup"] = run_all  # dataclasses look their module up
    spec.loader.exec_module(run_all)
    run = lambda cpu, wall: {"startup_cpu_s": cpu, "startup_s": wall}  # noqa: E731
    rows = run_all.startup_rows({
        "load_average_1min": {"before": 2.0, "after": 2.5},
        "runs": {"ppo torch": run(0.01, 0.02), "ppo tf": run(0.8, 1.7),
                 "grpo torch": run(0.02, 0.03), "grpo tf": run(2.1, 4.8)}})
    ppo, grpo = rows
    assert (ppo.torch, ppo.tf, grpo.torch, grpo.tf) == (0.01, 0.8, 0.02, 2.1)
    assert "ppo" in ppo.work and "grpo" in grpo.work and "4.8" in grpo.note
    assert "startup" in [b.name for b in run_all.BENCHMARKS]
