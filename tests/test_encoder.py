"""The BERT-style encoder (outline 7.1.2) in both backends against the float64 reference and
each other: logits, loss, gradients, bidirectional attention, padding, BERT's masking rule and
its mutants, weights through a safetensors file, a seeded learning run, bad input."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from duetrl.core.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.gpt_params import init_gpt_params
from duetrl.core.lm.mlm import MLMData, train_mlm
from duetrl.core.lm.train import TrainConfig
from duetrl.core.reference import encoder as ref
from duetrl.core.reference.attention import causal_mask
from duetrl.core.reference.gpt import gpt_hidden_states
from duetrl.core.tolerances import assert_close
from duetrl.core.weights import describe

CONFIG = GPTConfig(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=32)
MASK_ID, PAD_ID = 12, 11
TOL = {"float64": "float64", "float32": "float32_model"}


def enc(backend):
    """The backend's encoder module (``duetrl.backends.<name>.encoder``)."""
    return importlib.import_module(f"duetrl.backends.{backend.NAME}.encoder")


def make_model(backend, dtype, cls="MaskedLM", seed=0):
    params = ref.init_encoder_params(CONFIG, seed, dtype, head=cls == "MaskedLM",
                                     random_affine=True)
    model = getattr(enc(backend), cls)(CONFIG, dtype=dtype)
    backend.import_params(model, params)
    return model, params


