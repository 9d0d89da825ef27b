"""Inputs that several runs of a sweep share, made once before the runs start.

``duetrl rlhf train`` without ``--reference-checkpoint`` (and without ``--reference uniform``)
loads its task's default reference, ``runs/rlhf/<task>/reference.safetensors`` under its
working folder, and pretrains it first when it is missing. Started together, N such runs would
each pretrain that same file and write the same ``reference_run/`` folder at once: N times the
work, and files written by several processes. So the sweep pretrains each missing default
reference once, with the command the runs would have run (``duetrl rlhf pretrain --task T``:
the same settings, torch, seed 0), before any run starts; the runs then find it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from duetrl.core.scale.run_job import child_environment
from duetrl.core.scale.sweep_file import SweepPlan


def default_reference_path(task: str) -> Path:
    """Where ``duetrl rlhf train`` looks for a task's default reference (relative to its
    working folder); ``core/cli/rlhf.py`` says the same (a test checks that they agree: the
    library does not import its command line)."""
    return Path("runs") / "rlhf" / task / "reference.safetensors"


def shared_references(plan: SweepPlan, cwd: str | Path) -> dict[str, Path]:
    """``{task: absolute path}`` of the default references the plan's ``rlhf train`` runs
    load (runs naming a reference-checkpoint, or reference = "uniform", need none)."""
    from duetrl.core.rlhf.settings import RLHFSettings

    defaults = RLHFSettings()
    needed: dict[str, Path] = {}
    for run in plan.runs:
        settings = run.settings
        if (
            run.command != "rlhf train"
            or "reference-checkpoint" in settings
            or settings.get("reference", defaults.reference) == "uniform"
        ):
            continue
        task = str(settings.get("task", defaults.task))
        needed[task] = Path(cwd).resolve() / default_reference_path(task)
    return needed


def prepare_shared_artefacts(
    plan: SweepPlan, cwd: str | Path, threads: int, progress: bool = True
) -> list[str]:
    """Pretrain each missing default reference of the plan once (a child process with
    ``threads`` threads, in ``cwd``); returns what was made, one line each.

    :raises ValueError: a pretraining failed (the runs would fail the same way, each).
    """
    made = []
    for task, path in shared_references(plan, cwd).items():
        if path.is_file():
            continue
        command = [
            sys.executable,
            "-m",
            "duetrl",
            "rlhf",
            "pretrain",
            "--task",
            task,
            "--out",
            str(path),
            "--backend",
            "torch",
            "--threads",
            str(threads),
            "--quiet",
            "--json",
        ]
        if progress:
            print(
                f"sweep: pretraining the default reference of task {task!r} once, before "
                f"the runs that share it ({path})",
                file=sys.stderr,
                flush=True,
            )
        done = subprocess.run(
            command, cwd=cwd, env=child_environment(threads), capture_output=True, text=True
        )
        if done.returncode != 0 or not path.is_file():
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            raise ValueError(
                f"sweep: pretraining the default reference of task {task!r} "
                f"failed ({lines[-1][:300] if lines else done.returncode}); make "
                f"it with `duetrl rlhf pretrain --task {task}`, or set "
                f"reference-checkpoint in the sweep file"
            )
        made.append(f"pretrained the default reference of task {task!r}: {path}")
    return made
