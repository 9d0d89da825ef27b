"""Canonical parameters: exact round trips between backends, clear errors.
(Files: tests/test_checkpoint.py.)"""

from __future__ import annotations

import numpy as np
import pytest

from duetrl.core.checkpoint import CheckpointError
from duetrl.core.reference.attention import init_multi_head_attention_params
from duetrl.core.weights import describe, validate_params


def test_round_trip_torch_canonical_tf_canonical_torch_is_exact(backends, dtype) -> None:
    torch_b, tf_b = backends["torch"], backends["tf"]
    source = torch_b.MultiHeadAttention(24, 3, dtype=dtype)  # its own random init
    canonical = torch_b.export_params(source)
    assert canonical["q_linear.kernel"].shape == (24, 24)
    assert all(a.dtype == np.dtype(dtype) for a in canonical.values())
    tf_layer = tf_b.import_params(tf_b.MultiHeadAttention(24, 3, dtype=dtype), canonical)
    back = tf_b.export_params(tf_layer)
    target = torch_b.import_params(torch_b.MultiHeadAttention(24, 3, dtype=dtype), back)
    final = torch_b.export_params(target)
    for name in canonical:
        np.testing.assert_array_equal(back[name], canonical[name], err_msg=name)
        np.testing.assert_array_equal(final[name], canonical[name], err_msg=name)


def test_torch_linear_weight_is_transposed_into_canonical_kernel(backends) -> None:
    torch_b = backends["torch"]
    layer = torch_b.MultiHeadAttention(8, 2)
    exported = torch_b.export_params(layer)
    np.testing.assert_array_equal(
        exported["out.kernel"], layer.out.weight.detach().numpy().T
    )


def test_layers_hold_their_weights_from_construction(backend) -> None:
    """Keras layers usually wait for build(); ours know their sizes, so, as in torch, the
    weights exist as soon as the layer does and import/export work before any call."""
    layer = backend.MultiHeadAttention(8, 2)
    names = sorted(backend.export_params(layer))
    assert names == sorted(init_multi_head_attention_params(8)), names
    params = init_multi_head_attention_params(8)
    backend.import_params(layer, params)
    for name, value in backend.export_params(layer).items():
        np.testing.assert_array_equal(value, params[name].astype(value.dtype))


def test_import_names_missing_and_unexpected(backend) -> None:
    layer = backend.MultiHeadAttention(8, 2)
    params = init_multi_head_attention_params(8)
    params.pop("out.bias")
    params["extra.kernel"] = np.zeros((8, 8))
    with pytest.raises(CheckpointError, match=r"missing \['out.bias'\], unexpected \['extra.kernel'\]"):
        backend.import_params(layer, params)


def test_import_names_wrong_shape(backend) -> None:
    params = init_multi_head_attention_params(8)
    params["q_linear.kernel"] = np.zeros((8, 4))
    with pytest.raises(CheckpointError, match=r"'q_linear.kernel' has shape \(8, 4\), expected \(8, 8\)"):
        backend.import_params(backend.MultiHeadAttention(8, 2), params)


def test_validate_params_names_the_problem() -> None:
    params = init_multi_head_attention_params(8)
    spec = describe(params)
    validate_params(params, spec)
    wrong_dtype = {**params, "out.bias": params["out.bias"].astype("float32")}
    with pytest.raises(CheckpointError, match="'out.bias' has dtype float32, expected float64"):
        validate_params(wrong_dtype, spec)
    nan = {**params, "out.bias": np.full(8, np.nan)}
    with pytest.raises(CheckpointError, match="'out.bias' contains NaN"):
        validate_params(nan, spec)
    with pytest.raises(CheckpointError, match=r"missing \['out.bias'\]"):
        validate_params({k: v for k, v in params.items() if k != "out.bias"}, spec)