def padded_batch(seed=0, shape=(3, 8)):
    """Ids of ordinary tokens (< PAD_ID), and a padding mask with 8, 5 and 3 real tokens."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, PAD_ID, size=shape)
    attention_mask = np.ones(shape, dtype=np.int64)
    attention_mask[1, 5:] = attention_mask[2, 3:] = 0
    ids[attention_mask == 0] = PAD_ID
    return ids, attention_mask


def test_logits_and_hidden_states_match_reference(backend, dtype):
    model, params = make_model(backend, dtype)
    ids, a = padded_batch()
    logits = backend.to_numpy(model(ids, a))
    assert logits.shape == (3, 8, CONFIG.vocab_size) and str(logits.dtype) == dtype
    assert_close(logits, ref.mlm_forward(params, ids, CONFIG, a), TOL[dtype], "MLM logits")
    hidden = backend.to_numpy(model.hidden_states(ids, a))
    assert_close(hidden, ref.encoder_hidden_states(params, ids, CONFIG, a), TOL[dtype], "H")
    body, body_params = make_model(backend, dtype, "BertEncoder")
    assert_close(body(ids), ref.encoder_hidden_states(body_params, ids, CONFIG), TOL[dtype],
                 "BertEncoder without a padding mask")


def test_loss_matches_reference(backend, dtype):
    model, params = make_model(backend, dtype)
    ids, a = padded_batch(1)
    batch = ref.mask_tokens(ids, MASK_ID, CONFIG.vocab_size, 3, a, special_ids=(PAD_ID,))
    loss = enc(backend).masked_lm_loss(model(batch.inputs, a), backend.as_tensor(batch.targets),
                                       backend.as_tensor(batch.selected.astype(dtype)))
    expected = ref.mlm_loss(params, batch, CONFIG, a)
    assert_close(float(backend.to_numpy(loss)), expected, TOL[dtype], "masked-LM loss")


def test_gradients_of_every_parameter_agree(backends, dtype):
    ids, a = padded_batch(2)
    batch = ref.mask_tokens(ids, MASK_ID, CONFIG.vocab_size, 4, a, special_ids=(PAD_ID,))
    grads = {}
    for name, backend in backends.items():
        model, _ = make_model(backend, dtype)
        loss_fn = lambda x, y, s, m, b=backend, mod=model: enc(b).masked_lm_loss(  # noqa: E731
            mod(x, m), y, s)
        _, grads[name], _ = backend.loss_and_gradients(
            model, loss_fn, batch.inputs, batch.targets, batch.selected.astype(dtype), a)
    assert set(grads["torch"]) == set(ref.encoder_param_shapes(CONFIG))
    for key in grads["torch"]:
        assert np.any(grads["torch"][key] != 0), f"{key} gets no gradient"
        assert_close(grads["tf"][key], grads["torch"][key], TOL[dtype], f"grad {key}")


@pytest.mark.parametrize("key", ["wpe.embeddings", "blocks.0.attn.q_linear.kernel",
                                 "head.dense.kernel", "head.bias"])
def test_gradients_match_reference_finite_differences(backends, key):
    """Central differences of the float64 reference loss, a few entries per parameter."""
    ids, a = padded_batch(5)
    batch = ref.mask_tokens(ids, MASK_ID, CONFIG.vocab_size, 6, a, special_ids=(PAD_ID,))
    backend = backends["torch"]
    model, params = make_model(backend, "float64")
    loss_fn = lambda x, y, s, m: enc(backend).masked_lm_loss(model(x, m), y, s)  # noqa: E731
    _, grads, _ = backend.loss_and_gradients(
        model, loss_fn, batch.inputs, batch.targets, batch.selected.astype(float), a)
    rng, h = np.random.default_rng(7), 1e-6
    for flat in rng.choice(params[key].size, size=3, replace=False):
        where = np.unravel_index(flat, params[key].shape)
        plus, minus = dict(params), dict(params)
        plus[key], minus[key] = params[key].copy(), params[key].copy()
        plus[key][where] += h
        minus[key][where] -= h
        numeric = ref.mlm_loss(plus, batch, CONFIG, a) - ref.mlm_loss(minus, batch, CONFIG, a)
        # a central difference is exact to O(h^2) plus rounding ~1e-16/h: 1e-8 is its accuracy
        assert_close(grads[key][where], numeric / (2 * h), 1e-8, f"d loss / d {key}{where}")


def test_the_body_is_the_gpt_with_another_mask():
    """The encoder reuses the GPT's block: under a causal mask its stack gives the GPT's
    hidden states exactly, and its body starts from the GPT's numbers for the same seed."""
    params = ref.init_encoder_params(CONFIG, 3, "float64", random_affine=True)
    gpt_params = init_gpt_params(CONFIG, 3, "float64", random_affine=True)
    assert all(np.array_equal(params[k], v) for k, v in gpt_params.items())
    ids, _ = padded_batch(3)
    h0 = params["wte.embeddings"][ids] + params["wpe.embeddings"][:8]
    assert_close(ref.transformer_stack(params, h0, causal_mask(8), CONFIG),
                 gpt_hidden_states(gpt_params, ids, CONFIG), "float64", "causal stack vs GPT")
    bidirectional = ref.encoder_hidden_states(params, ids, CONFIG)
    assert np.abs(bidirectional - gpt_hidden_states(gpt_params, ids, CONFIG))[:, 0].max() > 1e-3


def test_attention_is_bidirectional(backend):
    """A token's output changes when a LATER token changes (a causal mask left on would keep
    position 0 fixed); a padding token's change moves no real token (the padding mask)."""
    model, params = make_model(backend, "float64")
    ids, a = padded_batch(4)
    later = ids.copy()
    later[0, 7] = (ids[0, 7] + 1) % PAD_ID  # the last token of the full row
    before, after = backend.to_numpy(model(ids, a)), backend.to_numpy(model(later, a))
    assert np.abs(after[0, 0] - before[0, 0]).max() > 1e-4, "position 0 ignores position 7"
    padded = ids.copy()
    padded[1, 6] = 3  # under padding (attention_mask 0): no real position may notice
    moved = backend.to_numpy(model(padded, a))
    assert_close(moved[1, :5], before[1, :5], 1e-12, "real tokens beside changed padding")
    weights = []
    ref.encoder_hidden_states(params, ids, CONFIG, a, attention=weights)
    upper = np.triu(np.ones((8, 8), bool), 1)
    assert weights[0][0][:, upper].min() > 0, "the reference attends forward too"
    assert weights[0][1][:, :, 5:].max() < 1e-12, "padding keys get no weight"


