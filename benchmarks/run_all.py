"""Every benchmark in one run, and one table of the ratios measured in it (``make bench``).

Each benchmark script runs as its own child process, one after another (never two at once),
with ``--json``; this script reads what each printed and writes one Markdown table of
figures and ratios, with the machine, the versions and the thread counts, to
``benchmarks/RESULTS.md`` (``--quick``: ``benchmarks/RESULTS-quick.md``) and the raw JSON
beside it under ``build/bench/``. Every ratio is a ratio of *times* measured in this same run
(a rate r becomes the time 1/r), so lower is faster everywhere:

    tf / torch     the TensorFlow side's time over the PyTorch side's (goal <= 1.3 or 1.5)
    vs peer        our time over the peer's (Hugging Face, Stable-Baselines3, the framework's
                   own layer); < 1: faster than the peer

    python benchmarks/run_all.py --quick      # small sizes, one seed: a few minutes, no peers
    python benchmarks/run_all.py              # the benchmarks' own defaults (16 min on 2 cores)
    python benchmarks/run_all.py --only lm cartpole

``--quick`` shows that every benchmark runs and gives ratios of small workloads, where fixed
costs (tracing, dispatch) weigh more than in the full run; quote speed from the full run.
A benchmark that fails or runs past ``--timeout`` is a row that says so, and the rest go on.

This file runs the scripts; ``bench_rows.py`` reads each one's JSON into rows and
``bench_table.py`` writes the report.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the rows and the table are modules beside this script
    sys.path.insert(0, str(HERE))

from bench_rows import (  # noqa: E402
    Reader,
    Row,  # noqa: F401  (re-exported: tests and callers read run_all.Row)
    _case_rows,
    attention_rows,
    cartpole_rows,
    dqn_rows,
    lm_agent_rows,
    lm_rows,
    qa_rows,
    returns_rows,
    rlhf_rows,
    rlhf_trl_rows,
    startup_rows,
    sweep_rows,
)
from bench_table import machine, table  # noqa: E402


@dataclass
class Benchmark:
    """A script, its arguments in each mode, and how to read its JSON into rows."""

    name: str
    script: str
    quick: list[str]
    full: list[str]
    rows: Reader
    json_to_file: bool = False  # the script takes --json FILE instead of printing JSON


BENCHMARKS = [
    Benchmark("attention", "attention.py", ["--repeats", "5", "--batch", "4", "--length", "64"],
              [], attention_rows),
    Benchmark("returns", "returns.py", ["--repeats", "2", "--sizes", "256x64", "1024x64"], [],
              returns_rows),
    Benchmark("lm", "lm.py",
              ["--n-layer", "2", "--n-embd", "64", "--new-tokens", "64", "--repeats", "3"], [],
              lm_rows),
    Benchmark("cartpole", "cartpole.py", ["--seeds", "1", "--max-steps", "5000", "--no-sb3",
                                          "--listing-episodes", "20"],
              [], cartpole_rows, json_to_file=True),
    Benchmark("dqn", "dqn.py", ["--seeds", "0", "--total-steps", "2000", "--no-sb3"], [],
              dqn_rows),
    Benchmark("rlhf", "rlhf.py", ["--objectives", "grpo", "--updates", "12", "--min-timed", "5"],
              [], rlhf_rows),
    Benchmark("rlhf_trl", "rlhf_trl.py", ["--sizes", "reference"], [], rlhf_trl_rows),
    Benchmark("startup", "startup.py", ["--works", "ppo", "grpo", "--updates", "2"], [],
              startup_rows),
    Benchmark("dialogue", "dialogue.py", ["--threads", "1", "--mle-steps", "40", "--rl-updates",
              "4"], ["--threads", "1"], _case_rows("dialogue (6.1)", "rl_turns_per_s",
                                                   "RL turns/s")),
    Benchmark("translation", "translation.py", ["--quick"], [],
              _case_rows("translation SCST (6.3.2)", "scst_samples_per_s", "SCST samples/s")),
    Benchmark("qa", "qa.py", ["--threads", "1", "--warmup-steps", "100", "--updates", "4"],
              ["--threads", "1"], qa_rows),
    Benchmark("kg", "kg.py", ["--updates", "20", "--families", "4"], [],
              _case_rows("knowledge-graph walks (6.3.3)", "walks_per_s", "walks/s")),
    Benchmark("recommender", "recommender.py", ["--quick", "--seeds", "0"], [],
              _case_rows("top-K off-policy recommender (6.2)", "updates_per_s", "updates/s")),
    Benchmark("lm_agent", "lm_agent.py",
              ["--pretrain-steps", "50", "--updates", "2", "--eval-every", "1",
               "--eval-episodes", "5", "--confirm-episodes", "5", "--dt-steps", "5"], [],
              lm_agent_rows),
    Benchmark("sweep", "sweep.py", ["--quick"], [], sweep_rows),
]


def run_benchmark(
    bench: Benchmark, quick: bool, timeout: float, raw: Path
) -> tuple[dict[str, Any] | None, str, float]:
    """Run one script as a child; (its JSON or None, the error if any, wall seconds)."""
    args = list(bench.quick if quick else bench.full)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        args += ["--json", str(out)] if bench.json_to_file else ["--json"]
        command = [sys.executable, str(HERE / bench.script), *args]
        began = time.perf_counter()
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout, cwd=HERE.parent
            )
        except subprocess.TimeoutExpired:
            return None, f"ran past {timeout:.0f} s", time.perf_counter() - began
        wall = time.perf_counter() - began
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return None, f"exit {done.returncode}: {last[:160]}", wall
        text = out.read_text() if bench.json_to_file else done.stdout
    try:
        result = json.loads(text[text.index("{") :])  # anything logged before the JSON is skipped
    except ValueError:
        return None, "printed no JSON", wall
    (raw / f"{bench.name}.json").write_text(json.dumps(result, indent=2, default=str))
    return result, "", wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one seed, no peers")
    parser.add_argument("--only", nargs="+", choices=[b.name for b in BENCHMARKS])
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds per benchmark (default: 300 quick, 7200 full)",
    )
    parser.add_argument(
        "--out",
        default=None,
        help="the Markdown table (default: "
        "benchmarks/RESULTS.md, or RESULTS-quick.md with --quick)",
    )
    args = parser.parse_args(argv)
    timeout = args.timeout or (300.0 if args.quick else 7200.0)
    out = Path(args.out or HERE / ("RESULTS-quick.md" if args.quick else "RESULTS.md"))
    raw = HERE.parent / "build" / "bench"
    raw.mkdir(parents=True, exist_ok=True)
    info = machine()
    chosen = [b for b in BENCHMARKS if not args.only or b.name in args.only]
    results = []
    for bench in chosen:
        print(f"[{len(results) + 1}/{len(chosen)}] {bench.name} ...", end=" ", flush=True)
        result, error, wall = run_benchmark(bench, args.quick, timeout, raw)
        print(f"{wall:.0f} s" + (f" FAILED: {error}" if error else ""), flush=True)
        results.append((bench, result, error, wall))
    load_after = " ".join(f"{x:.2f}" for x in os.getloadavg())
    out.write_text(table(results, args.quick, info, load_after))
    print(f"wrote {out} (raw JSON under {raw})")
    return 0 if all(r is not None for _, r, _, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
