"""Joining a Ray cluster for a sweep: every wait bounded, every failure one line.

``duetrl sweep --address HOST:PORT`` reaches the head in steps, each with a time limit, so a
wrong address is reported at once instead of hanging inside ``ray.init``:

1. something listens at HOST:PORT (a TCP connection);
2. it speaks gRPC, as a Ray head's GCS does (an HTTP/2 greeting answered by a SETTINGS frame);
3. it answers as a Ray head: a child process reads the versions the cluster was started with
   and its nodes (a child, because Ray's own client retries for minutes);
4. the cluster runs this machine's Ray and Python; every node's advertised address answers
   from here; one node runs on this machine (a Ray driver joins through a node of its own
   machine, so ``duetrl sweep`` runs on the head or on a node that joined it);
5. ``ray.init`` joins through that node, told this machine's address as the node advertises
   it (Ray would replace a loopback address by the machine's outward one and miss a head
   bound to 127.0.0.1);
6. a task on every node with CPUs imports duetrl there and reports its version.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

from duetrl.core import __version__
from duetrl.core.scale import cluster_probe

CONNECT_TIMEOUT_S = 2.0
"""Seconds to open a TCP connection to the head or to a node's advertised address."""
GREETING_TIMEOUT_S = 3.0
"""Seconds for the head to answer an HTTP/2 greeting."""
DESCRIBE_TIMEOUT_S = 60.0
"""Seconds for the child that imports Ray and asks the head for its versions and nodes."""
WORKER_TIMEOUT_S = 120.0
"""Seconds for every node to start a worker and report what it can import."""

REQUIRED_MODULES = ("duetrl.core", "duetrl.core.scale.run_job")
"""What a node must import to carry out runs (``duetrl.core`` gives the version)."""

HTTP2_GREETING = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
"""The HTTP/2 client preface and an empty SETTINGS frame (RFC 9113, 3.4 and 6.5)."""


def parse_address(address: str) -> tuple[str, int]:
    """``(host, port)`` of ``HOST:PORT`` (``[v6]:PORT`` too), else a ValueError."""
    host, sep, port = address.split("://", 1)[-1].rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(
            f"--address: expected HOST:PORT of a Ray cluster's head (e.g. "
            f"10.0.0.5:6379), got {address!r}"
        )
    return host.strip("[]"), int(port)


def _answers(host: str, port: int, timeout_s: float = CONNECT_TIMEOUT_S) -> OSError | None:
    """None when a TCP connection to host:port opens within ``timeout_s``, else the error."""
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as error:
        return error
    return None


def outward_address() -> str | None:
    """This machine's address as Ray guesses it (the source address of a route to the
    internet; no packet is sent), or None without Ray."""
    try:
        from ray._private.services import get_node_ip_address
    except ImportError:
        return None
    return get_node_ip_address()


