"""The two framework backends: ``duetrl.backends.torch`` and ``duetrl.backends.tf``.

They mirror each other file for file and name for name. Load one with
``duetrl.core.backend.load_backend("torch" | "tf")``. Importing this package imports no framework;
it sets the environment variables TensorFlow and Keras read when they load.
"""

from duetrl.core.backend import prepare_environment

prepare_environment()