def test_padding_changes_nothing_at_real_positions(backend):
    """A row padded to T gives, at its real positions, the hidden states of the same row cut
    to its length (a mask on queries instead of keys would fail this)."""
    model, _ = make_model(backend, "float64")
    ids, a = padded_batch(6)
    padded = backend.to_numpy(model.hidden_states(ids, a))
    cut = backend.to_numpy(model.hidden_states(ids[2:, :3]))
    assert_close(padded[2, :3], cut[0], 1e-12, "padded vs cut row")


def test_selection_counts_fifteen_percent_of_each_rows_real_tokens():
    """max(1, round(0.15 n)) of the n real, non-special tokens of each row: not 15% of the
    padded length, not of the batch, never padding, never a special id."""
    rng = np.random.default_rng(0)
    lengths = np.array([40, 20, 7, 3, 0, 40])
    ids = rng.integers(0, 50, size=(6, 40))
    a = (np.arange(40)[None] < lengths[:, None]).astype(int)
    ids[5, :10] = 50  # ten special tokens (say [SEP]) among row 5's real ones
    batch = ref.mask_tokens(ids, 51, 52, 1, a, special_ids=(50,))
    counts = batch.selected.sum(axis=1)
    assert counts.tolist() == [6, 3, 1, 1, 0, 4]  # round(6.0), round(3.0), round(1.05), max(1, 0)
    assert not batch.selected[a == 0].any(), "padding selected"
    assert not batch.selected[ids == 50].any(), "a special token selected"
    assert ref.select_positions(np.ones((2, 100), bool), rng, 0.15).sum(axis=1).tolist() == [15, 15]


def test_the_eighty_ten_ten_boundaries():
    """u < 0.8 -> [MASK]; 0.8 <= u < 0.9 -> the random id; u >= 0.9 -> unchanged; positions
    not selected keep their token whatever u."""
    u = np.array([[0.0, 0.7999, 0.8, 0.85, 0.8999, 0.9, 0.95, 0.5]])
    ids = np.array([[1, 2, 3, 4, 5, 6, 7, 8]])
    selected = np.array([[True] * 7 + [False]])
    out = ref.apply_mask_rule(ids, selected, u, np.full((1, 8), 9), MASK_ID)
    assert out.tolist() == [[MASK_ID, MASK_ID, 9, 9, 9, 6, 7, 8]]


def test_masking_proportions_and_ids_on_a_large_batch():
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 20, size=(2000, 64))
    batch = ref.mask_tokens(ids, 21, 22, 9, special_ids=(20,))
    s = batch.selected
    assert s.sum() == 2000 * 10  # round(0.15 * 64) = 10 per row
    assert np.array_equal(batch.targets, ids)
    assert np.array_equal(batch.inputs[~s], ids[~s]), "an unselected token changed"
    masked = batch.inputs[s] == 21
    changed = (batch.inputs[s] != ids[s]) & ~masked
    assert abs(masked.mean() - 0.8) < 0.01
    assert abs(changed.mean() - 0.1 * 19 / 20) < 0.01  # a random id equals the original 1/20
    assert abs((batch.inputs[s] == ids[s]).mean() - (0.1 + 0.1 / 20)) < 0.01
    assert not np.isin(batch.inputs[s & ~(batch.inputs == 21)], [20, 21]).any(), "special drawn"
    again = ref.mask_tokens(ids, 21, 22, 9, special_ids=(20,))
    other = ref.mask_tokens(ids, 21, 22, 10, special_ids=(20,))
    assert np.array_equal(again.inputs, batch.inputs) and np.array_equal(again.selected, s)
    assert not np.array_equal(other.selected, s)


def test_selection_rate_bounds_and_rows_with_one_candidate_or_none():
    rng = np.random.default_rng(0)
    assert ref.select_positions(np.ones((2, 5), bool), rng, 1.0).all()  # rate 1: all of them
    for rate in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"rate: expected a share in \(0, 1\]"):
            ref.select_positions(np.ones((1, 4), bool), rng, rate)
    # 0/1 ints are candidates too and the answer is bool; one candidate: max(1, round(0.15))
    # = 1, it is chosen; none: nothing; four: round(0.6) = 1
    chosen = ref.select_positions(np.array([[0, 0, 1, 0], [0, 0, 0, 0], [1, 1, 1, 1]]), rng)
    assert chosen.dtype == bool and chosen[0].tolist() == [False, False, True, False]
    assert not chosen[1].any() and chosen[2].sum() == 1


