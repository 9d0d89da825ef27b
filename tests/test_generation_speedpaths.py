"""The fast paths of cached decoding (issue 21) change nothing but speed.

TensorFlow's ``Decoder`` keeps its weights and KV cache in ``tf.Variable``\\ s that its
compiled steps capture (``_DecodingState``), writes the cache in place, and reuses a model's
compiled steps across decoders. Each test here kills one way that could go wrong: a state
handed to two live decoders, weights not reloaded after an update, a cache left dirty by the
last decoder, a rewritten position off by one, XLA and the plain graph disagreeing, a model
kept alive by its compiled steps. PyTorch runs the same contract where it applies.
"""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.gpt_params import init_gpt_params
from duetrl.core.tolerances import assert_close

CONFIG = GPTConfig(vocab_size=13, block_size=10, n_layer=2, n_head=2, n_embd=8)
PROMPT = np.array([[1, 2, 3], [4, 5, 6]])
NEXT = np.array([[7, 8, 9, 10, 11], [12, 0, 1, 2, 3]])  # fed one column at a time


def make_model(backend, seed: int = 0, dtype: str = "float64"):
    params = init_gpt_params(CONFIG, seed, dtype, random_affine=True)
    return backend.import_params(backend.GPT(CONFIG, dtype=dtype), params)


def decoder_logits(decoder, prompt=PROMPT, tokens=NEXT) -> np.ndarray:
    """(B, 1 + n, V): the prompt's last logits, then one step per column of ``tokens``."""
    steps = [decoder(prompt, 0)]
    for i in range(tokens.shape[1]):
        steps.append(decoder(tokens[:, i : i + 1], prompt.shape[1] + i))
    return np.stack(steps, axis=1)


def reference_logits(backend, model, prompt=PROMPT, tokens=NEXT) -> np.ndarray:
    """The same logits from one full forward pass over prompt + tokens."""
    full = backend.to_numpy(model(np.concatenate([prompt, tokens], axis=1)))
    return full[:, prompt.shape[1] - 1 :]


@pytest.fixture(scope="module")
def tf_model(backends):
    return make_model(backends["tf"])


def test_tf_decoder_equals_the_full_forward_before_and_after_the_switch_to_xla(
    backends, monkeypatch
):
    """float64: a semantic check of the in-place cache write and the mask of every step, in
    the plain graph (steps 1 and 2) and in XLA (from step 3 when ``XLA_DECODE_AFTER`` = 2)."""
    from duetrl.backends.tf import generation

    monkeypatch.setattr(generation, "XLA_DECODE_AFTER", 2)
    backend = backends["tf"]
    model = make_model(backend)
    decoder = backend.Decoder(model, 2)
    got = [decoder(PROMPT, 0)]
    for i in range(NEXT.shape[1]):
        got.append(decoder(NEXT[:, i : i + 1], 3 + i))
        compiled = set(decoder.state.steps)
        assert ("decode_xla" in compiled) == (i >= 2), f"step {i + 1}: {compiled}"
    assert decoder.state.decode_calls == NEXT.shape[1]
    expected = reference_logits(backend, model)
    assert_close(np.stack(got, 1), expected, "float64", "decoder, graph then XLA")


def test_torch_decoder_equals_the_full_forward(backends):
    backend = backends["torch"]
    model = make_model(backend)
    got = decoder_logits(backend.Decoder(model, 2))
    assert_close(got, reference_logits(backend, model), "float64", "torch decoder")


def test_live_decoders_of_one_model_never_share_a_cache(backends, tf_model):
    """Two decoders fed different tokens in turn each see only their own: the second gets a
    state of its own while the first is alive, also when a freed state is there to reuse."""
    backend = backends["tf"]
    backend.Decoder(tf_model, 2)  # gone at once: its state is free
    first, second = backend.Decoder(tf_model, 2), backend.Decoder(tf_model, 2)
    assert first.state is not second.state
    other_prompt, other_next = PROMPT[::-1], NEXT[::-1]
    a, b = [first(PROMPT, 0)], [second(other_prompt, 0)]
    for i in range(NEXT.shape[1]):
        a.append(first(NEXT[:, i : i + 1], 3 + i))
        b.append(second(other_next[:, i : i + 1], 3 + i))
    assert_close(np.stack(a, 1), reference_logits(backend, tf_model), "float64", "first")
    expected = reference_logits(backend, tf_model, other_prompt, other_next)
    assert_close(np.stack(b, 1), expected, "float64", "second")


