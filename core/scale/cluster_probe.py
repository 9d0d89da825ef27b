"""What a sweep asks of a Ray cluster before it joins it. Only the standard library and Ray:
this module runs where duetrl may be missing.

    python -m duetrl.core.scale.cluster_probe HOST:PORT    the cluster's versions and nodes

:func:`describe_cluster` runs in a child process of ``duetrl sweep`` (Ray's own client to a
head retries for minutes; a child can be stopped at a time limit). :func:`worker_report` runs
as a Ray task on every node, sent by value (``cloudpickle.register_pickle_by_value``), so it
can say that a node cannot import duetrl instead of failing to load.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def describe_cluster(address: str) -> dict[str, Any]:
    """The Ray and Python versions a cluster was started with, its nodes as they advertise
    themselves, and the ids of the nodes whose raylet runs on this machine.

    :param address: ``HOST:PORT`` of the head's GCS, used as given (Ray's ``ray.init`` would
        first replace a loopback host by this machine's outward address).
    """
    from ray._common.usage.usage_lib import get_cluster_metadata
    from ray._private.services import find_node_ids
    from ray._raylet import GcsClient
    from ray.core.generated.gcs_pb2 import GcsNodeInfo

    client = GcsClient(address=address)
    metadata = get_cluster_metadata(client)
    nodes = []
    for info in client.get_all_node_info(timeout=10).values():
        nodes.append(
            {
                "node_id": info.node_id.hex(),
                "address": info.node_manager_address,
                "port": info.node_manager_port,
                "alive": info.state == GcsNodeInfo.GcsNodeState.ALIVE,
                "head": info.is_head_node,
                "cpus": float(info.resources_total.get("CPU", 0.0)),
            }
        )
    return {
        "ray_version": metadata["ray_version"],
        "python_version": metadata["python_version"],
        "nodes": nodes,
        "local_node_ids": sorted(find_node_ids()),
    }


def worker_report(modules: tuple[str, ...]) -> dict[str, Any]:
    """On a Ray worker: import ``modules``; their ``__version__`` (None where a module has
    none), this Python's version and path, or the first import error."""
    import importlib
    import platform
    import socket

    report: dict[str, Any] = {
        "python": platform.python_version(),
        "host": socket.gethostname(),
        "executable": sys.executable,
        "versions": {},
    }
    for name in modules:
        try:
            module = importlib.import_module(name)
        except Exception as error:  # ImportError, or a module that fails while loading
            report["error"] = f"{type(error).__name__}: {error}"
            report["module"] = name
            return report
        report["versions"][name] = getattr(module, "__version__", None)
    return report


if __name__ == "__main__":
    print(json.dumps(describe_cluster(sys.argv[1])))