def test_mask_tokens_accepts_the_edges_of_its_ranges_only():
    ids = np.array([[0, 1, 2, 3]])
    assert ref.mask_tokens(ids, 0, 4, 0).targets.tolist() == ids.tolist()  # [MASK] may be 0
    with pytest.raises(ValueError, match=r"mask_token_id: expected an id in \[0, vocab_size=4"):
        ref.mask_tokens(ids, -1, 4, 0)
    with pytest.raises(ValueError, match=r"ids: expected ids in \[0, vocab_size=4\), got values "
                                         r"in \[-1, 2\]"):
        ref.mask_tokens(np.array([[-1, 0, 1, 2]]), 3, 4, 0)
    with pytest.raises(ValueError, match=r"ids: expected ids in \[0, vocab_size=3\)"):
        ref.mask_tokens(np.array([[0, 1, 3]]), 2, 3, 0)  # max == vocab_size: one too far
    # one ordinary id (0; [MASK] = 1): every replacement, random or not, is 0 or [MASK]
    batch = ref.mask_tokens(np.zeros((200, 20), int), 1, 2, 0)
    assert set(np.unique(batch.inputs).tolist()) == {0, 1} and batch.selected.sum() == 600


def test_random_replacements_are_uniform_over_the_ordinary_ids():
    """Every id 5 (vocabulary 22: 0..19 ordinary, 20 special, 21 [MASK]): a token that became
    neither 5 nor [MASK] is a random replacement, about 10% of the 2000 x 10 selected, spread
    evenly over the 19 other ordinary ids (about 100 each; never 5's own draws, 1/20)."""
    batch = ref.mask_tokens(np.full((2000, 64), 5), 21, 22, 9, special_ids=(20,))
    replaced = batch.inputs[(batch.inputs != 5) & (batch.inputs != 21)]
    values, counts = np.unique(replaced, return_counts=True)
    assert values.tolist() == [v for v in range(20) if v != 5]
    assert counts.max() < 1.5 * counts.mean() and counts.min() > 0.5 * counts.mean(), counts


def test_the_oracle_computes_in_float64_whatever_it_is_handed():
    """float32 parameters, hidden states or logits are read as float64: the reference gives
    exactly the numbers of their float64 casts, in float64 (never a float32 oracle)."""
    params32 = ref.init_encoder_params(CONFIG, 1, "float32", random_affine=True)
    params64 = {k: v.astype(np.float64) for k, v in params32.items()}
    ids, a = padded_batch(7)
    hidden = ref.encoder_hidden_states(params32, ids, CONFIG, a)
    assert hidden.dtype == np.float64
    assert np.array_equal(hidden, ref.encoder_hidden_states(params64, ids, CONFIG, a))
    h32 = hidden.astype(np.float32)
    logits = ref.mlm_head(params32, h32, CONFIG)
    assert logits.dtype == np.float64
    assert np.array_equal(logits, ref.mlm_head(params64, h32.astype(np.float64), CONFIG))
    selected = a.astype(bool)
    l32 = logits.astype(np.float32)
    assert ref.masked_lm_loss(l32, ids, selected) == ref.masked_lm_loss(
        l32.astype(np.float64), ids, selected)


def test_the_loss_reads_the_selected_positions_only(backend):
    rng = np.random.default_rng(2)
    logits, targets = rng.normal(size=(2, 5, 7)), rng.integers(0, 7, size=(2, 5))
    selected = np.zeros((2, 5), bool)
    selected[0, 1] = selected[1, 4] = True
    expected = ref.masked_lm_loss(logits, targets, selected)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    assert expected == pytest.approx(-(logp[0, 1, targets[0, 1]] + logp[1, 4, targets[1, 4]]) / 2)
    noisy = logits + 50.0 * rng.normal(size=logits.shape) * ~selected[..., None]
    assert ref.masked_lm_loss(noisy, targets, selected) == pytest.approx(expected, abs=1e-12)
    loss_fn = enc(backend).masked_lm_loss
    for value in (logits, noisy):
        got = loss_fn(backend.as_tensor(value), backend.as_tensor(targets),
                      backend.as_tensor(selected.astype(float)))
        assert_close(float(backend.to_numpy(got)), expected, "float64", "backend MLM loss")
    assert ref.masked_lm_loss(np.zeros((1, 3, 7)), targets[:1, :3], np.ones((1, 3))) == (
        pytest.approx(np.log(7)))


