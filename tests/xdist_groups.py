"""``--dist loadgroup`` under pytest 9: the hook that keeps a group of tests on one worker.

pytest-xdist (3.8) renames each test marked ``xdist_group("name")`` to ``nodeid@name`` on the
workers, and its scheduler hands every test of one name to one worker. It renames by setting
``item._nodeid``, which pytest 9 no longer reads (a node's id lives in ``item._id``), so the
mark was silently ignored: the Ray tests ran on both workers, each starting its own Ray
session and cluster. This hook renames them itself.

It also groups, unmarked, the tests of a module that use a module- (or session-) scoped fixture
the module defines: such a fixture (a warm-up trained once, a pretrained checkpoint) is built once per worker that runs
one of its tests, so tests spread over two workers paid for it twice. xdist hands a group's
tests out before the single ones (largest first), so the long units start early.

tests/conftest.py imports the hook; tests/test_xdist_groups.py checks it on a suite of its own.
"""

from __future__ import annotations

import pytest


def module_fixture_group(item: pytest.Item) -> str | None:
    """The test's module path when the module defines a module- or session-scoped fixture that
    the test uses."""
    module = item.nodeid.split("::")[0]
    info = getattr(item, "_fixtureinfo", None)
    for definitions in (info.name2fixturedefs.values() if info is not None else ()):
        if any(d.scope in ("module", "session") and getattr(d, "baseid", None) == module
               for d in definitions):
            return module
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Name each grouped test ``nodeid@group`` on the workers of ``--dist loadgroup``.

    Where xdist's own renaming works (pytest 8) the id already ends with the group and is left
    as it is."""
    if not getattr(config.option, "loadgroup", False):  # set on the workers of loadgroup only
        return
    for item in items:
        groups = sorted({str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                         for mark in item.iter_markers("xdist_group")})
        if not groups and "@" not in item.nodeid:
            groups = [group] if (group := module_fixture_group(item)) else []
        suffix = "@" + "_".join(groups)  # xdist's own spelling of several groups
        if groups and not item.nodeid.endswith(suffix):
            from _pytest.nodeid import NodeId  # pytest 9's structured node id

            item._id = NodeId.parse(item.nodeid + suffix)
