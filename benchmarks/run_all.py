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
    python benchmarks/run_all.py              # the benchmarks' own defaults (an hour or more)
    python benchmarks/run_all.py --only lm cartpole

``--quick`` shows that every benchmark runs and gives ratios of small workloads, where fixed
costs (tracing, dispatch) weigh more than in the full run; quote speed from the full run.
A benchmark that fails or runs past ``--timeout`` is a row that says so, and the rest go on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


@dataclass
class Row:
    """One line of the table: a piece of work measured in both backends and perhaps a peer."""

    work: str
    unit: str
    torch: float | None = None
    tf: float | None = None
    peer: float | None = None
    peer_name: str = ""
    higher_is_better: bool = False  # a rate (tokens/s); else a time
    note: str = ""

    def time_ratio(self, ours: float | None, other: float | None) -> float | None:
        """ours' time over other's: t_ours / t_other, or r_other / r_ours for rates."""
        if ours is None or other is None or ours <= 0 or other <= 0:
            return None
        return other / ours if self.higher_is_better else ours / other


@dataclass
class Benchmark:
    """A script, its arguments in each mode, and how to read its JSON into rows."""

    name: str
    script: str
    quick: list[str]
    full: list[str]
    rows: Callable[[dict[str, Any]], list[Row]]
    json_to_file: bool = False  # the script takes --json FILE instead of printing JSON
    extra: dict[str, list[str]] = field(default_factory=dict)


def _get(d: dict[str, Any], *keys: str) -> Any:
    """d[k1][k2]... or None when any key is missing."""
    for key in keys:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def attention_rows(r: dict[str, Any]) -> list[Row]:
    return [
        Row(
            "multi-head attention, forward + backward",
            "ms",
            torch=_get(r, "torch", "ours"),
            tf=_get(r, "tf", "ours"),
            peer=_get(r, "torch", "builtin"),
            peer_name="torch SDPA module",
            note=f"tf's own keras MHA: {_fmt(_get(r, 'tf', 'builtin'))} ms",
        )
    ]


def returns_rows(r: dict[str, Any]) -> list[Row]:
    return [
        Row(
            f"discounted returns, scan, {size}",
            "ms",
            torch=_get(v, "torch", "scan"),
            tf=_get(v, "tf", "scan"),
            peer=_get(v, "torch", "matrix"),
            peer_name="torch matrix form",
        )
        for size, v in r.items()
    ]


def lm_rows(r: dict[str, Any]) -> list[Row]:
    hf = r.get("hugging_face") or {}
    return [
        Row(
            "GPT training",
            "tokens/s",
            torch=_get(r, "torch", "train_tokens_per_second"),
            tf=_get(r, "tf", "train_tokens_per_second"),
            peer=hf.get("train_tokens_per_second"),
            peer_name="HF GPT-2",
            higher_is_better=True,
        ),
        Row(
            "cached generation, batch 1",
            "tokens/s",
            torch=_get(r, "torch", "generate_tokens_per_second_cached"),
            tf=_get(r, "tf", "generate_tokens_per_second_cached"),
            peer=hf.get("generate_tokens_per_second_cached"),
            peer_name="HF generate",
            higher_is_better=True,
        ),
        Row(
            "one decode step",
            "us",
            torch=_get(r, "torch", "decode_step_breakdown_us", "decode_step_us"),
            tf=_get(r, "tf", "decode_step_breakdown_us", "decode_step_us"),
        ),
    ]


