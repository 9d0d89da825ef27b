"""run_job continuing a run whose Ray node or worker was lost (``first_attempt``, ``spent_s``,
``history``), with a scripted child and clock: no process, no Ray. The sweep's other scripted
cases are in tests/test_sweep.py."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from duetrl.core.scale import run_job as module
from duetrl.core.scale.sweep_file import RunSpec


def _continued_run(monkeypatch, tmp_path, outcomes: list[tuple[float, int]], max_retries: int,
                   time_limit_s: float | None, first_attempt: int, spent_s: float,
                   history: tuple[str, ...]) -> tuple[dict, list]:
    """Attempt k of this call lasts ``outcomes[k][0]`` seconds of a fake clock and exits with
    ``outcomes[k][1]``; returns the row and each child's time limit."""
    clock = SimpleNamespace(now=1000.0)  # a clock does not start at 0
    limits: list = []

    def run_child(job, argv, limit_s, on_child_start):
        seconds, code = outcomes[len(limits)]
        limits.append(limit_s)
        clock.now += seconds
        return code, "boom" if code else "", None

    monkeypatch.setattr(module, "_run_child", run_child)
    monkeypatch.setattr(module, "time",
                        SimpleNamespace(monotonic=lambda: clock.now, strftime=time.strftime))
    spec = RunSpec("r", "train reinforce", "reinforce", "torch", 0, "CartPole-v1",
                   ("train", "reinforce"), {}, max_retries, time_limit_s, 1)
    job = module.RunJob(spec, str(tmp_path), 1, str(tmp_path), False, first_attempt, spent_s,
                        history)
    return module.run_job(job), limits


def test_scripted_continuation_counts_the_time_and_attempts_already_spent(
    monkeypatch, tmp_path
) -> None:
    """Attempt 1 ran 4 s of a 10 s budget before its worker was lost; continued elsewhere,
    attempt 2 gets the 6 s left and fails after 3 s, attempt 3 the 3 s left and fails after 1 s:
    3 attempts in all (max_retries = 2), 8 s, and both earlier attempts' reasons."""
    row, limits = _continued_run(monkeypatch, tmp_path, [(3.0, 1), (1.0, 1)], max_retries=2,
                                 time_limit_s=10, first_attempt=2, spent_s=4.0,
                                 history=("attempt 1: worker lost",))
    assert limits == [6.0, 3.0]
    assert (row["status"], row["attempts"], row["wall_s"]) == ("failed", 3, 8.0)
    assert row["retried"] == "attempt 1: worker lost; attempt 2: exit status 1: boom"
    assert row["error"] == "exit status 1: boom (after 3 attempts)"



def test_a_job_past_its_last_attempt_is_refused_by_name(tmp_path) -> None:
    """A continuation with no attempt left would run once more and report no reason."""
    spec = RunSpec("r", "train reinforce", "reinforce", "torch", 0, "CartPole-v1",
                   ("train", "reinforce"), {}, 2, None, 1)
    for first_attempt in (1, 3):  # the first and the last allowed
        assert module.RunJob(spec, str(tmp_path), 1, str(tmp_path),
                             first_attempt=first_attempt).first_attempt == first_attempt
    for first_attempt in (0, 4):
        with pytest.raises(ValueError, match=rf"first_attempt: expected 1 to 3 .*got {first_attempt}"):
            module.RunJob(spec, str(tmp_path), 1, str(tmp_path), first_attempt=first_attempt)
