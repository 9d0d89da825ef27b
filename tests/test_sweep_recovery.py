"""The pieces of a sweep that keep it going when a machine is lost, and that check a cluster
before joining it, each on crafted input (no Ray session, no child runs):

- a lost Ray task's attempts read back from sweep.log: the next attempt's number, the seconds
  spent, why it is retried; no attempt or no time left: the run's final row;
- the HTTP/2 greeting that tells a Ray head (a gRPC server) from anything else listening;
- what the head says of its cluster, checked against this machine;
- the default references that several ``rlhf train`` runs share, found once per task.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from duetrl.core.cli import build_parser
from duetrl.core.scale import cluster as cluster_checks
from duetrl.core.scale.artefacts import default_reference_path, shared_references
from duetrl.core.scale.executors import after_lost_attempt
from duetrl.core.scale.run_job import (
    LOG_TIME,
    PID_FILE,
    RunJob,
    attempts_started,
    read_pid,
)
from duetrl.core.scale.sweep_file import load_sweep

SWEEP = """\
[sweep]
max_retries = 2
time_limit_s = 100

[[run]]
command = "train reinforce"
"""


class NodeDiedError(Exception):
    """Stands in for ray.exceptions.NodeDiedError: only the class name is read."""


class WorkerCrashedError(Exception):
    """Stands in for ray.exceptions.WorkerCrashedError."""


def a_job(tmp_path: Path, text: str = SWEEP, **fields) -> RunJob:
    (tmp_path / "s.toml").write_text(text)
    spec = load_sweep(tmp_path / "s.toml", build_parser()).runs[0]
    job = RunJob(spec, str(tmp_path / "sweep"), 1, str(tmp_path), **fields)
    job.run_dir.mkdir(parents=True)
    return job


def log(job: RunJob, when: float, text: str) -> None:
    with open(job.run_dir / "sweep.log", "a") as f:
        f.write(f"{time.strftime(LOG_TIME, time.localtime(when))} {text}\n")


def test_attempts_started_reads_only_starts_after_the_offset(tmp_path) -> None:
    job = a_job(tmp_path)
    log(job, 1000, "attempt 1: /py -m duetrl train reinforce")
    log(job, 1010, "attempt 1: failed killed by SIGKILL")
    offset = (job.run_dir / "sweep.log").stat().st_size
    log(job, 2000, "attempt 2 on Ray node 127.0.0.1 ab12: /py -m duetrl train reinforce --resume")
    log(job, 2005, "attempt 2: done")
    log(job, 2010, "attempt 3: failed exit status 1: boom")
    assert [(n, where) for n, where, _ in attempts_started(job.run_dir, 0)] == [
        (1, ""),
        (2, "Ray node 127.0.0.1 ab12"),
    ]
    ((number, where, when),) = attempts_started(job.run_dir, offset)
    assert (number, where) == (2, "Ray node 127.0.0.1 ab12")
    assert when == pytest.approx(2000, abs=1)
    assert attempts_started(tmp_path / "nowhere", 0) == []


def test_a_lost_attempt_is_retried_with_the_next_number_and_its_time(tmp_path) -> None:
    job = a_job(tmp_path)
    (job.run_dir / PID_FILE).write_text("4242 some-host")
    log(job, 1000, "attempt 1 on Ray node 127.0.0.1 ab12: /py -m duetrl train reinforce")
    retry = after_lost_attempt(job, 0, NodeDiedError("the node died"), now=1030)
    assert isinstance(retry, RunJob)
    assert (retry.first_attempt, retry.spec, retry.resume) == (2, job.spec, False)
    assert retry.spent_s == pytest.approx(30, abs=1)
    assert retry.history == ("attempt 1: Ray node 127.0.0.1 ab12 lost (NodeDiedError)",)
    assert not (job.run_dir / PID_FILE).exists()  # that child died with its worker
    # the retry is lost too, its worker this time: attempt 2, 20 s more
    offset = (job.run_dir / "sweep.log").stat().st_size
    log(job, 1040, "attempt 2 on Ray node 127.0.0.1 cd34: /py -m duetrl train reinforce --resume")
    again = after_lost_attempt(retry, offset, WorkerCrashedError(), now=1060)
    assert (again.first_attempt, again.spent_s) == (3, pytest.approx(50, abs=1))
    assert again.history[1] == (
        "attempt 2: its Ray worker on Ray node 127.0.0.1 cd34 died (WorkerCrashedError)"
    )


def test_no_attempt_left_ends_the_run_failed_with_why(tmp_path) -> None:
    job = a_job(tmp_path, first_attempt=3, history=("attempt 1: x", "attempt 2: y"))
    log(job, 1000, "attempt 3 on Ray node 127.0.0.1 ab12: /py -m duetrl train reinforce")
    row = after_lost_attempt(job, 0, NodeDiedError(), now=1001)
    assert (row["status"], row["attempts"]) == ("failed", 3)  # max_retries = 2: 3 attempts
    assert row["error"] == (
        "attempt 3: Ray node 127.0.0.1 ab12 lost (NodeDiedError); no attempt left (3 of 3 used)"
    )
    assert row["retried"] == "attempt 1: x; attempt 2: y"


def test_a_task_lost_before_its_child_started_costs_one_attempt(tmp_path) -> None:
    job = a_job(tmp_path, first_attempt=2)
    retry = after_lost_attempt(job, 0, NodeDiedError(), now=1000)
    assert (retry.first_attempt, retry.spent_s) == (3, 0.0)
    assert retry.history == ("attempt 2: its Ray node lost (NodeDiedError)",)
    last = after_lost_attempt(retry, 0, NodeDiedError(), now=1000)
    assert (last["status"], last["attempts"]) == ("failed", 3)


def test_no_time_left_ends_the_run_as_timeout(tmp_path) -> None:
    job = a_job(tmp_path, spent_s=60.0)
    log(job, 1000, "attempt 1 on Ray node 127.0.0.1 ab12: /py -m duetrl train reinforce")
    row = after_lost_attempt(job, 0, NodeDiedError(), now=1040)  # 60 + 40 = the limit, 100
    assert (row["status"], row["attempts"]) == ("timeout", 1)
    assert row["error"].endswith("its time limit time_limit_s = 100 s is spent")
    assert isinstance(after_lost_attempt(job, 0, NodeDiedError(), now=1039), RunJob)


def test_the_pid_file_names_its_host(tmp_path) -> None:
    (tmp_path / PID_FILE).write_text("123 node-7")
    assert read_pid(tmp_path) == (123, "node-7")
    (tmp_path / PID_FILE).write_text("123")  # written by an older duetrl
    assert read_pid(tmp_path) == (123, "")
    (tmp_path / PID_FILE).write_text("")
    assert read_pid(tmp_path) is None
    assert read_pid(tmp_path / "none") is None


# --- the greeting ------------------------------------------------------------------------------


def serve_once(reply: bytes) -> tuple[socket.socket, list[bytes]]:
    """A loopback server that reads the greeting and answers ``reply`` (b"": says nothing)."""
    server = socket.create_server(("127.0.0.1", 0))
    heard: list[bytes] = []

    def answer() -> None:
        for _ in range(2):  # the TCP check's connection, then the greeting's
            try:
                connection, _ = server.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(2)
                try:
                    heard.append(connection.recv(64))
                except OSError:
                    heard.append(b"")
                if reply:
                    connection.sendall(reply)
                else:
                    time.sleep(0.5)

    threading.Thread(target=answer, daemon=True).start()
    return server, heard


SETTINGS = bytes([0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100])
"""A gRPC server's first frame: SETTINGS (type 4) on stream 0, one setting."""