def _median_wall(
    runs: list[dict[str, Any]] | None, key: str = "wall_s"
) -> tuple[float | None, str]:
    """Median seconds (``key``: wall_s or cpu_s) over seeds, and how many solved (every seed
    counts); None when a run lacks the figure."""
    if not runs or any(key not in run for run in runs):
        return None, ""
    walls = sorted(run[key] for run in runs)
    solved = sum(bool(run.get("solved")) for run in runs)
    return walls[len(walls) // 2], f"{solved}/{len(runs)} solved"


def cartpole_rows(r: dict[str, Any]) -> list[Row]:
    rows = []
    for key, what in (("wall_s", "wall"), ("cpu_s", "CPU")):
        sb3, sb3_note = _median_wall(r.get("sb3_ppo/torch"), key)
        for algo in ("ppo", "reinforce_baseline"):
            t, t_note = _median_wall(r.get(f"{algo}/torch"), key)
            f, f_note = _median_wall(r.get(f"{algo}/tf"), key)
            if t is None and f is None:
                continue
            note = f"torch {t_note}, tf {f_note}" + (
                f", SB3 {sb3_note}" if sb3 is not None else "")
            rows.append(
                Row(
                    f"CartPole-v1 {algo}, {what} to solve (median)",
                    "s",
                    torch=t,
                    tf=f,
                    peer=sb3,
                    peer_name="SB3 PPO",
                    note=note,
                )
            )
    return rows


def dqn_rows(r: dict[str, Any]) -> list[Row]:
    walls = r.get("median_wall_s") or {}
    return [
        Row(
            "CartPole-v1 DQN, wall (median)",
            "s",
            torch=walls.get("ours_torch"),
            tf=walls.get("ours_tf"),
            peer=walls.get("sb3"),
            peer_name="SB3 DQN",
        )
    ]


def rlhf_rows(r: dict[str, Any]) -> list[Row]:
    rows = []
    for algo, v in (r.get("objectives") or {}).items():
        rows.append(
            Row(
                f"sort-digits {algo}, one update (median)",
                "updates/s",
                torch=_get(v, "torch", "updates_per_s"),
                tf=_get(v, "tf", "updates_per_s"),
                higher_is_better=True,
                note=f"first update torch {_fmt(_get(v, 'torch', 'first_update_s'))} s, "
                f"tf {_fmt(_get(v, 'tf', 'first_update_s'))} s",
            )
        )
        t, f = _get(v, "torch", "time_to_target_s"), _get(v, "tf", "time_to_target_s")
        if t is not None or f is not None:
            rows.append(Row(f"sort-digits {algo}, wall to mean reward 0.9", "s", torch=t, tf=f))
    trl = r.get("trl")
    if rows and trl:
        rows[-1].note += f" TRL: {trl}"
    return rows


def rlhf_trl_rows(r: dict[str, Any]) -> list[Row]:
    """Per model size: wall and process-CPU seconds to mean reward 0.9, vs TRL's GRPOTrainer."""
    rows = []
    for size, v in (r.get("sizes") or {}).items():
        updates = ", ".join(
            f"{name} {_fmt(_get(v, name, 'updates_to_target'))}"
            for name in ("torch", "tf", "trl") if name in v
        )
        for key, what in (("time_to_target_s", "wall"), ("cpu_to_target_s", "CPU")):
            rows.append(
                Row(
                    f"sort-digits GRPO, {size} GPT ({_fmt(v.get('parameters'))} parameters), "
                    f"{what} to mean reward {_fmt(r.get('target'))}",
                    "s",
                    torch=_get(v, "torch", key),
                    tf=_get(v, "tf", key),
                    peer=_get(v, "trl", key),
                    peer_name=f"TRL {r.get('trl')} GRPOTrainer" if r.get("trl") else "",
                    note=f"updates to the target: {updates}; same weights, settings matched",
                )
            )
    return rows


def startup_rows(r: dict[str, Any]) -> list[Row]:
    """Per work: the first update's CPU seconds beyond a steady one (tracing, compiling)."""
    works: dict[str, dict[str, Any]] = {}
    for name, v in (r.get("runs") or {}).items():
        work, backend = name.split()
        works.setdefault(work, {})[backend] = v
    load = r.get("load_average_1min") or {}
    return [
        Row(
            f"{work}: first update beyond a steady one (start-up), CPU",
            "s",
            torch=_get(v, "torch", "startup_cpu_s"),
            tf=_get(v, "tf", "startup_cpu_s"),
            note=f"wall torch {_fmt(_get(v, 'torch', 'startup_s'))} s, tf "
            f"{_fmt(_get(v, 'tf', 'startup_s'))} s; load {_fmt(load.get('before'))}; "
            "goal: tf <= 1 s",
        )
        for work, v in works.items()
    ]


def _case_rows(title: str, rate: str, unit: str) -> Callable[[dict[str, Any]], list[Row]]:
    """Rows of a case-study benchmark: its whole run's wall time and one rate."""

    def rows(r: dict[str, Any]) -> list[Row]:
        return [
            Row(
                f"{title}, whole run",
                "s",
                torch=_get(r, "torch", "wall_s"),
                tf=_get(r, "tf", "wall_s"),
            ),
            Row(
                f"{title}, {unit}",
                unit,
                torch=_get(r, "torch", rate),
                tf=_get(r, "tf", rate),
                higher_is_better=True,
            ),
        ]

    return rows


def qa_rows(r: dict[str, Any]) -> list[Row]:
    return [
        Row(
            "QA warm-up + GRPO, whole run",
            "s",
            torch=_get(r, "torch", "total_s"),
            tf=_get(r, "tf", "total_s"),
            note=f"greedy accuracy torch {_fmt(_get(r, 'torch', 'warmup_greedy'))} -> "
            f"{_fmt(_get(r, 'torch', 'rl_greedy'))}",
        )
    ]


def lm_agent_rows(r: dict[str, Any]) -> list[Row]:
    return [
        Row(
            "LM agent (KeyDoor), one PPO update",
            "updates/s",
            torch=_get(r, "torch", "updates_per_s"),
            tf=_get(r, "tf", "updates_per_s"),
            higher_is_better=True,
        ),
        Row(
            "Decision Transformer training",
            "tokens/s",
            torch=_get(r, "torch", "dt_tokens_per_s"),
            tf=_get(r, "tf", "dt_tokens_per_s"),
            higher_is_better=True,
        ),
    ]


def sweep_rows(r: dict[str, Any]) -> list[Row]:
    seq, ray = _get(r, "sequential", "wall_s"), _get(r, "ray", "wall_s")
    return [
        Row(
            f"sweep of {r.get('runs', '?')} runs, wall",
            "s",
            torch=ray,
            peer=seq,
            peer_name="--sequential",
            note=f"through local Ray (torch column); Ray start {_fmt(r.get('ray_init_s'))} s, "
            f"child start {_fmt(r.get('child_start_s'))} s",
        )
    ]


BENCHMARKS = [
    Benchmark(
        "attention",
        "attention.py",
        ["--repeats", "5", "--batch", "4", "--length", "64"],
        [],
        attention_rows,
    ),
    Benchmark(
        "returns",
        "returns.py",
        ["--repeats", "2", "--sizes", "256x64", "1024x64"],
        [],
        returns_rows,
    ),
    Benchmark(
        "lm",
        "lm.py",
        ["--n-layer", "2", "--n-embd", "64", "--new-tokens", "64", "--repeats", "3"],
        [],
        lm_rows,
    ),
    Benchmark(
        "cartpole",
        "cartpole.py",
        ["--seeds", "1", "--max-steps", "5000", "--no-sb3"],
        [],
        cartpole_rows,
        json_to_file=True,
    ),
    Benchmark("dqn", "dqn.py", ["--seeds", "0", "--total-steps", "2000", "--no-sb3"], [], dqn_rows),
    Benchmark(
        "rlhf",
        "rlhf.py",
        ["--objectives", "grpo", "--updates", "12", "--min-timed", "5"],
        [],
        rlhf_rows,
    ),
    Benchmark("rlhf_trl", "rlhf_trl.py", ["--sizes", "reference"], [], rlhf_trl_rows),
    Benchmark("startup", "startup.py", ["--works", "ppo", "grpo", "--updates", "2"], [],
              startup_rows),
    Benchmark(
        "dialogue",
        "dialogue.py",
        ["--threads", "1", "--mle-steps", "40", "--rl-updates", "4"],
        ["--threads", "1"],
        _case_rows("dialogue (6.1)", "rl_turns_per_s", "RL turns/s"),
    ),
    Benchmark(
        "translation",
        "translation.py",
        ["--quick"],
        [],
        _case_rows("translation SCST (6.3.2)", "scst_samples_per_s", "SCST samples/s"),
    ),
    Benchmark(
        "qa",
        "qa.py",
        ["--threads", "1", "--warmup-steps", "100", "--updates", "4"],
        ["--threads", "1"],
        qa_rows,
    ),
    Benchmark(
        "kg",
        "kg.py",
        ["--updates", "20", "--families", "4"],
        [],
        _case_rows("knowledge-graph walks (6.3.3)", "walks_per_s", "walks/s"),
    ),
    Benchmark(
        "recommender",
        "recommender.py",
        ["--quick", "--seeds", "0"],
        [],
        _case_rows("top-K off-policy recommender (6.2)", "updates_per_s", "updates/s"),
    ),
    Benchmark(
        "lm_agent",
        "lm_agent.py",
        [
            "--pretrain-steps",
            "50",
            "--updates",
            "2",
            "--eval-every",
            "1",
            "--eval-episodes",
            "5",
            "--confirm-episodes",
            "5",
            "--dt-steps",
            "5",
        ],
        [],
        lm_agent_rows,
    ),
    Benchmark("sweep", "sweep.py", ["--quick"], [], sweep_rows),
]


def _fmt(x: Any) -> str:
    """A figure with three significant digits ('-' when missing)."""
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.3g}" if abs(x) < 1e4 else f"{x:,.0f}"
    return str(x)


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


