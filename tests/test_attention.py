"""Multi-head attention: each backend vs the float64 reference, and torch vs tf directly."""

from __future__ import annotations

import numpy as np
import pytest

from duetrl.core.reference.attention import (
    causal_mask,
    init_multi_head_attention_params,
    multi_head_attention,
    scaled_dot_product_attention,
    softmax,
)
from duetrl.core.tolerances import assert_close

D_MODEL, HEADS = 16, 4


def tolerance(dtype: str) -> str:
    return "float64" if dtype == "float64" else "float32_layer"


def padding_mask(batch: int, q_len: int, k_len: int, rng) -> np.ndarray:
    """(B, q_len, k_len) with random key lengths; the first query row of batch 0 fully masked."""
    lengths = rng.integers(1, k_len + 1, size=batch)
    mask = np.broadcast_to(np.arange(k_len) < lengths[:, None, None], (batch, q_len, k_len))
    mask = mask.astype("float64").copy()
    mask[0, 0, :] = 0.0  # a fully masked row must give a finite (uniform) result
    return mask


CASES = {
    "no mask": dict(batch=2, q_len=5, k_len=5, heads=HEADS, mask=None),
    "causal": dict(batch=2, q_len=6, k_len=6, heads=HEADS, mask="causal"),
    "padding + fully masked row": dict(batch=3, q_len=4, k_len=7, heads=HEADS, mask="padding"),
    "q_len != k_len": dict(batch=2, q_len=3, k_len=9, heads=HEADS, mask=None),
    "batch 1, one head": dict(batch=1, q_len=5, k_len=5, heads=1, mask="causal"),
    "key padding (B, 1, k_len)": dict(batch=2, q_len=4, k_len=6, heads=2, mask="keys"),
}


def make_case(case: dict, seed: int = 0):
    rng = np.random.default_rng(seed)
    b, tq, tk = case["batch"], case["q_len"], case["k_len"]
    q = rng.normal(size=(b, tq, D_MODEL))
    k = rng.normal(size=(b, tk, D_MODEL))
    v = rng.normal(size=(b, tk, D_MODEL))
    mask = {
        None: None,
        "causal": causal_mask(tq),
        "padding": padding_mask(b, tq, tk, rng),
        "keys": (rng.random((b, 1, tk)) > 0.3).astype("float64"),
    }[case["mask"]]
    return q, k, v, mask


def run_backend(backend, params, q, k, v, mask, heads, dtype, weights=False):
    layer = backend.MultiHeadAttention(D_MODEL, heads, dtype=dtype)
    backend.import_params(layer, {n: p.astype(dtype) for n, p in params.items()})
    t = [backend.as_tensor(x.astype(dtype)) for x in (q, k, v)]
    m = None if mask is None else backend.as_tensor(mask.astype(dtype))
    result = layer(*t, m, return_attention_weights=weights)
    if weights:
        return backend.to_numpy(result[0]), backend.to_numpy(result[1])
    return backend.to_numpy(result)


def test_reference_softmax_rows_sum_to_one_and_resist_overflow() -> None:
    x = np.array([[1000.0, 1000.0], [-1000.0, 0.0]])
    s = softmax(x)
    assert_close(s.sum(-1), np.ones(2), "float64")
    assert_close(s[0], [0.5, 0.5], "float64")


def test_reference_attention_by_hand() -> None:
    """One query, two keys: weights softmax([q.k1, q.k2] / sqrt(2)), output their mix of v."""
    q = np.array([[1.0, 0.0]])
    k = np.array([[1.0, 0.0], [0.0, 1.0]])
    v = np.array([[10.0], [20.0]])
    out, w = scaled_dot_product_attention(q, k, v, return_attention_weights=True)
    e = np.exp(1 / np.sqrt(2))
    assert_close(w, [[e / (e + 1), 1 / (e + 1)]], "float64")
    assert_close(out, [[10 * e / (e + 1) + 20 / (e + 1)]], "float64")


def test_reference_fully_masked_row_is_uniform() -> None:
    rng = np.random.default_rng(0)
    q, k, v = rng.normal(size=(1, 3, 4)), rng.normal(size=(1, 5, 4)), rng.normal(size=(1, 5, 4))
    mask = np.ones((1, 3, 5))
    mask[0, 1] = 0
    out, w = scaled_dot_product_attention(q, k, v, mask, return_attention_weights=True)
    assert_close(w[0, 1], np.full(5, 0.2), "float64")
    assert_close(out[0, 1], v[0].mean(0), "float64")


@pytest.mark.parametrize("case_name", CASES)
@pytest.mark.parametrize("weights", [False, True], ids=["fast path", "with weights"])
def test_backend_matches_reference(backend, dtype, case_name, weights) -> None:
    case = CASES[case_name]
    q, k, v, mask = make_case(case)
    params = init_multi_head_attention_params(D_MODEL, seed=1)
    expected, expected_w = multi_head_attention(params, q, k, v, case["heads"], mask, True)
    result = run_backend(backend, params, q, k, v, mask, case["heads"], dtype, weights)
    if weights:
        out, w = result
        assert_close(w, expected_w, tolerance(dtype), f"{backend.NAME} attention weights")
    else:
        out = result
    assert out.dtype == np.dtype(dtype)
    assert_close(out, expected, tolerance(dtype), f"{backend.NAME} output ({case_name})")


@pytest.mark.parametrize("case_name", CASES)
def test_torch_and_tf_agree_in_float32(backends, case_name) -> None:
    case = CASES[case_name]
    q, k, v, mask = make_case(case, seed=3)
    params = init_multi_head_attention_params(D_MODEL, seed=4)
    outs = [
        run_backend(backends[n], params, q, k, v, mask, case["heads"], "float32")
        for n in ("torch", "tf")
    ]
    assert_close(outs[0], outs[1], "float32_layer", "torch vs tf output")