def test_weights_round_trip_through_a_file_and_both_backends(backends, tmp_path):
    torch_model, params = make_model(backends["torch"], "float32")
    path = save_checkpoint(tmp_path / "mlm.safetensors", Checkpoint(
        "duetrl.mlm", {"params": backends["torch"].export_params(torch_model)},
        {"config": CONFIG.to_dict()}))
    spec = describe(params)
    loaded = load_checkpoint(path, "duetrl.mlm", expected={"params": spec}).tensors["params"]
    tf_model = backends["tf"].import_params(enc(backends["tf"]).MaskedLM(CONFIG, seed=None),
                                            loaded)
    back = backends["tf"].export_params(tf_model)
    for key, value in params.items():
        assert_close(back[key], value, "exact", key)
    ids, a = padded_batch()
    assert_close(tf_model(ids, a), torch_model(ids, a), "float32_model", "logits after the trip")
    with pytest.raises(CheckpointError, match=r"unexpected \['head.bias'"):
        backends["tf"].import_params(enc(backends["tf"]).BertEncoder(CONFIG), loaded)
    assert tf_model.num_parameters() == sum(v.size for v in params.values())
    for backend in backends.values():  # get_config / from_config rebuild the same class
        for cls in ("BertEncoder", "MaskedLM"):
            model = getattr(enc(backend), cls)(CONFIG)
            again = type(model).from_config(model.get_config())
            assert type(again) is type(model) and again.config == CONFIG


@pytest.fixture(scope="module")
def mlm_data():
    return MLMData.from_corpus("templates", num_chars=30_000, block_size=24)


def test_mlm_batches_are_a_function_of_seed_and_step(mlm_data):
    (first, a), (again, _) = mlm_data.batch("train", 8, 3, 5), mlm_data.batch("train", 8, 3, 5)
    other, _ = mlm_data.batch("train", 8, 3, 6)
    assert all(np.array_equal(x, y) for x, y in zip(first, again))
    assert not np.array_equal(first.targets, other.targets)
    assert np.array_equal(a == 0, first.targets == mlm_data.pad_id), "padding is the [PAD] id"
    assert not first.selected[a == 0].any() and first.selected.sum(1).min() >= 1
    masked = first.inputs[first.selected] == mlm_data.mask_id
    assert masked.any() and not (first.inputs[~first.selected] == mlm_data.mask_id).any()
    assert mlm_data.decode(first.targets[0]) in {mlm_data.decode(r) for r in
                                                 mlm_data.splits["train"]}


def test_two_backends_train_in_lockstep(backends, mlm_data):
    config = GPTConfig(vocab_size=mlm_data.vocab_size, block_size=24, n_layer=1, n_head=2,
                       n_embd=16)
    steps = TrainConfig(steps=4, batch_size=8, learning_rate=5e-3, warmup_steps=0,
                        eval_every=2)
    history = {name: train_mlm(backend, enc(backend).MaskedLM(config), mlm_data, steps, 16)
               for name, backend in backends.items()}
    for key in ("loss", "val_loss", "accuracy"):
        assert_close(np.array(history["tf"][key]), np.array(history["torch"][key]),
                     "float32_model", key)
    assert history["torch"]["eval_step"] == [2, 4] and history["torch"]["step"] == [1, 2, 3, 4]
    assert history["torch"]["loss"][-1] < history["torch"]["loss"][0]


