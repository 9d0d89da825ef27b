"""Where ``duetrl rlhf`` keeps its files, and the reference a run starts from (shared by
``core/cli/rlhf.py`` and ``core/cli/rlhf_sft.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

RUNS = Path("runs/rlhf")


def default_reference_path(task: str) -> Path:
    """Where ``rlhf pretrain`` saves a task's reference: runs/rlhf/<task>/reference.safetensors."""
    return RUNS / task / "reference.safetensors"


def default_reward_model_path(task: str) -> Path:
    """Where ``rlhf reward-model`` saves: runs/rlhf/<task>/reward_model.safetensors."""
    return RUNS / task / "reward_model.safetensors"


def reference_for(settings, path: str | None, quiet: bool) -> tuple:
    """``((config, params), path)`` of the pretrained reference a run starts from (``path``, or
    the task's default, pretrained first when missing); ``(None, None)`` for a uniform one."""
    from duetrl.core.rlhf.pi_ref import load_reference, pretrain_reference

    if settings.reference == "uniform":
        return None, None
    if path is None:
        target = default_reference_path(settings.task)
        if not target.is_file():
            from duetrl.core.backend import load_backend

            print(f"duetrl: no reference at {target}; pretraining one (duetrl rlhf pretrain "
                  f"--task {settings.task})", file=sys.stderr)
            pretrain_reference(load_backend("torch"), settings.task, target, progress=not quiet)
        path = str(target)
    elif not Path(path).is_file():
        raise FileNotFoundError(
            f"--reference-checkpoint: no file at {path!r}; make one with duetrl rlhf pretrain "
            f"--task {settings.task} --out {path}"
        )
    return load_reference(path, settings.task), path
