"""Shared fixtures: both backends loaded once per process, torch first, in a reproducible mode."""

from __future__ import annotations

import os

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # before TensorFlow loads (DESIGN.md)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
from xdist_groups import pytest_collection_modifyitems  # noqa: E402, F401 - a hook

from duetrl.core.backend import BACKENDS, load_backends  # noqa: E402

_LOADED = load_backends(BACKENDS)  # torch before tensorflow, once
for _module in _LOADED.values():
    _module.set_num_threads(1)  # small tests: one thread each, no fighting over 2 cores


@pytest.fixture(autouse=True)
def _one_thread_after_each_test():
    """Set each framework back to one thread after every test. A CLI test that runs ``main([...])``
    in-process sets torch's threads from its ``--threads`` default (2 here), and every later test
    on that worker then summed in another order: seeded results depended on which tests ran
    before (the QA learning test's format rate flipped that way, 0.918 -> 0.914)."""
    yield
    for module in _LOADED.values():
        if module.get_num_threads() != 1:
            module.set_num_threads(1)


@pytest.fixture(scope="session")
def backends() -> dict:
    """``{"torch": duetrl.backends.torch, "tf": duetrl.backends.tf}``."""
    return _LOADED


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Each backend module in turn."""
    return _LOADED[request.param]


@pytest.fixture(params=["float64", "float32"])
def dtype(request) -> str:
    """Each floating dtype in turn."""
    return request.param


# The Ray tests (test_sweep, test_sweep_cluster, test_rllib) are one ``xdist_group``, which
# ``make test``'s ``--dist loadgroup`` runs on one worker: one local Ray session at a time, not
# two of them and a cluster fighting over two cores with their child processes. (Running the
# long files first was measured and dropped: a clean-clone run took 1359 s of pytest with it,
# 1304 s in collection order.) Under pytest 9 the group needs tests/xdist_groups.py's hook.

