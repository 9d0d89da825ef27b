"""The one checkpoint format (duetrl.core.checkpoint): exact round trips, atomic writes,
clear errors for missing, truncated, corrupt or mismatched files."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from duetrl.core.checkpoint import (
    FORMAT_VERSION,
    METADATA_KEY,
    Checkpoint,
    CheckpointError,
    atomic_write,
    load_checkpoint,
    read_file,
    save_checkpoint,
)
from duetrl.core.reference.attention import init_multi_head_attention_params
from duetrl.core.weights import describe


def rlhf_like() -> Checkpoint:
    """Several groups, as an RLHF trainer will save: policy, value head, optimiser state."""
    policy = init_multi_head_attention_params(8)
    value_head = {"kernel": np.arange(8.0).reshape(8, 1), "bias": np.zeros(1, np.float32)}
    optim = {"step": np.array([3], np.int64), "m.kernel": np.ones((8, 1))}
    metadata = {"config": {"d_model": 8, "num_heads": 2}, "step": 3, "history": [0.5, 0.25]}
    return Checkpoint("duetrl.test", {"params": policy, "value_head": value_head,
                                      "optim": optim}, metadata)


def test_round_trip_is_exact_for_every_group_dtype_and_metadata(tmp_path) -> None:
    saved = rlhf_like()
    path = save_checkpoint(tmp_path / "sub" / "ckpt.safetensors", saved)
    assert path == tmp_path / "sub" / "ckpt.safetensors"
    loaded = load_checkpoint(path, kind="duetrl.test")
    assert loaded.kind == "duetrl.test" and loaded.metadata == saved.metadata
    assert sorted(loaded.tensors) == sorted(saved.tensors)
    for group, tensors in saved.tensors.items():
        assert sorted(loaded.tensors[group]) == sorted(tensors), group
        for name, value in tensors.items():
            got = loaded.tensors[group][name]
            assert got.dtype == value.dtype and got.shape == value.shape, (group, name)
            np.testing.assert_array_equal(got, value)
    arrays, raw = read_file(path)  # on disk: "group.name", kind and format in the metadata
    assert "value_head.kernel" in arrays and "params.q_linear.kernel" in arrays
    assert raw["kind"] == "duetrl.test" and raw["format"] == FORMAT_VERSION and raw["step"] == 3


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path) -> None:
    path = save_checkpoint(tmp_path / "ckpt.safetensors", rlhf_like())
    before = path.read_bytes()

    def failing_write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(b"half a file")
        raise KeyboardInterrupt  # e.g. Ctrl-C in the middle of a save

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, failing_write)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]  # no temporary file left behind
    unserialisable = Checkpoint("duetrl.test", {"params": {"a": np.ones(2)}}, {"x": object()})
    with pytest.raises(ValueError, match="metadata: expected JSON-serialisable"):
        save_checkpoint(path, unserialisable)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["ckpt.safetensors"]
    assert load_checkpoint(path).metadata["step"] == 3


def test_missing_truncated_and_corrupt_files_are_refused(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="no file at"):
        load_checkpoint(tmp_path / "nothing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00\x01 not a checkpoint")
    with pytest.raises(CheckpointError, match="is not a valid safetensors file"):
        load_checkpoint(bad)
    good = save_checkpoint(tmp_path / "good.safetensors", rlhf_like())
    for cut in (1, 40, len(good.read_bytes()) // 2):
        truncated = tmp_path / f"truncated{cut}.safetensors"
        truncated.write_bytes(good.read_bytes()[:-cut])
        with pytest.raises(CheckpointError, match="is not a valid safetensors file"):
            load_checkpoint(truncated)


def test_foreign_and_newer_files_are_refused(tmp_path) -> None:
    from safetensors.numpy import save_file

    foreign = tmp_path / "foreign.safetensors"  # a safetensors file duetrl did not write
    save_file({"weight": np.ones(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="format version None .*written by duetrl"):
        load_checkpoint(foreign)
    newer = tmp_path / "newer.safetensors"
    text = json.dumps({"kind": "duetrl.test", "format": FORMAT_VERSION + 1})
    save_file({"params.a": np.ones(2)}, str(newer), metadata={METADATA_KEY: text})
    with pytest.raises(CheckpointError, match=f"format version {FORMAT_VERSION + 1} "):
        load_checkpoint(newer)


def test_wrong_kind_settings_or_shapes_are_refused_naming_both(tmp_path) -> None:
    saved = rlhf_like()
    path = save_checkpoint(tmp_path / "ckpt.safetensors", saved)
    with pytest.raises(CheckpointError, match="is a 'duetrl.test' checkpoint, expected 'duetrl.gpt'"):
        load_checkpoint(path, kind="duetrl.gpt")
    with pytest.raises(CheckpointError, match="written by step 3, expected 4"):
        load_checkpoint(path, match={"step": 4})
    with pytest.raises(CheckpointError, match="written by missing None, expected 1"):
        load_checkpoint(path, match={"missing": 1})
    other = {"d_model": 8, "num_heads": 4}
    with pytest.raises(CheckpointError,
                       match=r"another config; fields \(checkpoint, expected\): \{'num_heads': \(2, 4\)\}"):
        load_checkpoint(path, match={"config": other})
    load_checkpoint(path, "duetrl.test", {"step": 3, "config": {"d_model": 8, "num_heads": 2}})
    spec = {group: describe(tensors) for group, tensors in saved.tensors.items()}
    load_checkpoint(path, expected=spec)
    wider = {**spec, "value_head": {**spec["value_head"], "kernel": ((8, 2), "float64")}}
    with pytest.raises(CheckpointError, match=r"\[value_head\]: parameter 'kernel' has shape \(8, 1\), "
                                              r"expected \(8, 2\)"):
        load_checkpoint(path, expected=wider)
    float32 = {**spec, "value_head": {**spec["value_head"], "kernel": ((8, 1), "float32")}}
    with pytest.raises(CheckpointError, match="'kernel' has dtype float64, expected float32"):
        load_checkpoint(path, expected=float32)
    load_checkpoint(path, expected=float32, check_dtype=False)
    with pytest.raises(CheckpointError, match=r"\[reference\]: .*missing \['a'\]"):
        load_checkpoint(path, expected={"reference": {"a": ((1,), "float64")}})


def test_group_names_without_a_dot(tmp_path) -> None:
    with pytest.raises(ValueError, match="tensors: expected group names without a dot, got 'a.b'"):
        save_checkpoint(tmp_path / "x.safetensors", Checkpoint("k", {"a.b": {"c": np.ones(1)}}))
    assert not (tmp_path / "x.safetensors").exists()


def test_require_same_settings_names_each_differing_field_and_lets_the_changeable_ones_pass():
    from duetrl.core.checkpoint import require_same_settings

    now = {"lr": 0.1, "steps": 20, "seed": 0}
    require_same_settings({"lr": 0.1, "steps": 10, "seed": 0}, now, "run.ckpt", ("steps",))
    with pytest.raises(CheckpointError, match=r"'run.ckpt'.*'lr': \(0.2, 0.1\).*only \['steps'\]"):
        require_same_settings({"lr": 0.2, "steps": 10, "seed": 0}, now, "run.ckpt", ("steps",))
    with pytest.raises(CheckpointError, match=r"'steps': \(10, 20\)"):  # no field may change
        require_same_settings({"lr": 0.1, "steps": 10, "seed": 0}, now, "run.ckpt")
    # a field the checkpoint lacks: compared as its default when one is given, else missing
    require_same_settings({"lr": 0.1, "steps": 20}, now, "run.ckpt", defaults={"seed": 0})
    with pytest.raises(CheckpointError, match=r"'seed': \(1, 0\)"):
        require_same_settings({"lr": 0.1, "steps": 20}, now, "run.ckpt", defaults={"seed": 1})
    with pytest.raises(CheckpointError, match=r"'seed': \(None, 0\)"):
        require_same_settings({"lr": 0.1, "steps": 20}, now, "run.ckpt")
    with pytest.raises(CheckpointError, match="holds no settings.*got list"):
        require_same_settings([], now, "run.ckpt")
