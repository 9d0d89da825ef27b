"""duetrl core: everything that touches no framework tensor.

Nothing in this package imports torch, tensorflow or keras (a test checks it). Backends are
reached through :func:`duetrl.core.backend.load_backend`.
"""

__version__ = "0.1.0"