def test_masked_tokens_are_learned(backends, mlm_data):
    """Seeded: 150 AdamW steps (torch) reach a masked-token accuracy far above chance (1/22)
    and above the best guess without context (the most frequent target, 17%)."""
    backend = backends["torch"]
    config = GPTConfig(vocab_size=mlm_data.vocab_size, block_size=24, n_layer=2, n_head=2,
                       n_embd=32)
    steps = TrainConfig(steps=150, batch_size=32, learning_rate=5e-3, min_learning_rate=5e-3,
                        warmup_steps=0, weight_decay=0.0, eval_every=150, seed=0)
    history = train_mlm(backend, enc(backend).MaskedLM(config), mlm_data, steps)
    batch, _ = mlm_data.batch("val", 64, 1, 0)  # train_mlm's evaluation batch
    targets = batch.targets[batch.selected]
    no_context = np.bincount(targets).max() / targets.size
    accuracy, loss = history["accuracy"][-1], history["val_loss"][-1]
    assert accuracy > 0.4 and accuracy > 2 * no_context, (accuracy, no_context)
    assert loss < 0.7 * np.log(mlm_data.vocab_size)


def test_bad_input_is_a_clear_error(backend):
    model, _ = make_model(backend, "float32")
    ids, a = padded_batch()
    with pytest.raises(ValueError, match=r"attention_mask: expected the ids' shape \(3, 8\)"):
        model(ids, a[:, :4])
    with pytest.raises(ValueError, match=r"attention_mask: expected 0 \(padding\) or 1"):
        model(ids, a * 2)
    with pytest.raises(ValueError, match=r"vocab_size=13\), got 13"):
        model(np.full((1, 4), 13))
    trainer = enc(backend).MLMTrainer(model)
    with pytest.raises(ValueError, match="selected: expected a non-empty selection"):
        trainer.train_step(ids, ids, np.zeros((3, 8)), 1e-3, a)
    with pytest.raises(ValueError, match=r"selected: .* got shape \(3, 4\)"):
        trainer.evaluate(ids, ids, np.ones((3, 4)), a)


def test_bad_input_to_the_reference_and_the_data():
    ids, a = padded_batch()
    with pytest.raises(ValueError, match=r"mask_token_id: expected an id in \[0, vocab_size=13"):
        ref.mask_tokens(ids, 13, 13, 0)
    with pytest.raises(ValueError, match=r"ids: expected ids in \[0, vocab_size=10\)"):
        ref.mask_tokens(ids, 9, 10, 0)
    with pytest.raises(ValueError, match="ids: expected integer token ids"):
        ref.mask_tokens(ids.astype(float), MASK_ID, 13, 0)
    with pytest.raises(ValueError, match="selected: expected at least one"):
        ref.masked_lm_loss(np.zeros((1, 2, 3)), np.zeros((1, 2), int), np.zeros((1, 2)))
    with pytest.raises(ValueError, match=r"selected: expected the targets' shape \(1, 2\)"):
        ref.masked_lm_loss(np.zeros((1, 2, 3)), np.zeros((1, 2), int), np.ones((2,)))
    with pytest.raises(ValueError, match=r"rate: expected a share in \(0, 1\]"):
        ref.select_positions(np.ones((1, 4), bool), np.random.default_rng(0), 15)
    with pytest.raises(ValueError, match="vocab_size: expected ids besides the special ones"):
        ref.mask_tokens(np.zeros((1, 2), int), 1, 2, 0, special_ids=(0,))
    with pytest.raises(ValueError, match="block_size: expected an int >= 2"):
        MLMData("ab\ncd\n", 1)
    with pytest.raises(ValueError, match="text: expected at least 2 non-empty lines"):
        MLMData("abc", 8)
    data = MLMData("the cat\nthe dog\na bird\n", 8, val_fraction=0.4)
    encoded, mask = data.encode(["the _at"])
    assert data.decode(encoded[0]) == "the _at" and mask.sum() == 7
    with pytest.raises(ValueError, match="lines: expected at most block_size=8"):
        data.encode(["the cat sat"])
    with pytest.raises(ValueError, match="split: expected 'train' or 'val'"):
        data.batch("test", 2, 0, 0)
