"""Generation: the KV cache changes nothing but speed, both backends pick the same tokens, the
log-probabilities are the model's, and the sampling filters do what they say."""

from __future__ import annotations

import numpy as np
import pytest

from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.gpt_params import init_gpt_params
from duetrl.core.reference.functional import log_softmax
from duetrl.core.reference.gpt import gpt_forward
from duetrl.core.sampling import check_sampling_args, choose_tokens, filter_logits, generate
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


@pytest.fixture(scope="module")
def models(backends, params) -> dict:
    """One float32 model per backend for every sampling mode below: generation leaves a model's
    weights as they are, and TensorFlow traces its decoding steps once per model, not per mode."""
    return {name: make_model(backend, params) for name, backend in backends.items()}


@pytest.mark.parametrize("mode", list(SAMPLING))
def test_cached_equals_uncached_and_backends_agree(backends, models, mode):
    results = {}
    for name, backend in backends.items():
        model = models[name]
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


def test_top_p_cut_off_is_exact_and_ties_go_by_token_id():
    """Probabilities 0.125, 0.5, 0.125, 0.25 (exact in binary): by probability the mass before
    each token is 0 (id 1), 0.5 (id 3), 0.75 (id 0), 0.875 (id 2). A token is dropped when the
    more likely ones already hold p: p = 0.75 keeps ids 1 and 3 exactly; a hair more keeps id 0,
    the tie at 0.125 going to the lower id; p = 0.5 keeps id 1 alone; p = 1 keeps all."""
    logits = np.log(np.array([[0.125, 0.5, 0.125, 0.25], [0.25, 0.25, 0.25, 0.25]]))

    def kept(p):
        return np.isfinite(filter_logits(logits, top_p=p)).tolist()

    assert kept(0.75) == [[False, True, False, True], [True, True, True, False]]
    assert kept(0.75 + 1e-9) == [[True, True, False, True], [True, True, True, True]]
    assert kept(0.5) == [[False, True, False, False], [True, True, False, False]]
    assert kept(1.0) == [[True] * 4] * 2
    # 24 tokens, eight tied at the top: p = 2.5 of their shares keeps the three lowest ids
    z = np.array([[2.0, 1, 1, 0, 0, 0, 0, 0, 0, 2, 1, 2, 1, 1, 2, 2, 1, 1, 1, 2, 0, 2, 2, 0]])
    share = np.exp(2.0) / (8 * np.exp(2.0) + 9 * np.exp(1.0) + 7)
    np.testing.assert_array_equal(np.flatnonzero(np.isfinite(filter_logits(z, top_p=2.5 * share))),
                                  [0, 9, 11])


def test_top_k_keeps_ties_at_the_cut_and_filters_after_the_temperature():
    logits = np.array([[3.0, 1.0, 1.0, 0.0], [0.0, 4.0, 2.0, 6.0]])
    kept = np.isfinite(filter_logits(logits, top_k=2))
    assert kept.tolist() == [[True, True, True, False], [False, True, False, True]]
    assert np.isfinite(filter_logits(logits, top_k=4)).all()
    assert np.isfinite(filter_logits(logits, top_k=1)).sum(axis=-1).tolist() == [1, 1]
    filtered = filter_logits(logits, temperature=0.5, top_k=1)
    assert filtered[0, 0] == 6.0 and filtered[1, 3] == 12.0  # z / tau, then the cut


def test_sampling_log_probs_are_of_the_filtered_distribution():
    """top-k 2 of [0.5, 0.3, 0.15, 0.05]: a kept token has sampling probability p / 0.8."""
    probs = np.array([0.5, 0.3, 0.15, 0.05])
    logits = np.tile(np.log(probs), (200, 1))
    tokens, logp, sample_logp = choose_tokens(logits, np.random.default_rng(0), top_k=2)
    assert set(tokens.tolist()) == {0, 1}
    np.testing.assert_allclose(logp, np.log(probs[tokens]), rtol=1e-12)
    np.testing.assert_allclose(sample_logp, np.log(probs[tokens] / 0.8), rtol=1e-12)
    greedy = choose_tokens(np.log(probs)[None, ::-1], None, greedy=True)
    assert greedy[0].tolist() == [3] and greedy[2].tolist() == [0.0]
    np.testing.assert_allclose(greedy[1], np.log([0.5]), rtol=1e-12)


