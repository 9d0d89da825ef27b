"""core/interfaces/encoder_params.py by hand: the encoder's canonical shapes, the head's
initial numbers, the attention-mask check and the masked accuracy (no framework: the backends'
use of them is tested in test_encoder.py)."""

from __future__ import annotations

import numpy as np
import pytest

from duetrl.core.interfaces.encoder_params import (
    check_attention_mask,
    encoder_param_shapes,
    head_param_shapes,
    init_encoder_params,
    masked_accuracy,
)
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.gpt_params import init_gpt_params, param_shapes

CONFIG = GPTConfig(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=32)
HEAD = {"head.dense.kernel": (32, 32), "head.dense.bias": (32,), "head.ln.scale": (32,),
        "head.ln.bias": (32,), "head.bias": (13,)}  # D = 32, V = 13


def test_shapes_are_the_gpts_and_the_heads():
    assert head_param_shapes(CONFIG) == HEAD
    assert encoder_param_shapes(CONFIG) == {**param_shapes(CONFIG), **HEAD}  # head by default
    assert encoder_param_shapes(CONFIG, head=False) == param_shapes(CONFIG)


def test_the_head_starts_as_documented():
    """The body is init_gpt_params(config, seed); the head's kernel ~ N(0, 0.02^2) from the
    generator (seed, 7), its biases 0 and its LayerNorm scale 1; float32 by default."""
    params = init_encoder_params(CONFIG, 3, "float64")
    assert set(params) == set(encoder_param_shapes(CONFIG))
    body = init_gpt_params(CONFIG, 3, "float64")
    assert all(np.array_equal(params[k], v) for k, v in body.items())
    kernel = np.random.default_rng((3, 7)).normal(0.0, 0.02, size=(32, 32))
    assert np.array_equal(params["head.dense.kernel"], kernel)
    for name in ("head.dense.bias", "head.ln.bias", "head.bias"):
        assert np.array_equal(params[name], np.zeros(HEAD[name])), name
    assert np.array_equal(params["head.ln.scale"], np.ones(32))
    default = init_encoder_params(CONFIG)  # seed 0, float32, with the head
    assert set(default) == set(params) and default["head.bias"].dtype == np.float32
    assert all(np.array_equal(v, init_encoder_params(CONFIG, 0)[k]) for k, v in default.items())
    assert not np.array_equal(default["head.dense.kernel"], params["head.dense.kernel"])
    assert set(init_encoder_params(CONFIG, 3, head=False)) == set(param_shapes(CONFIG))


def test_random_affine_draws_the_biases_and_scales_too():
    """With random_affine, after the kernel the same generator draws, in the order of the
    shapes: the dense bias, the LayerNorm scale (1 + N(0, 0.1^2)), its bias and the output
    bias (each N(0, 0.1^2))."""
    params = init_encoder_params(CONFIG, 3, "float64", random_affine=True)
    rng = np.random.default_rng((3, 7))
    assert np.array_equal(params["head.dense.kernel"], rng.normal(0.0, 0.02, size=(32, 32)))
    assert np.array_equal(params["head.dense.bias"], rng.normal(0.0, 0.1, size=32))
    assert np.array_equal(params["head.ln.scale"], 1.0 + rng.normal(0.0, 0.1, size=32))
    assert np.array_equal(params["head.ln.bias"], rng.normal(0.0, 0.1, size=32))
    assert np.array_equal(params["head.bias"], rng.normal(0.0, 0.1, size=13))


def test_the_attention_mask_check():
    check_attention_mask(None, (2, 3))  # None: every position is a token
    check_attention_mask(np.array([[1, 1, 0], [1, 0, 0]]), (2, 3))  # 0 and 1: fine
    check_attention_mask(np.zeros((2, 3)), [2, 3])  # all padding is still 0/1
    check_attention_mask(np.ones((2, 3), bool), (2, 3))
    with pytest.raises(ValueError, match=r"attention_mask: expected the ids' shape \(2, 3\)"):
        check_attention_mask(np.ones((3, 2)), (2, 3))
    for bad in ([[1, 0, 2], [1, 1, 1]], [[1, 0, -1], [1, 1, 1]], [[1, 0.5, 0], [1, 1, 1]]):
        with pytest.raises(ValueError, match=r"attention_mask: expected 0 \(padding\) or 1"):
            check_attention_mask(np.array(bad), (2, 3))


def test_masked_accuracy_by_hand():
    """argmax over the vocabulary, compared with the targets at the selected positions."""
    logits = np.zeros((2, 3, 4))
    for b, t, k in [(0, 0, 1), (0, 1, 2), (0, 2, 3), (1, 0, 0), (1, 1, 1), (1, 2, 2)]:
        logits[b, t, k] = 1.0  # argmax [[1, 2, 3], [0, 1, 2]]
    targets = np.array([[1, 0, 3], [0, 1, 1]])  # right at (0, 0), (0, 2), (1, 0), (1, 1)
    selected = np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])  # 0/1 floats, as trainers pass
    # 4 right of the 5 selected; (1, 2) is wrong but not selected
    assert masked_accuracy(logits, targets, selected) == pytest.approx(0.8, abs=1e-15)
    assert masked_accuracy(logits, targets, selected.astype(bool)) == pytest.approx(0.8)
    one = np.zeros((2, 3))
    one[0, 1] = 1  # only (0, 1), where the argmax 2 is not the target 0
    assert masked_accuracy(logits, targets, one) == 0.0
    with pytest.raises(ValueError, match="selected: expected at least one selected position"):
        masked_accuracy(logits, targets, np.zeros((2, 3)))
