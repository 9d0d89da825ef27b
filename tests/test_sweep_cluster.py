"""``duetrl sweep --address`` on a real multi-node Ray cluster on this machine: a head and two
worker nodes (each its own raylet, Ray's test cluster), all bound to 127.0.0.1.

- a sweep submitted with ``--address`` gives, run for run, the numbers of the same sweep run
  ``--sequential`` (scheduling must not change a run), using both worker nodes;
- a worker node removed (its processes killed) while a run is on it: the run starts again on
  the other node from its last checkpoint, the finished runs are kept, results.csv never loses
  a row, and the summary says what was retried and why;
- clear errors: a server that is not a Ray head, a head advertising an address this machine
  cannot reach, no node of the cluster on this machine, another Ray version in the driver, a
  node without duetrl: one line each, exit status 2, no traceback, every wait bounded.

The head has no CPUs (runs go to the worker nodes; the driver joins through the head, so a
worker node can be removed under it). One cluster serves the module (its start costs about
16-24 s measured on the loaded 2-core machine); the node-loss test adds back the node it
removes. The checks that need no cluster (the greeting, what the head said) are unit tests.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from duetrl.core.cli import main
from duetrl.core.scale import cluster as cluster_checks

pytestmark = pytest.mark.xdist_group("ray")  # every Ray test on one xdist worker (conftest.py)

NODE = {"node_ip_address": "127.0.0.1", "object_store_memory": 80 * 1024 * 1024}
"""Every node on the loopback address only, with a small object store."""

TINY = """\
[sweep]
seeds = 3
backends = ["torch"]
max_retries = 1

[[run]]
command = "train reinforce"
env = "CartPole-v1"
total-steps = 600
num-envs = 4
"""

LONG = """
[[run]]
command = "train reinforce"
name = "long"
seeds = [0]
total-steps = 20000
num-envs = 4
checkpoint-every = 1
"""
"""About 50 updates with a checkpoint after each: a run that is on its node long enough."""


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    saved = os.environ.pop("RAY_ADDRESS", None)
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False, **NODE}
    )
    try:
        for _ in range(2):
            cluster.add_node(num_cpus=1, **NODE)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
        if saved is not None:
            os.environ["RAY_ADDRESS"] = saved


@pytest.fixture(scope="module")
def cluster_view(ray_cluster) -> dict:
    """What the head says of its cluster, read once (a child process: about 3 s)."""
    return cluster_checks.read_cluster(ray_cluster.address)


def sweep_cli(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(["sweep", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("duetrl: error: --address: ")
    return lines[0]


# --- what the head says: unit checks --------------------------------------------------------


def test_the_head_describes_its_nodes(ray_cluster, cluster_view) -> None:
    import ray

    nodes = [n for n in cluster_view["nodes"] if n["alive"]]
    assert (cluster_view["ray_version"], len(nodes)) == (ray.__version__, 3)
    assert {n["address"] for n in nodes} == {"127.0.0.1"}
    assert sorted(n["cpus"] for n in nodes) == [0.0, 1.0, 1.0]
    assert [n["head"] for n in nodes].count(True) == 1
    assert {n["node_id"] for n in nodes} <= set(cluster_view["local_node_ids"])
    assert (
        cluster_checks.check_cluster(
            ray_cluster.address, cluster_view, ray.__version__, cluster_view["python_version"]
        )
        == "127.0.0.1"
    )


# --- clear errors ------------------------------------------------------------------------------


def test_a_server_that_is_not_a_ray_head_is_told_at_once(tmp_path, capsys) -> None:
    """A plain TCP server that accepts and says nothing: once, Ray hung here for minutes."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(server.accept()[0]), daemon=True).start()
    (tmp_path / "s.toml").write_text(TINY)
    start = time.monotonic()
    try:
        status, _, err = sweep_cli(
            capsys,
            str(tmp_path / "s.toml"),
            "--out",
            str(tmp_path / "out"),
            "--address",
            f"127.0.0.1:{port}",
        )
    finally:
        server.close()
        for connection in accepted:
            connection.close()
    assert time.monotonic() - start < 15
    assert status == 2
    line = one_line_error(err)
    assert (
        f"something listens at '127.0.0.1:{port}', but it is not a Ray "
        f"head (no answer to a gRPC greeting" in line
    )
    assert "`ray start --head`" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case", ["unreachable node", "no local node", "ray version"])
