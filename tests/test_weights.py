"""Canonical parameters: exact round trips between backends, safe files, clear errors."""

from __future__ import annotations

import os

import numpy as np
import pytest

from duetrl.core.reference.attention import init_multi_head_attention_params
from duetrl.core.weights import (
    CheckpointError,
    atomic_write,
    describe,
    load_params,
    save_params,
    validate_params,
)


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


def test_tf_layer_builds_itself_on_import(backends) -> None:
    tf_b = backends["tf"]
    layer = tf_b.MultiHeadAttention(8, 2)
    assert not layer.built
    tf_b.import_params(layer, init_multi_head_attention_params(8).copy())
    assert layer.built


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


def test_save_load_round_trip_with_metadata(tmp_path) -> None:
    params = init_multi_head_attention_params(8)
    params["steps"] = np.array([3, 4], dtype=np.int64)
    path = save_params(params, tmp_path / "sub" / "ckpt.safetensors", {"num_heads": 2})
    loaded, meta = load_params(path)
    assert meta == {"num_heads": 2}
    for name in params:
        np.testing.assert_array_equal(loaded[name], params[name])
        assert loaded[name].dtype == params[name].dtype


def test_load_refuses_missing_and_corrupt_files(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="no file at"):
        load_params(tmp_path / "nothing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00\x01 not a checkpoint")
    with pytest.raises(CheckpointError, match="not a valid safetensors file"):
        load_params(bad)
    good = save_params(init_multi_head_attention_params(8), tmp_path / "good.safetensors")
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[:-40])
    with pytest.raises(CheckpointError):
        load_params(truncated)


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


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path) -> None:
    path = save_params({"a": np.ones(3)}, tmp_path / "ckpt.safetensors")
    before = path.read_bytes()

    def failing_write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(b"half a file")
        raise KeyboardInterrupt  # e.g. Ctrl-C in the middle of a save

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, failing_write)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]  # no temporary file left behind
