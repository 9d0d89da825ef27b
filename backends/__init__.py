"""The two framework backends: ``backends.torch`` and ``backends.tf``.

They mirror each other file for file and name for name. Load one with
``core.backend.load_backend("torch" | "tf")``. Importing this package imports no framework;
it sets the environment variables TensorFlow and Keras read when they load.
"""

from core.backend import prepare_environment

prepare_environment()