def check_address(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> str:
    """Fail fast and clearly when nothing listens at a Ray ``HOST:PORT`` (before ray.init);
    return the address that answers. A loopback host that does not answer is tried at this
    machine's outward address too, as ``ray.init`` would: a head started by a plain
    ``ray start --head`` listens there, not on 127.0.0.1."""
    if address == "auto":
        return address
    host, port = parse_address(address)
    error = _answers(host, port, timeout_s)
    if error is None:
        return address
    also = ""
    if host in ("localhost", "::1") or host.startswith("127."):
        outward = outward_address()
        if outward and outward != host:
            if _answers(outward, port, timeout_s) is None:
                return f"{outward}:{port}"
            also = f" (nor at this machine's address {outward}:{port})"
    raise ValueError(
        f"--address: no Ray cluster answers at {address!r}{also} within {timeout_s:g} s "
        f"({error}); start one there with `ray start --head`, or leave --address out for a "
        f"local Ray"
    )


def check_speaks_grpc(address: str, timeout_s: float = GREETING_TIMEOUT_S) -> None:
    """A Ray head's port is a gRPC server: an HTTP/2 greeting gets a SETTINGS frame back
    (a 9-byte frame header of type 4 on stream 0). Anything else is not a Ray head."""
    if os.environ.get("RAY_USE_TLS", "0") not in ("0", ""):
        return  # a TLS head answers only after a TLS handshake: leave it to Ray
    host, port = parse_address(address)
    reply = b""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as connection:
            connection.settimeout(timeout_s)
            connection.sendall(HTTP2_GREETING)
            while len(reply) < 9:
                chunk = connection.recv(9 - len(reply))
                if not chunk:
                    break
                reply += chunk
    except OSError:
        pass
    if len(reply) < 9 or reply[3] != 4 or int.from_bytes(reply[5:9], "big") & 0x7FFFFFFF:
        heard = "no answer" if not reply else f"the answer {reply[:16]!r}"
        raise ValueError(
            f"--address: something listens at {address!r}, but it is not a Ray "
            f"head ({heard} to a gRPC greeting within {timeout_s:g} s); use the "
            f"address `ray start --head` printed (`ray status` on the head "
            f"shows it), by default port 6379"
        )


def read_cluster(address: str, timeout_s: float = DESCRIBE_TIMEOUT_S) -> dict[str, Any]:
    """The head's description of its cluster (:func:`cluster_probe.describe_cluster`), asked
    by a child process that is stopped after ``timeout_s``."""
    command = [sys.executable, "-m", "duetrl.core.scale.cluster_probe", address]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise ValueError(
            f"--address: {address!r} speaks gRPC but did not answer as a Ray head "
            f"within {timeout_s:g} s; check it is the head's GCS port (`ray "
            f"status` on the head shows it)"
        ) from None
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    if done.returncode != 0:
        raise ValueError(
            f"--address: could not read the Ray cluster at {address!r}: "
            f"{lines[-1][:300] if lines else f'exit status {done.returncode}'}"
        )
    return json.loads(done.stdout)


def check_cluster(address: str, view: dict[str, Any], ray_version: str, python_version: str) -> str:
    """Check what the head said (:func:`read_cluster`) against this machine; return the
    address under which this machine's node of the cluster advertises itself."""
    theirs = (view["ray_version"], view["python_version"])
    if theirs != (ray_version, python_version):
        raise ValueError(
            f"--address: the Ray cluster at {address!r} runs Ray {theirs[0]} on "
            f"Python {theirs[1]}, this machine Ray {ray_version} on Python "
            f"{python_version}; install the same Ray and Python on every node "
            f"and here (pip install 'ray[default]=={theirs[0]}')"
        )
    alive = [node for node in view["nodes"] if node["alive"]]
    unreachable = [node for node in alive if _answers(node["address"], node["port"])]
    if unreachable:
        where = ", ".join(
            f"{n['address']}:{n['port']} ({'head' if n['head'] else 'node'})" for n in unreachable
        )
        raise ValueError(
            f"--address: the Ray cluster at {address!r} advertises {where}, which "
            f"this machine cannot reach within {CONNECT_TIMEOUT_S:g} s; start "
            f"each node with an address every machine reaches (`ray start "
            f"--node-ip-address=IP ...`)"
        )
    local = [node for node in alive if node["node_id"] in view["local_node_ids"]]
    if not local:
        raise ValueError(
            f"--address: no node of the Ray cluster at {address!r} runs on this "
            f"machine; run duetrl sweep on the head, or join this machine first "
            f"(`ray start --address={address}`)"
        )
    return sorted(local, key=lambda node: not node["head"])[0]["address"]


@contextlib.contextmanager
def this_machine_is(ray: Any, ip: str) -> Iterator[None]:
    """While ``ray.init`` runs, Ray's idea of this machine's address is ``ip`` (the address
    its node advertises), not the outward address Ray would guess."""
    services = getattr(getattr(ray, "_private", None), "services", None)
    original = getattr(services, "get_node_ip_address", None)
    if original is None:  # another Ray release: let it guess
        yield
        return
    services.get_node_ip_address = lambda address=None: ip
    try:
        yield
    finally:
        services.get_node_ip_address = original


def check_workers(
    ray: Any, address: str, nodes: list[dict[str, Any]], timeout_s: float = WORKER_TIMEOUT_S
) -> None:
    """Every node with CPUs imports :data:`REQUIRED_MODULES` at this duetrl's version."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    ray.cloudpickle.register_pickle_by_value(cluster_probe)  # it must load without duetrl
    report = ray.remote(cluster_probe.worker_report)
    asked = {
        report.options(
            num_cpus=0,
            max_retries=0,
            scheduling_strategy=(NodeAffinitySchedulingStrategy(node["node_id"], soft=False)),
        ).remote(REQUIRED_MODULES): node
        for node in nodes
        if node["alive"] and node["cpus"] > 0
    }
    ready, late = ray.wait(list(asked), num_returns=len(asked), timeout=timeout_s)
    for ref in late:
        ray.cancel(ref, force=True)
    if late:
        where = ", ".join(f"{asked[ref]['address']} ({asked[ref]['node_id'][:8]})" for ref in late)
        raise ValueError(
            f"--address: node {where} of the Ray cluster at {address!r} ran no "
            f"task within {timeout_s:g} s; `ray status` on the head shows why"
        )
    for ref in ready:
        node = asked[ref]
        where = f"node {node['address']} ({node['node_id'][:8]}) of the Ray cluster at {address!r}"
        answer = ray.get(ref)
        install = (
            f"install duetrl {__version__} (pip install 'duetrl[scale]=={__version__}') "
            f"in the Python that runs Ray on every node"
        )
        if "error" in answer:
            raise ValueError(
                f"--address: {where} cannot import {answer['module']} "
                f"({answer['error']}); {install}"
            )
        theirs = answer["versions"].get("duetrl.core")
        if theirs != __version__:
            raise ValueError(
                f"--address: {where} has duetrl {theirs}, this machine {__version__}; {install}"
            )


def _auto_address(ray: Any) -> str:
    """The HOST:PORT that Ray's ``address="auto"`` means (RAY_ADDRESS, else the cluster that
    ``ray start`` last made on this machine)."""
    try:
        found = ray._private.services.get_ray_address_from_environment("auto", None)
    except Exception:  # no such function in another release, or Ray's own complaint
        found = None
    if not found or found == "auto":
        raise ValueError(
            "--address auto: no Ray cluster found on this machine (RAY_ADDRESS is unset and "
            "`ray start` made none here); give the head's HOST:PORT"
        )
    return found


def join_cluster(ray: Any, address: str) -> dict[str, Any]:
    """Check the cluster at ``address`` (steps 1-6 of this module), then ``ray.init`` into it;
    returns the head's description. Raises ValueError with one line saying what to do."""
    if address == "auto":  # the cluster `ray start` made on this machine, or RAY_ADDRESS
        address = _auto_address(ray)
    address = check_address(address)
    check_speaks_grpc(address)
    view = read_cluster(address)
    ip = check_cluster(address, view, ray.__version__, platform.python_version())
    try:
        with this_machine_is(ray, ip):
            ray.init(
                address=address,
                _node_ip_address=ip,
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
    except Exception as error:  # Ray says it in many lines; keep its first
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        raise ValueError(
            f"--address: could not join the Ray cluster at {address!r}: {first}"
        ) from None
    try:
        check_workers(ray, address, view["nodes"])
    except BaseException:
        ray.shutdown()
        raise
    return view
