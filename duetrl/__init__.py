"""duetrl: large language models and reinforcement learning, in PyTorch and TensorFlow side by side.

The installed packages are ``duetrl.core`` (framework-neutral: references, loops, CLI) and
``duetrl.backends`` (``duetrl.backends.torch`` and ``duetrl.backends.tf``). In the repository
they are the top-level folders ``core/`` and ``backends/``; ``pyproject.toml`` maps them here.
"""

from duetrl.core import __version__

__all__ = ["__version__"]
