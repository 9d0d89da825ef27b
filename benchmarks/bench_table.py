"""The report of ``benchmarks/run_all.py``: the machine it ran on, then one Markdown row per
piece of work, with every ratio a ratio of times measured in that run (lower is faster)."""

from __future__ import annotations

import os
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from bench_rows import Reader, _fmt

PACKAGES = ("torch", "tensorflow-cpu", "tensorflow", "keras", "transformers",
            "stable-baselines3", "trl", "ray")


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
    for package in PACKAGES:
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
    results: list[tuple[Any, dict[str, Any] | None, str, float]],
    quick: bool,
    info: dict[str, str],
    load_after: str,
) -> str:
    """The Markdown report: the machine, then one row per measured piece of work.

    ``results`` holds ``(benchmark, its JSON or None, the error, wall seconds)``; a benchmark
    has a ``name`` and a ``rows`` reader (run_all's ``Benchmark``).
    """
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
        reader: Reader = bench.rows
        for row in reader(result):
            peer = f"{row.peer_name} {_fmt(row.peer)}" if row.peer is not None else "-"
            ratios = (row.time_ratio(row.tf, row.torch), row.time_ratio(row.torch, row.peer),
                      row.time_ratio(row.tf, row.peer))
            cells = [row.work, row.unit, _fmt(row.torch), _fmt(row.tf), _fmt(ratios[0]), peer,
                     _fmt(ratios[1]), _fmt(ratios[2]), row.note]
            lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Wall time of each benchmark script: "
        + ", ".join(f"{b.name} {w:.0f} s" for b, _, _, w in results)
        + ".",
    ]
    return "\n".join(lines) + "\n"