@pytest.mark.parametrize(
    "reply, speaks",
    [
        (SETTINGS, True),
        (bytes([0, 0, 0, 4, 1, 0, 0, 0, 0]), True),  # an empty SETTINGS ack: still HTTP/2
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", False),
        (bytes([0, 0, 6, 4, 0, 0, 0, 0, 1, 0, 3, 0, 0, 0, 100]), False),  # on stream 1: not valid
        (bytes([0, 0, 6, 1, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100]), False),  # HEADERS first
        (SETTINGS[:8], False),  # cut short
        (b"", False),  # silence
    ],
)
def test_the_grpc_greeting_tells_a_head_from_other_servers(reply, speaks) -> None:
    server, heard = serve_once(reply)
    address = f"127.0.0.1:{server.getsockname()[1]}"
    start = time.monotonic()
    try:
        if speaks:
            cluster_checks.check_speaks_grpc(address, timeout_s=1)
        else:
            with pytest.raises(
                ValueError,
                match=rf"^--address: something listens at "
                rf"'{address}', but it is not a Ray head",
            ):
                cluster_checks.check_speaks_grpc(address, timeout_s=1)
    finally:
        server.close()
    assert time.monotonic() - start < 5
    assert heard and heard[0].startswith(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")


def test_addresses_are_parsed_or_refused() -> None:
    assert cluster_checks.parse_address("10.0.0.5:6379") == ("10.0.0.5", 6379)
    assert cluster_checks.parse_address("[::1]:6379") == ("::1", 6379)
    assert cluster_checks.parse_address("ray://head:10001") == ("head", 10001)
    for bad in ("headnode", ":6379", "head:", "head:63x9"):
        with pytest.raises(ValueError, match="expected HOST:PORT"):
            cluster_checks.parse_address(bad)


# --- what the head says, checked ---------------------------------------------------------------


def view(port: int, **change) -> dict:
    nodes = [
        {
            "node_id": "aa" * 28,
            "address": "127.0.0.1",
            "port": port,
            "alive": True,
            "head": False,
            "cpus": 1.0,
        },
        {
            "node_id": "bb" * 28,
            "address": "127.0.0.1",
            "port": port,
            "alive": True,
            "head": True,
            "cpus": 0.0,
        },
        {
            "node_id": "cc" * 28,
            "address": "127.0.0.9",
            "port": 1,
            "alive": False,
            "head": False,
            "cpus": 1.0,
        },
    ]
    return {
        "ray_version": "2.60.0",
        "python_version": "3.11.7",
        "nodes": nodes,
        "local_node_ids": ["aa" * 28, "bb" * 28],
        **change,
    }


def test_check_cluster_prefers_the_head_and_skips_dead_nodes() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    try:
        assert cluster_checks.check_cluster("h:1", view(port), "2.60.0", "3.11.7") == "127.0.0.1"
        only_worker = view(port, local_node_ids=["aa" * 28])
        assert cluster_checks.check_cluster("h:1", only_worker, "2.60.0", "3.11.7") == "127.0.0.1"
        with pytest.raises(
            ValueError,
            match=r"runs Ray 2.60.0 on Python 3.11.7, this machine "
            r"Ray 2.60.0 on Python 3.11.8",
        ):
            cluster_checks.check_cluster("h:1", view(port), "2.60.0", "3.11.8")
        with pytest.raises(ValueError, match="no node of the Ray cluster at 'h:1' runs on this"):
            cluster_checks.check_cluster(
                "h:1", view(port, local_node_ids=["cc" * 28]), "2.60.0", "3.11.7"
            )  # only a dead one is local
    finally:
        server.close()


# --- shared inputs -------------------------------------------------------------------------------


def test_the_default_reference_path_is_the_command_lines() -> None:
    from duetrl.core.cli.rlhf import default_reference_path as cli_path

    for task in ("sort-digits", "arithmetic"):
        assert default_reference_path(task) == cli_path(task)


def test_runs_that_share_a_default_reference_are_found_once_per_task(tmp_path) -> None:
    text = """\
[sweep]
seeds = 3

[[run]]
command = "rlhf train"
updates = 1
[run.grid]
task = ["sort-digits", "arithmetic"]

[[run]]
command = "rlhf train"
name = "own"
reference-checkpoint = "mine.safetensors"

[[run]]
command = "rlhf train"
name = "uniform"
reference = "uniform"

[[run]]
command = "train reinforce"
"""
    (tmp_path / "s.toml").write_text(text)
    plan = load_sweep(tmp_path / "s.toml", build_parser())
    found = shared_references(plan, tmp_path)
    assert found == {
        task: tmp_path.resolve() / "runs" / "rlhf" / task / "reference.safetensors"
        for task in ("sort-digits", "arithmetic")
    }
    (tmp_path / "d.toml").write_text('[[run]]\ncommand = "rlhf train"\n')
    default_task = load_sweep(tmp_path / "d.toml", build_parser())
    assert list(shared_references(default_task, tmp_path)) == ["sort-digits"]


def test_address_auto_means_the_cluster_ray_found_here() -> None:
    from types import SimpleNamespace

    def fake_ray(found):
        services = SimpleNamespace(get_ray_address_from_environment=lambda address, tmp: found)
        return SimpleNamespace(_private=SimpleNamespace(services=services))

    assert cluster_checks._auto_address(fake_ray("127.0.0.1:6379")) == "127.0.0.1:6379"
    for nothing in ("auto", None, ""):
        with pytest.raises(ValueError, match=r"^--address auto: no Ray cluster found on this"):
            cluster_checks._auto_address(fake_ray(nothing))


def test_a_loopback_address_that_does_not_answer_is_tried_at_the_outward_one(
    monkeypatch,
) -> None:
    """As ray.init does: `ray start --head` listens on the machine's outward address, and a
    user types 127.0.0.1. (The outward address is played by 127.0.0.1, the typed one by
    127.0.0.2: nothing here leaves the loopback.)"""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    try:
        monkeypatch.setattr(cluster_checks, "outward_address", lambda: "127.0.0.1")
        assert cluster_checks.check_address(f"127.0.0.2:{port}") == f"127.0.0.1:{port}"
        assert cluster_checks.check_address(f"127.0.0.1:{port}") == f"127.0.0.1:{port}"
        assert cluster_checks.check_address("auto") == "auto"
    finally:
        server.close()
    with pytest.raises(
        ValueError,
        match=rf"no Ray cluster answers at '127.0.0.2:{port}' \(nor "
        rf"at this machine's address 127.0.0.1:{port}\)",
    ):
        cluster_checks.check_address(f"127.0.0.2:{port}")
    monkeypatch.setattr(cluster_checks, "outward_address", lambda: None)
    with pytest.raises(ValueError, match=rf"no Ray cluster answers at '127.0.0.2:{port}' within"):
        cluster_checks.check_address(f"127.0.0.2:{port}")


# --- the cluster configurations of the guide ---------------------------------------------------

CLUSTER_CONFIGS = Path(__file__).resolve().parent.parent / "sweeps" / "cluster"


def test_the_ray_up_configuration_passes_rays_own_schema() -> None:
    yaml = pytest.importorskip("yaml")
    util = pytest.importorskip("ray.autoscaler._private.util")
    config = yaml.safe_load((CLUSTER_CONFIGS / "ray-cluster.yaml").read_text())
    util.validate_config(util.prepare_config(config))
    workers = config["provider"]["worker_ips"]
    assert config["min_workers"] == config["max_workers"] == len(workers)
    assert any("duetrl[scale]" in command for command in config["setup_commands"])


def test_the_kuberay_cluster_runs_one_image_on_one_shared_claim() -> None:
    import ray

    yaml = pytest.importorskip("yaml")
    cluster = yaml.safe_load((CLUSTER_CONFIGS / "kuberay.yaml").read_text())
    assert (cluster["apiVersion"], cluster["kind"]) == ("ray.io/v1", "RayCluster")
    assert cluster["spec"]["rayVersion"] == ray.__version__
    pods = [cluster["spec"]["headGroupSpec"]["template"]["spec"]] + [
        group["template"]["spec"] for group in cluster["spec"]["workerGroupSpecs"]
    ]
    assert len({pod["containers"][0]["image"] for pod in pods}) == 1  # the same versions
    for pod in pods:
        assert pod["containers"][0]["volumeMounts"] == [{"name": "shared", "mountPath": "/shared"}]
        assert pod["volumes"][0]["persistentVolumeClaim"] == {"claimName": "duetrl-shared"}
