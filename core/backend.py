"""Finding and loading the framework backends, lazily.

``load_backend("torch")`` returns the module ``duetrl.backends.torch``; ``load_backend("tf")``
returns ``duetrl.backends.tf``. Importing a backend imports its framework, so nothing here runs
at start-up.
torch is always imported before tensorflow when both are used in one process (Keras 3 notes a
segfault in the other order on some builds).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from types import ModuleType

BACKENDS: tuple[str, ...] = ("torch", "tf")
"""The backend names a user may pass to ``--backend`` or :func:`load_backend`."""

_ALIASES = {"torch": "torch", "pytorch": "torch", "tf": "tf", "tensorflow": "tf", "keras": "tf"}
_FRAMEWORK_PACKAGE = {"torch": "torch", "tf": "tensorflow"}
_INSTALL_HINT = {"torch": "pip install torch==2.13.0", "tf": "pip install tensorflow-cpu==2.21.0"}


def canonical_backend_name(name: str) -> str:
    """Map ``"pytorch"``/``"tensorflow"``/``"keras"`` aliases onto ``"torch"``/``"tf"``.

    :param name: a backend name or alias.
    :raises ValueError: for an unknown name, listing the known ones.
    """
    key = str(name).strip().lower()
    if key not in _ALIASES:
        raise ValueError(f"backend: expected one of {list(BACKENDS)}, got {name!r}")
    return _ALIASES[key]


def available_backends() -> list[str]:
    """The backends whose framework is installed (found without importing it)."""
    return [b for b in BACKENDS if importlib.util.find_spec(_FRAMEWORK_PACKAGE[b]) is not None]


def prepare_environment() -> None:
    """Set the variables that must be in place before a framework loads.

    ``TF_ENABLE_ONEDNN_OPTS=0`` makes TensorFlow's float results reproducible; TensorFlow's C++
    start-up chatter is silenced; Keras 3 is asked to run on TensorFlow (``backends/tf``
    refuses to load if a user's ``KERAS_BACKEND`` says otherwise).
    """
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def prepare_for_tensorflow() -> None:
    """What must happen before TensorFlow loads in a process: :func:`prepare_environment`, and
    torch imported first when it is installed. ``backends/tf/__init__.py`` calls it, so that
    ``import duetrl.backends.tf`` (or any of its modules) is as safe as :func:`load_backend`."""
    prepare_environment()
    if importlib.util.find_spec("torch") is not None:
        importlib.import_module("torch")  # torch first, always (see module docstring)


def load_backend(name: str) -> ModuleType:
    """Import and return the backend package ``backends.<name>``.

    :param name: ``"torch"`` or ``"tf"`` (aliases ``"pytorch"``, ``"tensorflow"``, ``"keras"``).
    :returns: the backend module, whose public names are the same in both backends.
    :raises ValueError: for an unknown backend name.
    :raises ImportError: naming the missing framework package and how to install it.
    """
    backend = canonical_backend_name(name)
    if backend == "tf":
        prepare_for_tensorflow()
    else:
        prepare_environment()
    package = _FRAMEWORK_PACKAGE[backend]
    if importlib.util.find_spec(package) is None:
        raise ImportError(
            f"backend {backend!r} needs the package {package!r}, which is not installed; "
            f"install it with: {_INSTALL_HINT[backend]}"
        )
    return importlib.import_module(f"duetrl.backends.{backend}")


def load_backends(names: list[str] | tuple[str, ...] = BACKENDS) -> dict[str, ModuleType]:
    """Load several backends in a safe order (torch first). Returns ``{name: module}``."""
    ordered = sorted({canonical_backend_name(n) for n in names}, key=BACKENDS.index)
    return {name: load_backend(name) for name in ordered}