def test_a_cluster_this_machine_cannot_use_is_one_line(
    ray_cluster, cluster_view, monkeypatch, tmp_path, capsys, case
) -> None:
    """What the driver reads is changed as each case would change it; the cluster is real."""
    view = copy.deepcopy(cluster_view)
    port = closed_port()
    if case == "unreachable node":  # the head advertises an address that does not answer
        next(n for n in view["nodes"] if n["head"])["port"] = port
    elif case == "no local node":  # none of its raylets runs on this machine
        view["local_node_ids"] = []
    else:  # the driver's Ray is another release than the cluster's
        monkeypatch.setattr("ray.__version__", "2.59.0")
    monkeypatch.setattr(cluster_checks, "read_cluster", lambda address: view)
    (tmp_path / "s.toml").write_text(TINY)
    address = ray_cluster.address
    status, _, err = sweep_cli(
        capsys, str(tmp_path / "s.toml"), "--out", str(tmp_path / "out"), "--address", address
    )
    assert status == 2
    line = one_line_error(err)
    expected = {
        "unreachable node": f"the Ray cluster at '{address}' advertises 127.0.0.1:{port} "
        f"(head), which this machine cannot reach within 2 s; start each "
        f"node with an address every machine reaches",
        "no local node": f"no node of the Ray cluster at '{address}' runs on this machine; run "
        f"duetrl sweep on the head, or join this machine first (`ray start "
        f"--address={address}`)",
        "ray version": f"the Ray cluster at '{address}' runs Ray {view['ray_version']} on Python "
        f"{view['python_version']}, this machine Ray 2.59.0 on Python "
        f"{view['python_version']}; install the same Ray and Python",
    }[case]
    assert expected in line
    assert not (tmp_path / "out").exists()


def test_a_node_without_duetrl_is_named(ray_cluster, monkeypatch, tmp_path, capsys) -> None:
    """The probe task really runs on each worker node; the module it must import is one that
    no node has (every node here shares this venv, where duetrl is installed)."""
    import ray

    monkeypatch.setattr(cluster_checks, "REQUIRED_MODULES", ("duetrl.core", "duetrl.absent"))
    (tmp_path / "s.toml").write_text(TINY)
    status, _, err = sweep_cli(
        capsys,
        str(tmp_path / "s.toml"),
        "--out",
        str(tmp_path / "out"),
        "--address",
        ray_cluster.address,
    )
    assert status == 2
    line = one_line_error(err)
    assert (
        f"of the Ray cluster at '{ray_cluster.address}' cannot import duetrl.absent "
        f"(ModuleNotFoundError: No module named 'duetrl.absent'); install duetrl" in line
    )
    assert not ray.is_initialized()  # the driver left the cluster again
    assert not (tmp_path / "out").exists()


# --- sweeps on the cluster ---------------------------------------------------------------------


def nodes_of(run_dir: Path) -> list[str]:
    """The Ray node id prefix of each attempt, from the run's sweep.log."""
    if not (run_dir / "sweep.log").is_file():
        return []
    return [
        line.split(" on Ray node 127.0.0.1 ")[1].split(":")[0]
        for line in (run_dir / "sweep.log").read_text().splitlines()
        if " on Ray node " in line
    ]


@pytest.mark.slow  # 47-64 s measured on the 2 shared cores under load (load average 7-9)
def test_a_sweep_on_the_cluster_equals_the_sequential_one(ray_cluster, tmp_path, capsys) -> None:
    (tmp_path / "s.toml").write_text(TINY)
    status, out, _ = sweep_cli(
        capsys,
        str(tmp_path / "s.toml"),
        "--out",
        str(tmp_path / "cluster"),
        "--address",
        ray_cluster.address,
        "--quiet",
        "--json",
    )
    assert status == 0
    outcome = json.loads(out)
    assert (outcome["executor"], outcome["runs"], outcome["done"]) == ("ray", 3, 3)
    assert (
        sweep_cli(
            capsys,
            str(tmp_path / "s.toml"),
            "--out",
            str(tmp_path / "sequential"),
            "--sequential",
            "--quiet",
        )[0]
        == 0
    )
    on_cluster = read_csv(tmp_path / "cluster" / "results.csv")
    sequential = read_csv(tmp_path / "sequential" / "results.csv")
    assert (
        [r["run_id"] for r in on_cluster]
        == [r["run_id"] for r in sequential]
        == ["reinforce-torch-s0", "reinforce-torch-s1", "reinforce-torch-s2"]
    )
    for there, here in zip(on_cluster, sequential, strict=True):
        for key in ("seed", "status", "env_steps", "episodes", "updates", "final_mean_return"):
            assert there[key] == here[key], (there["run_id"], key)
    used = {node for r in on_cluster for node in nodes_of(tmp_path / "cluster" / r["run_dir"])}
    workers = {node.node_id[:12] for node in ray_cluster.worker_nodes}
    assert used == workers  # both worker nodes ran runs; the CPU-less head none


