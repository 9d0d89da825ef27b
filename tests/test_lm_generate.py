"""Generation: the KV cache changes nothing but speed, both backends pick the same tokens, the
log-probabilities are the model's, and the sampling filters do what they say."""

from __future__ import annotations

import numpy as np
import pytest

from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.gpt_params import init_gpt_params
from duetrl.core.reference.functional import log_softmax
from duetrl.core.reference.gpt import gpt_forward
from duetrl.core.sampling import choose_tokens, filter_logits
from duetrl.core.tolerances import assert_close

CONFIG = GPTConfig(vocab_size=17, block_size=24, n_layer=2, n_head=2, n_embd=32)
SAMPLING = {
    "greedy": dict(greedy=True),
    "temperature": dict(temperature=0.7, seed=1),
    "top_k": dict(top_k=5, seed=2),
    "top_p": dict(top_p=0.8, temperature=1.3, seed=3),
}


@pytest.fixture(scope="module")
def params():
    params = init_gpt_params(CONFIG, 0, "float32", random_affine=True)
    params["wte.embeddings"] *= 20  # a peaked but not degenerate next-token distribution
    return params


def make_model(backend, params, dtype="float32"):
    model = backend.GPT(CONFIG, dtype=dtype)
    return backend.import_params(model, {k: v.astype(dtype) for k, v in params.items()})


PROMPT = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])


@pytest.mark.parametrize("mode", list(SAMPLING))
def test_cached_equals_uncached_and_backends_agree(backends, params, mode):
    results = {}
    for name, backend in backends.items():
        model = make_model(backend, params)
        for use_cache in (True, False):
            results[name, use_cache] = backend.generate(
                model, PROMPT, 12, use_cache=use_cache, **SAMPLING[mode]
            )
    first = results["torch", True]
    assert first.tokens.shape == (2, 16) and first.log_probs.shape == (2, 12)
    np.testing.assert_array_equal(first.tokens[:, :4], PROMPT)
    assert len(np.unique(first.new_tokens)) > 1, "a degenerate test model"
    for key, result in results.items():
        np.testing.assert_array_equal(result.tokens, first.tokens, err_msg=str(key))
        assert_close(result.log_probs, first.log_probs, 1e-4, f"log_probs {key}")
        assert_close(result.sampling_log_probs, first.sampling_log_probs, 1e-4, f"{key}")


def test_log_probs_are_the_models(backend, params):
    """log p(x_t | x_<t) from generation equals the float64 reference's log-softmax."""
    model = make_model(backend, params, "float64")
    result = backend.generate(model, PROMPT, 10, temperature=1.5, seed=5)
    logp = log_softmax(gpt_forward(params, result.tokens[:, :-1], CONFIG))  # (B, T-1, V)
    positions = np.arange(PROMPT.shape[1] - 1, result.tokens.shape[1] - 1)
    expected = np.take_along_axis(logp[:, positions], result.new_tokens[..., None], -1)[..., 0]
    assert_close(result.log_probs, expected, 1e-9, "generation log-probs")


def test_cached_forward_matches_full_forward(backend, params):
    """Feeding the prompt, then tokens one at a time through the cache gives the same logits
    as one full forward pass (float64: a semantic check)."""
    model = make_model(backend, params, "float64")
    tokens = np.random.default_rng(0).integers(0, CONFIG.vocab_size, size=(2, 10))
    full = backend.to_numpy(model(tokens))
    cache = backend.new_kv_cache(model, 2)
    logits, cache = run_cached(backend, model, tokens[:, :6], cache, 0)
    steps = [logits]
    for t in range(6, 10):
        logits, cache = run_cached(backend, model, tokens[:, t : t + 1], cache, t)
        steps.append(logits)
    assert_close(np.concatenate(steps, axis=1), full, "float64", "cached logits")


def run_cached(backend, model, tokens, cache, start):
    """Both backends return ``(logits, new cache)`` with the cache's shape and dtype kept."""
    out = backend.forward_with_cache(model, backend.as_tensor(tokens), cache, start)
    assert isinstance(out, tuple) and len(out) == 2, type(out)
    logits, new_cache = out
    assert tuple(new_cache.shape) == tuple(cache.shape) and new_cache.dtype == cache.dtype
    return backend.to_numpy(logits), new_cache