def test_a_freed_state_is_reused_compiled_and_clean(backends, tf_model):
    """A decoder gone frees its state: the next one reuses it (no new trace or XLA compile)
    with the cache zeroed, so even NaN left in it by another run changes nothing."""
    backend = backends["tf"]
    decoder = backend.Decoder(tf_model, 2)
    decoder_logits(decoder)
    state, steps = decoder.state, dict(decoder.state.steps)
    assert set(steps) == {"prefill"}  # one graph for the prompt and every token before XLA
    del decoder
    gc.collect()
    for layer_cache in state.cache:
        layer_cache.assign(np.full(layer_cache.shape, np.nan))
    again = backend.Decoder(tf_model, 2)
    assert again.state is state and again.state.steps == steps  # the same compiled functions
    assert_close(decoder_logits(again), reference_logits(backend, tf_model), "float64", "reused")


@pytest.mark.parametrize("name", ["torch", "tf"])
def test_a_decoder_made_after_an_update_reads_the_new_weights(backends, name):
    """The weights are a snapshot taken when the decoder is made: change the model, make a
    new decoder, and its logits are the new model's (a reused state is reloaded)."""
    backend = backends[name]
    model = make_model(backend, seed=0)
    before = decoder_logits(backend.Decoder(model, 2))
    backend.import_params(model, init_gpt_params(CONFIG, 1, "float64", random_affine=True))
    after = decoder_logits(backend.Decoder(model, 2))
    assert np.abs(after - before).max() > 1e-3, "the update changed nothing: a useless test"
    assert_close(after, reference_logits(backend, model), "float64", f"{name} after update")


@pytest.mark.parametrize("start, t_new", [(0, 3), (4, 1), (7, 3), (9, 1)])
def test_tf_cache_write_in_place_equals_the_written_tensor(backends, start, t_new):
    """``attend_with_cache`` on a ``tf.Variable`` (in place, the Decoder's path) and on a
    tensor (a new tensor, ``forward_with_cache``'s path) write the same positions
    start..start+t_new-1, at the first and the last ones of the block too, and attend alike."""
    import tensorflow as tf

    from duetrl.backends.tf.generation import attend_with_cache

    rng = np.random.default_rng(start)
    b, heads, hd = 2, CONFIG.n_head, CONFIG.head_dim
    old = rng.normal(size=(2, b, heads, CONFIG.block_size, hd))
    q, k, v = (tf.constant(rng.normal(size=(b, heads, t_new, hd))) for _ in range(3))
    variable = tf.Variable(old)
    out_variable, returned = attend_with_cache(q, k, v, variable, tf.constant(start))
    out_tensor, written = attend_with_cache(q, k, v, tf.constant(old), tf.constant(start))
    assert returned is variable
    expected = old.copy()
    expected[:, :, :, start : start + t_new] = np.stack([k.numpy(), v.numpy()])
    np.testing.assert_array_equal(variable.numpy(), expected)
    np.testing.assert_array_equal(written.numpy(), expected)
    np.testing.assert_array_equal(out_variable.numpy(), out_tensor.numpy())


def test_compiled_steps_do_not_keep_a_model_alive(backends):
    """The compiled steps and states live in dictionaries keyed weakly by the model; a value
    that held the model itself would keep every model ever generated from in memory."""
    backend = backends["tf"]
    model = make_model(backend, dtype="float32")
    backend.Decoder(model, 1, use_cache=False)(PROMPT[:1], 0)
    backend.Decoder(model, 1)(PROMPT[:1], 0)
    gone = weakref.ref(model)
    del model
    gc.collect()
    assert gone() is None