def test_generate_feeds_the_prompt_then_each_token_and_not_after_the_last():
    """A scripted decoder that always favours token (last fed token + 1) mod 17."""
    calls = []

    def next_logits(tokens, start):
        calls.append((tokens.tolist(), start))
        logits = np.zeros((tokens.shape[0], CONFIG.vocab_size))
        logits[np.arange(tokens.shape[0]), (tokens[:, -1] + 1) % CONFIG.vocab_size] = 10.0
        return logits

    out = generate(next_logits, np.array([3, 4]), 3, CONFIG, greedy=True)
    assert out.new_tokens.tolist() == [[5, 6, 7]] and out.tokens.tolist() == [[3, 4, 5, 6, 7]]
    assert calls == [([[3, 4]], 0), ([[5]], 2), ([[6]], 3)]  # no logits after the last token
    assert out.log_probs.shape == (1, 3) and not out.sampling_log_probs.any()
    calls.clear()
    empty = generate(next_logits, np.array([[3, 4]]), 0, CONFIG)
    assert calls == [] and empty.tokens.tolist() == [[3, 4]] and empty.new_tokens.shape == (1, 0)
    a = generate(next_logits, np.array([[1], [2]]), 4, CONFIG, temperature=5.0, seed=7)
    b = generate(next_logits, np.array([[1], [2]]), 4, CONFIG, temperature=5.0, seed=7)
    np.testing.assert_array_equal(a.tokens, b.tokens)
    with pytest.raises(ValueError, match="top_k: expected a positive int or None, got 0"):
        generate(next_logits, np.array([3]), 2, CONFIG, top_k=0)
    with pytest.raises(ValueError, match="max_new_tokens: expected an int >= 0, got -1"):
        generate(next_logits, np.array([3]), -1, CONFIG)
    with pytest.raises(ValueError, match=r"top_p: expected a probability in \(0, 1\]"):
        generate(next_logits, np.array([3]), 2, CONFIG, top_p=0.0)


# ---- hand cases from mutation testing (MUTATION.md) ----------------------------------------


def test_top_p_drops_to_minus_inf_and_p_1_keeps_even_a_token_of_mass_1e_22() -> None:
    """Dropped tokens get -inf (never drawn), the kept ones z unchanged; p = 1 keeps everything,
    even a token of probability e^-50 / (1 + e^-50) ~ 2e-22, whose mass before it rounds to 1."""
    logits = np.log(np.array([[0.125, 0.5, 0.125, 0.25]]))
    assert filter_logits(logits, top_p=0.75).tolist() == [
        [-np.inf, np.log(0.5), -np.inf, np.log(0.25)]]
    sure = np.array([[0.0, -50.0]])
    assert filter_logits(sure, top_p=1.0).tolist() == [[0.0, -50.0]]


def test_filters_work_in_float64_whatever_the_logits_dtype() -> None:
    """float32 logits (a backend's) are divided by tau in float64, as the float64 ones are: both
    backends' logits meet the same noise in the same precision."""
    logits = np.array([[0.1, 0.7, -0.3]], dtype=np.float32)
    z = filter_logits(logits, temperature=0.7)
    assert z.dtype == np.float64 and z.tolist() == (logits.astype(np.float64) / 0.7).tolist()


def test_top_k_top_p_and_temperature_are_checked_at_their_bounds() -> None:
    check_sampling_args(1e-3, 1, 1.0, 0)  # the smallest accepted values, and p = 1
    bad = [((0.0, None, None, 1), "temperature: expected a positive float, got 0.0"),
           ((-0.5, None, None, 1), "temperature: expected a positive float, got -0.5"),
           ((1.0, 0, None, 1), "top_k: expected a positive int or None, got 0"),
           ((1.0, None, 1.5, 1), r"top_p: expected a probability in \(0, 1\] or None, got 1.5"),
           ((1.0, None, 0.0, 1), r"top_p: expected a probability in \(0, 1\] or None, got 0.0")]
    for args, message in bad:
        with pytest.raises(ValueError, match=message):
            check_sampling_args(*args)


def _scripted(tokens: np.ndarray, start: int) -> np.ndarray:
    """Logits (B, 17) that favour (last token + 1) mod 17 by 2 nats over the rest."""
    logits = np.zeros((tokens.shape[0], CONFIG.vocab_size))
    logits[np.arange(tokens.shape[0]), (tokens[:, -1] + 1) % CONFIG.vocab_size] = 2.0
    return logits


def test_generate_feeds_defaults_sampling_at_temperature_1_with_seed_0() -> None:
    """By default generate samples (not greedy) at tau = 1 with seed 0: the same tokens and
    sampling log-probabilities as those settings spelled out, which at tau = 1 with no filter
    are the model's log-probabilities; integer ids come back."""
    prompt = np.array([[1], [2], [3], [4]])
    default = generate(_scripted, prompt, 6, CONFIG)
    spelled = generate(_scripted, prompt, 6, CONFIG, greedy=False, temperature=1.0, seed=0)
    np.testing.assert_array_equal(default.tokens, spelled.tokens)
    np.testing.assert_array_equal(default.sampling_log_probs, spelled.sampling_log_probs)
    np.testing.assert_array_equal(default.sampling_log_probs, default.log_probs)
    greedy = generate(_scripted, prompt, 6, CONFIG, greedy=True)
    assert not np.array_equal(default.tokens, greedy.tokens)  # 24 draws, each off-peak 59%
    assert default.tokens.dtype == default.new_tokens.dtype == np.int64


def test_generate_feeds_a_prompt_that_fits_the_context_with_its_new_tokens() -> None:
    """block_size 24: a prompt of 20 tokens leaves room for 4 new ones, not 5."""
    prompt = np.arange(20) % CONFIG.vocab_size
    assert generate(_scripted, prompt, 4, CONFIG, greedy=True).tokens.shape == (1, 24)
    with pytest.raises(ValueError, match=r"prompt: expected at most block_size=24 tokens in the "
                                         r"context, got 20 tokens \+ 5 more = 25"):
        generate(_scripted, prompt, 5, CONFIG, greedy=True)
