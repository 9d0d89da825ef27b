"""Who carries out a sweep's runs: one after another here, or as Ray tasks on a local Ray or a
cluster, where a run whose node (or Ray worker) is lost starts again on another node.

A Ray task only watches its run's child process (``core/scale/run_job.py``); the child dies
with it (Linux's parent-death signal), so a lost node leaves the run folder to the retry. The
retry is this module's, not Ray's (tasks have ``max_retries=0``): it reads from the run's
sweep.log how many attempts the lost task had started, where, and since when, so node losses
and crashes share the run's one budget of ``max_retries + 1`` attempts and its time limit,
the next attempt resumes from the last checkpoint, and the row says why it was retried.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from duetrl.core.scale.run_job import (
    PID_FILE,
    RunJob,
    attempts_started,
    make_row,
    run_job,
)

LOST = ("NodeDiedError", "WorkerCrashedError", "ObjectLostError")
"""Ray's errors for a task whose node or worker process died: the run itself did not fail."""


class SequentialExecutor:
    """Runs one after another in this process's child processes: the baseline, and the
    fallback without Ray."""

    name = "sequential"

    def execute(
        self,
        jobs: list[RunJob],
        on_done: Callable[[RunJob, dict], None],
        on_change: Callable[[], None],
    ) -> None:
        for job in jobs:
            on_done(job, run_job(job, on_child_start=on_change))

    def close(self) -> None:
        pass


def run_on_ray_node(job: RunJob) -> dict:
    """The Ray task: :func:`run_job`, with the node it runs on written in sweep.log."""
    import ray

    node = ray.get_runtime_context().get_node_id()
    return run_job(job, where=f"Ray node {ray.util.get_node_ip_address()} {node[:12]}")


def _size(path: os.PathLike) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def after_lost_attempt(
    job: RunJob, log_offset: int, error: Exception, now: float | None = None
) -> RunJob | dict:
    """The run whose Ray task died with ``error``: the job that retries it (next attempt
    number, seconds spent, why), or its final row when its attempts or time are spent.

    :param log_offset: the size of the run's sweep.log when the lost task was submitted.
    """
    now = time.time() if now is None else now
    started = attempts_started(job.run_dir, log_offset)
    (job.run_dir / PID_FILE).unlink(missing_ok=True)  # that child died with its worker
    used = max(1, len(started))  # a task lost before its child started costs an attempt too
    last = job.first_attempt + used - 1
    where = started[-1][1] if started and started[-1][1] else "its Ray node"
    why = (
        f"attempt {last}: {where} lost ({type(error).__name__})"
        if "Node" in type(error).__name__
        else f"attempt {last}: its Ray worker on {where} died ({type(error).__name__})"
    )
    spent = job.spent_s + (now - started[0][2] if started else 0.0)
    history = (*job.history, why)
    if last > job.spec.max_retries:
        return make_row(
            job,
            "failed",
            last,
            spent,
            f"{why}; no attempt left ({last} of {job.spec.max_retries + 1} used)",
            history[:-1],
        )
    limit = job.spec.time_limit_s
    if limit is not None and spent >= limit:
        return make_row(
            job,
            "timeout",
            last,
            spent,
            f"{why}; its time limit time_limit_s = {limit:g} s is spent",
            history[:-1],
        )
    return dataclasses.replace(job, first_attempt=last + 1, spent_s=spent, history=history)


class RayExecutor:
    """Each run a Ray task holding ``threads`` CPUs; a local Ray unless ``address`` is given
    (then :func:`duetrl.core.scale.cluster.join_cluster` checks the cluster first).

    A Ray session that is already running (``ray.init`` by the caller) is used as it is.
    """

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise ImportError(
                "Ray is not installed: pip install 'duetrl[scale]', or run the "
                "sweep with --sequential"
            ) from None
        self.ray = ray
        self.owns_session = not ray.is_initialized()
        if self.owns_session:
            if address is not None:
                from duetrl.core.scale.cluster import join_cluster

                join_cluster(ray, address)
            else:
                ray.init(
                    address="local",  # a new local Ray, never one already running here
                    num_cpus=num_cpus or os.cpu_count(),
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                )

    def largest_machine_cpus(self) -> float:
        return max(node["Resources"].get("CPU", 0) for node in self.ray.nodes() if node["Alive"])

    def execute(
        self,
        jobs: list[RunJob],
        on_done: Callable[[RunJob, dict], None],
        on_change: Callable[[], None],
    ) -> None:
        ray = self.ray
        largest = self.largest_machine_cpus()
        if jobs and jobs[0].threads > largest:
            raise ValueError(
                f"threads_per_run: {jobs[0].threads} CPUs per run, but the largest "
                f"machine of this Ray cluster has {largest:g}; no run could start"
            )
        task = ray.remote(run_on_ray_node)
        pending: dict[Any, tuple[RunJob, int]] = {}

        def submit(job: RunJob) -> None:
            ref = task.options(num_cpus=job.threads, max_retries=0, name=job.spec.run_id).remote(
                job
            )
            pending[ref] = (job, _size(job.run_dir / "sweep.log"))

        for job in jobs:
            submit(job)
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
                on_change()
                for ref in ready:
                    job, log_offset = pending.pop(ref)
                    try:
                        row = ray.get(ref)
                    except ray.exceptions.RayError as error:
                        if type(error).__name__ in LOST:
                            retry = after_lost_attempt(job, log_offset, error)
                            if isinstance(retry, RunJob):
                                submit(retry)
                                continue
                            row = retry
                        else:  # the task itself raised: a bug, not a lost machine
                            message = str(error).strip().splitlines()[0][:300]
                            row = make_row(job, "failed", 1, 0.0, f"Ray task failed: {message}")
                    on_done(job, row)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)

    def close(self) -> None:
        if self.owns_session:
            self.ray.shutdown()
