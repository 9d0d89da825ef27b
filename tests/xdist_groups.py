"""``--dist loadgroup`` under pytest 9: the hook that keeps an ``xdist_group`` on one worker.

pytest-xdist (3.8) renames each test marked ``xdist_group("name")`` to ``nodeid@name`` on the
workers, and its scheduler hands every test of one name to one worker. It renames by setting
``item._nodeid``, which pytest 9 no longer reads (a node's id lives in ``item._id``), so the
mark was silently ignored: the Ray tests ran on both workers, each starting its own Ray
session and cluster. tests/conftest.py imports this hook; tests/test_xdist_groups.py checks it
on a small suite of its own.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Name each grouped test ``nodeid@group`` on the workers of ``--dist loadgroup``.

    Where xdist's own renaming works (pytest 8) the id already ends with the group and is left
    as it is."""
    if not getattr(config.option, "loadgroup", False):  # set on the workers of loadgroup only
        return
    for item in items:
        groups = sorted({str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                         for mark in item.iter_markers("xdist_group")})
        suffix = "@" + "_".join(groups)  # xdist's own spelling of several groups
        if groups and not item.nodeid.endswith(suffix):
            from _pytest.nodeid import NodeId  # pytest 9's structured node id

            item._id = NodeId.parse(item.nodeid + suffix)
