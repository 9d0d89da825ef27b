"""Bad input gets a ValueError naming the argument, the expected and the received shape,
with the very same message from both backends (the checks live once, in core)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from duetrl.core.backend import available_backends, canonical_backend_name, load_backend


def call(backend, q_shape, k_shape, v_shape, mask_shape=None, d_model=8, heads=2):
    layer = backend.MultiHeadAttention(d_model, heads)
    t = [backend.as_tensor(np.zeros(s, dtype="float32")) for s in (q_shape, k_shape, v_shape)]
    mask = None if mask_shape is None else backend.as_tensor(np.ones(mask_shape, "float32"))
    return layer(*t, mask)


BAD_CALLS = {
    "rank": (((2, 8), (2, 3, 8), (2, 3, 8)), r"q: expected rank 3 .* got shape \(2, 8\) \(rank 2\)"),
    "feature size": (((2, 3, 8), (2, 3, 6), (2, 3, 8)), r"k: expected last dimension d_model=8, got shape \(2, 3, 6\)"),
    "batch": (((2, 3, 8), (3, 3, 8), (3, 3, 8)), r"q, k, v: expected the same batch size"),
    "k/v length": (((2, 3, 8), (2, 4, 8), (2, 5, 8)), r"v: expected the same length as k \(4\), got shape \(2, 5, 8\)"),
    "mask": (((2, 3, 8), (2, 4, 8), (2, 4, 8), (2, 3, 3)), r"mask: expected a shape broadcastable to \(batch, q_len, k_len\) = \(2, 3, 4\), got shape \(2, 3, 3\)"),
}


@pytest.mark.parametrize("case", BAD_CALLS)
def test_bad_shapes_raise_the_same_message_in_both_backends(backends, case) -> None:
    shapes, pattern = BAD_CALLS[case]
    messages = []
    for backend in backends.values():
        with pytest.raises(ValueError, match=pattern) as info:
            call(backend, *shapes)
        messages.append(str(info.value))
    assert messages[0] == messages[1]


def test_d_model_not_divisible_by_heads(backends) -> None:
    messages = []
    for backend in backends.values():
        with pytest.raises(ValueError, match=re.escape("d_model: expected a multiple of num_heads=3, got d_model=8")) as info:
            backend.MultiHeadAttention(8, 3)
        messages.append(str(info.value))
    assert messages[0] == messages[1]


def test_unknown_backend_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"backend: expected one of \['torch', 'tf'\], got 'jax'"):
        load_backend("jax")
    assert canonical_backend_name("TensorFlow") == "tf"
    assert canonical_backend_name("pytorch") == "torch"
    assert available_backends() == ["torch", "tf"]


def test_missing_framework_is_named_with_its_install_command(monkeypatch) -> None:
    import importlib.util

    import duetrl.core.backend as backend_module

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        backend_module.importlib.util, "find_spec",
        lambda name, *a: None if name == "tensorflow" else real_find_spec(name, *a),
    )
    with pytest.raises(ImportError, match=r"needs the package 'tensorflow'.*pip install tensorflow-cpu"):
        load_backend("tf")
    assert backend_module.available_backends() == ["torch"]