def machine() -> dict[str, str]:
    """What the figures depend on: CPU, cores, threads, load and the versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = []
    for package in (
        "torch",
        "tensorflow-cpu",
        "tensorflow",
        "keras",
        "transformers",
        "stable-baselines3",
        "trl",
        "ray",
    ):
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            continue
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "versions": ", ".join(versions),
        "threads": "1 per framework unless the benchmark says otherwise (each script's "
        "--threads; see the raw JSON)",
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def table(
    results: list[tuple[Benchmark, dict[str, Any] | None, str, float]],
    quick: bool,
    info: dict[str, str],
    load_after: str,
) -> str:
    """The Markdown report: the machine, then one row per measured piece of work."""
    mode = "quick (small sizes, one seed: fixed costs weigh more)" if quick else "full"
    lines = [
        f"# Benchmarks: one run ({mode})",
        "",
        f"Written by `python benchmarks/run_all.py{' --quick' if quick else ''}` on "
        f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC. Every ratio is of times "
        "measured in this run (lower is faster): tf / torch, and ours / the peer's.",
        "",
        f"- CPU: {info['cpu']}, {info['cores']} cores; Python {info['python']}",
        f"- {info['versions']}",
        f"- threads: {info['threads']}",
        f"- load average (1, 5, 15 min) before: {info['load']}; after: {load_after}",
        "",
        "| work | unit | torch | tf | tf / torch | peer | torch vs peer | tf vs peer | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for bench, result, error, wall in results:
        if result is None:
            lines.append(f"| {bench.name} | | | | | | | | failed: {error} ({wall:.0f} s) |")
            continue
        for row in bench.rows(result):
            peer = f"{row.peer_name} {_fmt(row.peer)}" if row.peer is not None else "-"
            ratios = [
                row.time_ratio(row.tf, row.torch),
                row.time_ratio(row.torch, row.peer),
                row.time_ratio(row.tf, row.peer),
            ]
            lines.append(
                "| "
                + " | ".join(
                    [
                        row.work,
                        row.unit,
                        _fmt(row.torch),
                        _fmt(row.tf),
                        *[_fmt(ratios[0])],
                        peer,
                        *[_fmt(x) for x in ratios[1:]],
                        row.note,
                    ]
                )
                + " |"
            )
    lines += [
        "",
        "Wall time of each benchmark script: "
        + ", ".join(f"{b.name} {w:.0f} s" for b, _, _, w in results)
        + ".",
    ]
    return "\n".join(lines) + "\n"


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