@pytest.mark.parametrize("case_name", CASES)
def test_gradients_agree_across_backends(backends, dtype, case_name) -> None:
    """d sum(output * probe) / d (q, k, v, every parameter), torch vs tf and finite."""
    case = CASES[case_name]
    q, k, v, mask = make_case(case, seed=5)
    params = init_multi_head_attention_params(D_MODEL, seed=6)
    probe = np.random.default_rng(7).normal(size=(case["batch"], case["q_len"], D_MODEL))
    grads = {}
    for name, backend in backends.items():
        layer = backend.MultiHeadAttention(D_MODEL, case["heads"], dtype=dtype)
        backend.import_params(layer, {n: p.astype(dtype) for n, p in params.items()})
        m = None if mask is None else backend.as_tensor(mask.astype(dtype))
        p = backend.as_tensor(probe.astype(dtype))
        loss_fn = lambda q_, k_, v_, b=backend, f=layer, m=m, p=p: b.probe_loss(f(q_, k_, v_, m), p)
        _, param_grads, input_grads = backend.loss_and_gradients(
            layer, loss_fn, *(x.astype(dtype) for x in (q, k, v))
        )
        grads[name] = (param_grads, input_grads)
    # gradients sum over batch * length terms: float32 is compared at the model tolerance
    tol = "float64" if dtype == "float64" else "float32_model"
    assert sorted(grads["torch"][0]) == sorted(params)
    for pname in params:
        assert_close(grads["torch"][0][pname], grads["tf"][0][pname], tol, f"d/d {pname}")
    for i, label in enumerate("qkv"):
        assert_close(grads["torch"][1][i], grads["tf"][1][i], tol, f"d/d {label}")
        assert np.all(np.isfinite(grads["torch"][1][i]))


def test_gradients_match_finite_differences_of_reference(backend) -> None:
    """float64 backend gradient w.r.t. one kernel entry vs a central difference of the reference."""
    case = CASES["padding + fully masked row"]
    q, k, v, mask = make_case(case, seed=8)
    params = init_multi_head_attention_params(D_MODEL, seed=9)
    probe = np.random.default_rng(10).normal(size=(case["batch"], case["q_len"], D_MODEL))
    layer = backend.MultiHeadAttention(D_MODEL, HEADS, dtype="float64")
    backend.import_params(layer, params)
    m, p = backend.as_tensor(mask), backend.as_tensor(probe)
    kt, vt = backend.as_tensor(k), backend.as_tensor(v)
    loss_fn = lambda q_: backend.probe_loss(layer(q_, kt, vt, m), p)
    _, grads, _ = backend.loss_and_gradients(layer, loss_fn, q)

    def reference_loss(ps):
        return float(np.sum(multi_head_attention(ps, q, k, v, HEADS, mask) * probe))

    entries = [("q_linear.kernel", (2, 5)), ("k_linear.bias", (3,)), ("out.kernel", (0, 1))]
    for pname, index in entries:
        h = 1e-6
        plus = {n: a.copy() for n, a in params.items()}
        minus = {n: a.copy() for n, a in params.items()}
        plus[pname][index] += h
        minus[pname][index] -= h
        numeric = (reference_loss(plus) - reference_loss(minus)) / (2 * h)
        assert abs(grads[pname][index] - numeric) < 1e-6, (pname, grads[pname][index], numeric)


@pytest.mark.parametrize("mask_dtype", ["bool", "int32", "float32"])
def test_mask_dtypes_mean_the_same(backend, mask_dtype) -> None:
    q, k, v, mask = make_case(CASES["padding + fully masked row"], seed=11)
    params = init_multi_head_attention_params(D_MODEL, seed=12)
    expected = multi_head_attention(params, q, k, v, HEADS, mask)
    layer = backend.MultiHeadAttention(D_MODEL, HEADS, dtype="float32")
    backend.import_params(layer, {n: p.astype("float32") for n, p in params.items()})
    t = [backend.as_tensor(x.astype("float32")) for x in (q, k, v)]
    for weights in (False, True):
        out = layer(*t, backend.as_tensor(mask.astype(mask_dtype)), return_attention_weights=weights)
        out = out[0] if weights else out
        assert_close(out, expected, "float32_layer", f"{mask_dtype} mask, weights={weights}")


def test_keras_layer_config_round_trip(backends) -> None:
    tf_b = backends["tf"]
    layer = tf_b.MultiHeadAttention(12, 3, dtype="float64", name="attention")
    clone = tf_b.MultiHeadAttention.from_config(layer.get_config())
    assert (clone.d_model, clone.num_heads, clone.head_dim) == (12, 3, 4)
    assert clone.dtype_policy.name == "float64" and clone.name == "attention"


def test_tf_layer_runs_inside_tf_function(backends) -> None:
    """The hot path of a Keras model is a traced graph; attention must trace and agree."""
    import tensorflow as tf

    tf_b = backends["tf"]
    q, k, v, mask = make_case(CASES["causal"], seed=13)
    params = init_multi_head_attention_params(D_MODEL, seed=14)
    layer = tf_b.import_params(tf_b.MultiHeadAttention(D_MODEL, HEADS, dtype="float64"), params)
    traced = tf.function(lambda x, m: layer(x, x, x, m))
    out = traced(tf.constant(q), tf.constant(mask))
    assert_close(out, multi_head_attention(params, q, q, q, HEADS, mask), "float64")