def test_cached_self_attention_writes_only_the_new_positions(backend, params):
    """The returned layer cache holds the old keys/values everywhere but at start..end-1,
    where it holds the new ones (the k, v projections of x)."""
    model = make_model(backend, params, "float64")
    attn = model.blocks[0].attn
    rng = np.random.default_rng(1)
    old = rng.normal(size=(2, 2, CONFIG.n_head, CONFIG.block_size, CONFIG.head_dim))
    x = rng.normal(size=(2, 3, CONFIG.n_embd))
    output, written = backend.cached_self_attention(
        attn, backend.as_tensor(x), backend.as_tensor(old), 5
    )
    written = backend.to_numpy(written)
    assert backend.to_numpy(output).shape == (2, 3, CONFIG.n_embd)
    np.testing.assert_array_equal(written[..., :5, :], old[..., :5, :])
    np.testing.assert_array_equal(written[..., 8:, :], old[..., 8:, :])
    k = x @ params["blocks.0.attn.k_linear.kernel"] + params["blocks.0.attn.k_linear.bias"]
    k = k.reshape(2, 3, CONFIG.n_head, CONFIG.head_dim).transpose(0, 2, 1, 3)
    assert_close(written[0, :, :, 5:8], k, 1e-5, "new keys at positions 5..7")


def test_decoder_keeps_tokens_on_the_host_and_checks_the_context(backend, params):
    model = make_model(backend, params)
    decoder = backend.Decoder(model, 2, use_cache=False)
    first = decoder(PROMPT, 0)
    assert isinstance(first, np.ndarray) and first.shape == (2, CONFIG.vocab_size)
    assert first.dtype == np.float64
    decoder(np.array([[1], [2]]), 4)
    assert isinstance(decoder.tokens, np.ndarray) and decoder.tokens.dtype == np.int64
    np.testing.assert_array_equal(decoder.tokens, np.concatenate([PROMPT, [[1], [2]]], axis=1))
    cached = backend.Decoder(model, 2)
    with pytest.raises(ValueError, match=r"new_tokens: .*block_size=24.* got 2 tokens \+ 23 more"):
        cached(np.array([[1, 2], [3, 4]]), 23)


def test_generation_bad_input(backend, params):
    model = make_model(backend, params)
    with pytest.raises(ValueError, match="block_size=24"):
        backend.generate(model, PROMPT, 21)
    with pytest.raises(ValueError, match="prompt: expected at least one token"):
        backend.generate(model, np.zeros((1, 0), dtype=np.int64), 3)
    with pytest.raises(ValueError, match=r"prompt: expected token ids in \[0, vocab_size=17\), got 99 at index \(0, 1\)"):
        backend.generate(model, np.array([[3, 99]]), 3)
    with pytest.raises(ValueError, match="temperature"):
        backend.generate(model, PROMPT, 3, temperature=0.0)
    with pytest.raises(ValueError, match="top_p"):
        backend.generate(model, PROMPT, 3, top_p=1.5)


def test_filters():
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]]))
    assert np.isinf(filter_logits(logits, top_k=2)[0, 2:]).all()
    assert np.isfinite(filter_logits(logits, top_k=2)[0, :2]).all()
    kept = np.isfinite(filter_logits(logits, top_p=0.75)[0])
    np.testing.assert_array_equal(kept, [True, True, False, False])  # 0.5 + 0.3 >= 0.75
    np.testing.assert_array_equal(
        np.isfinite(filter_logits(logits, top_p=0.1)[0]), [True, False, False, False]
    )
    assert_close(filter_logits(logits, temperature=2.0), logits / 2.0, "exact", "temperature")


def test_gumbel_sampling_draws_from_the_softmax():
    probs = np.array([0.5, 0.3, 0.15, 0.05])
    logits = np.tile(np.log(probs), (20000, 1))
    tokens, logp, sample_logp = choose_tokens(logits, np.random.default_rng(0))
    frequencies = np.bincount(tokens, minlength=4) / len(tokens)
    assert_close(frequencies, probs, 0.015, "sample frequencies")  # ~4 standard errors
    assert_close(logp, np.log(probs)[tokens], 1e-12, "log-probs")
    assert_close(sample_logp, logp, 1e-12, "unfiltered sampling log-probs")