@pytest.mark.slow  # 46-56 s measured on the 2 shared cores under load (load average 7-9)
def test_a_node_lost_mid_sweep_loses_no_run(ray_cluster, tmp_path, capsys) -> None:
    """The node running the long run is removed once its first checkpoint exists."""
    (tmp_path / "s.toml").write_text(TINY.replace("seeds = 3", "seeds = 2") + LONG)
    out = tmp_path / "out"
    long_dir = out / "runs" / "long-torch-s0"
    removed: list[str] = []
    table_sizes: list[list[tuple[str, str]]] = []
    stop = threading.Event()

    def remove_its_node() -> None:
        deadline = time.monotonic() + 300
        while not stop.is_set() and time.monotonic() < deadline:
            if (long_dir / "checkpoint.safetensors").is_file() and nodes_of(long_dir):
                node_id = nodes_of(long_dir)[0]
                node = next(n for n in ray_cluster.worker_nodes if n.node_id.startswith(node_id))
                ray_cluster.remove_node(node, allow_graceful=False)
                removed.append(node_id)
                return
            time.sleep(0.05)

    def watch_table() -> None:
        while not stop.is_set():
            if (out / "results.csv").is_file():
                rows = read_csv(out / "results.csv")
                table_sizes.append([(r["run_id"], r["status"]) for r in rows])
            time.sleep(0.05)

    threads = [threading.Thread(target=f, daemon=True) for f in (remove_its_node, watch_table)]
    for thread in threads:
        thread.start()
    try:
        status, text, _ = sweep_cli(
            capsys,
            str(tmp_path / "s.toml"),
            "--out",
            str(out),
            "--address",
            ray_cluster.address,
            "--quiet",
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        table_sizes.append([(r["run_id"], r["status"]) for r in read_csv(out / "results.csv")])
        if len(ray_cluster.worker_nodes) < 2:  # the next test module gets a whole cluster
            ray_cluster.add_node(num_cpus=1, **NODE)
    assert status == 0, text
    assert len(removed) == 1
    rows = {r["run_id"]: r for r in read_csv(out / "results.csv")}
    assert {run_id: r["status"] for run_id, r in rows.items()} == {
        "reinforce-torch-s0": "done",
        "reinforce-torch-s1": "done",
        "long-torch-s0": "done",
    }
    long = rows["long-torch-s0"]
    assert long["attempts"] == "2"
    assert long["retried"].startswith(
        f"attempt 1: Ray node 127.0.0.1 {removed[0]} lost (NodeDiedError)"
    )
    attempts = nodes_of(long_dir)
    assert attempts[0] == removed[0] and attempts[1] != removed[0]  # the other worker node
    started = [
        line
        for line in (long_dir / "sweep.log").read_text().splitlines()
        if " on Ray node " in line
    ]
    assert not started[0].endswith("--resume") and started[1].endswith("--resume")
    summary = json.loads((long_dir / "summary.json").read_text())
    assert summary["env_steps"] >= 20000 or summary["solved"]
    # results.csv never lost a row: each snapshot holds every run of the one before
    assert table_sizes and len(table_sizes[-1]) == 3
    for before, after in zip(table_sizes, table_sizes[1:]):
        assert set(before) <= set(after)
    assert (
        f"retried long-torch-s0 (done after 2 attempts): attempt 1: Ray node 127.0.0.1 "
        f"{removed[0]} lost (NodeDiedError)" in text
    )
