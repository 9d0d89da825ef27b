"""The GPT in both backends against the float64 reference and each other: logits, gradients
of every parameter, weight round trips, GPT-2 weights, pinned constants, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from duetrl.core.constants import LAYER_NORM_EPS
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.gpt_params import gpt2_to_canonical, init_gpt_params, param_shapes
from duetrl.core.reference.gpt import cross_entropy, gpt_forward, gpt_loss
from duetrl.core.tolerances import assert_close

CONFIG = GPTConfig(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=32)
TOL = {"float64": "float64", "float32": "float32_model"}


def make_model(backend, dtype, seed=0, config=CONFIG):
    params = init_gpt_params(config, seed, dtype, random_affine=True)
    model = backend.GPT(config, dtype=dtype)
    backend.import_params(model, params)
    return model, params


def batch(seed=0, config=CONFIG, shape=(3, 8)):
    rng = np.random.default_rng(seed)
    return rng.integers(0, config.vocab_size, size=shape), rng.integers(0, config.vocab_size, shape)


def test_logits_match_reference(backend, dtype):
    model, params = make_model(backend, dtype)
    idx, _ = batch()
    logits = backend.to_numpy(model(idx))
    assert logits.shape == (3, 8, CONFIG.vocab_size) and str(logits.dtype) == dtype
    assert_close(logits, gpt_forward(params, idx, CONFIG), TOL[dtype], f"{backend.NAME} logits")
    shorter = backend.to_numpy(model(idx[:, :5]))  # a shorter context sees the same prefix
    assert_close(shorter, logits[:, :5], TOL[dtype], "prefix logits")


def test_loss_matches_reference(backend, dtype):
    model, params = make_model(backend, dtype)
    idx, targets = batch(1)
    loss = backend.cross_entropy_loss(model(idx), backend.as_tensor(targets))
    assert_close(
        float(backend.to_numpy(loss)), gpt_loss(params, idx, targets, CONFIG), TOL[dtype], "loss"
    )


def test_parameter_names_and_tied_head(backend):
    model, _ = make_model(backend, "float32")
    exported = backend.export_params(model)
    assert {k: v.shape for k, v in exported.items()} == param_shapes(CONFIG)
    assert model.num_parameters() == sum(int(np.prod(s)) for s in param_shapes(CONFIG).values())


def test_gradients_of_every_parameter_agree(backends, dtype):
    idx, targets = batch(2)
    grads = {}
    for name, backend in backends.items():
        model, _ = make_model(backend, dtype)
        loss_fn = lambda x, y, b=backend, m=model: b.cross_entropy_loss(m(x), y)  # noqa: E731
        _, grads[name], _ = backend.loss_and_gradients(model, loss_fn, idx, targets)
    assert set(grads["torch"]) == set(param_shapes(CONFIG))
    for key in grads["torch"]:
        assert np.any(grads["torch"][key] != 0), f"{key} gets no gradient"
        assert_close(grads["tf"][key], grads["torch"][key], TOL[dtype], f"grad {key}")


@pytest.mark.parametrize(
    "key",
    [
        "wte.embeddings",
        "blocks.1.attn.k_linear.kernel",
        "blocks.0.ln_2.scale",
        "blocks.0.mlp.fc.bias",
    ],
)
def test_gradients_match_reference_finite_differences(backends, key):
    """Central differences of the float64 reference loss, a few entries per parameter."""
    idx, targets = batch(3, shape=(2, 6))
    params = init_gpt_params(CONFIG, 0, "float64", random_affine=True)
    backend = backends["torch"]
    model, _ = make_model(backend, "float64")
    loss_fn = lambda x, y: backend.cross_entropy_loss(model(x), y)  # noqa: E731
    _, grads, _ = backend.loss_and_gradients(model, loss_fn, idx, targets)
    rng, h = np.random.default_rng(4), 1e-6
    for flat in rng.choice(params[key].size, size=3, replace=False):
        where = np.unravel_index(flat, params[key].shape)
        plus, minus = dict(params), dict(params)
        plus[key], minus[key] = params[key].copy(), params[key].copy()
        plus[key][where] += h
        minus[key][where] -= h
        numeric = gpt_loss(plus, idx, targets, CONFIG) - gpt_loss(minus, idx, targets, CONFIG)
        # a central difference is exact to O(h^2) plus rounding ~1e-16/h: 1e-8 is its accuracy
        assert_close(grads[key][where], numeric / (2 * h), 1e-8, f"d loss / d {key}{where}")


def test_weights_move_between_backends_exactly(backends):
    torch_model, params = make_model(backends["torch"], "float32")
    exported = backends["torch"].export_params(torch_model)
    tf_model = backends["tf"].import_params(backends["tf"].GPT(CONFIG), exported)
    back = backends["tf"].export_params(tf_model)
    for key, value in params.items():
        assert_close(back[key], value, "exact", key)


def test_constants_are_pinned(backends):
    torch_model, _ = make_model(backends["torch"], "float32")
    tf_model, _ = make_model(backends["tf"], "float32")
    assert torch_model.blocks[0].ln_1.eps == LAYER_NORM_EPS == tf_model.blocks[0].ln_1.epsilon
    assert torch_model.ln_f.eps == tf_model.ln_f.epsilon == LAYER_NORM_EPS
    assert torch_model.blocks[0].mlp.gelu_approximate is True
    assert tf_model.blocks[0].mlp.gelu_approximate is True
    assert GPTConfig.gpt2_small().layer_norm_eps == 1e-5


def test_gelu_exact_variant(backend):
    config = GPTConfig(vocab_size=13, block_size=8, n_layer=1, n_head=2, n_embd=16, gelu="none")
    model, params = make_model(backend, "float64", config=config)
    idx, _ = batch(config=config, shape=(2, 4))
    assert_close(model(idx), gpt_forward(params, idx, config), "float64", "exact-GELU logits")


def test_dropout_is_off_in_evaluation(backend):
    config = GPTConfig(vocab_size=13, block_size=8, n_layer=1, n_head=2, n_embd=16, dropout=0.5)
    model, params = make_model(backend, "float64", config=config)
    if backend.NAME == "torch":
        model.eval()
    idx, _ = batch(config=config, shape=(2, 4))
    assert_close(model(idx), gpt_forward(params, idx, config), "float64", "eval logits")


def hf_tiny_model(seed=0):
    transformers = pytest.importorskip("transformers")
    import torch

    torch.manual_seed(seed)
    config = transformers.GPT2Config(
        vocab_size=50,
        n_positions=16,
        n_embd=32,
        n_layer=2,
        n_head=4,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    model = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():  # non-trivial LayerNorms and biases, so every weight matters
        for name, p in model.named_parameters():
            if name.endswith("bias") or ".ln_" in name:
                p.add_(0.1 * torch.randn_like(p))
    return model


@pytest.mark.parametrize("as_numpy", [False, True], ids=["tensors", "numpy"])
def test_gpt2_weights_give_identical_logits(backends, as_numpy):
    import torch

    hf = hf_tiny_model()
    state_dict = hf.state_dict()
    if as_numpy:
        state_dict = {k: v.detach().numpy() for k, v in state_dict.items()}
    idx = np.random.default_rng(0).integers(0, 50, size=(2, 16))
    with torch.no_grad():
        expected = hf(torch.as_tensor(idx)).logits.numpy()
    config, params = gpt2_to_canonical(state_dict, n_head=4, dtype="float64")
    assert config == GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=4, n_embd=32)
    assert_close(gpt_forward(params, idx, config), expected, "float32_model", "reference")
    for name, backend in backends.items():
        model = backend.GPT.from_gpt2(state_dict, n_head=4)
        logits = backend.to_numpy(model(idx))
        assert logits.shape == (2, 16, 50)
        assert_close(logits, expected, "float32_model", f"{name} vs Hugging Face")


def test_gpt2_bad_state_dict():
    with pytest.raises(ValueError, match="wte.weight"):
        gpt2_to_canonical({"h.0.ln_1.weight": np.ones(4)}, n_head=2)
    hf = hf_tiny_model()
    with pytest.raises(ValueError, match="n_head"):
        gpt2_to_canonical(hf.state_dict(), n_head=5)


def test_bad_input_is_a_clear_error(backend):
    model, _ = make_model(backend, "float32")
    with pytest.raises(ValueError, match="block_size=8"):
        model(np.zeros((1, 9), dtype=np.int64))
    with pytest.raises(ValueError, match=r"vocab_size=13\), got 13"):
        model(np.full((1, 4), 13, dtype=np.int64))
    with pytest.raises(ValueError, match="got -1"):
        model(np.full((1, 4), -1, dtype=np.int64))
    with pytest.raises(ValueError, match="at least one token"):
        model(np.zeros((1, 0), dtype=np.int64))
    with pytest.raises(ValueError, match=r"shape \(batch, time\)"):
        model(np.zeros((4,), dtype=np.int64))


def test_config_validation():
    with pytest.raises(ValueError, match="n_embd: expected a multiple of n_head=3"):
        GPTConfig(n_embd=32, n_head=3)
    with pytest.raises(ValueError, match="gelu"):
        GPTConfig(gelu="erf")
    with pytest.raises(ValueError, match="unknown fields"):
        GPTConfig.from_dict({"n_layers": 2})
    assert GPTConfig.from_dict(CONFIG.to_dict()) == CONFIG
    assert cross_entropy(np.zeros((1, 2, 4)), np.zeros((1, 2), dtype=int)) == pytest.approx(
        np.log(4)
    )


def test_both_backends_export_the_language_model_names(backends):
    from duetrl.core.interfaces.lm import LM_NAMES

    for name, backend in backends.items():
        missing = [n for n in LM_NAMES if n not in backend.__all__ or not hasattr(backend, n)]
        assert not missing, f"{name} lacks {missing}"
    assert backends["torch"].__all__ == backends["tf"].__all__


def test_config_round_trip_through_the_model(backend):
    model = backend.GPT(CONFIG)
    again = type(model).from_config(model.get_config())
    assert again.config == CONFIG
    assert_close(
        backend.to_numpy(again(np.zeros((1, 3), dtype=np.int64))),
        backend.to_numpy(model(np.zeros((1, 3), dtype=np.int64))),
        "exact",
        "logits",
    )


def test_dropout_trains_and_evaluates(backend):
    """Dropout masks come from each framework's generator (they differ between backends);
    training with dropout runs, and evaluation is deterministic."""
    config = GPTConfig(vocab_size=13, block_size=8, n_layer=1, n_head=2, n_embd=16, dropout=0.2)
    model = backend.GPT(config)
    trainer = backend.LMTrainer(model)
    x, y = batch(config=config, shape=(4, 8))
    loss, grad_norm = trainer.train_step(x, y, 1e-3)
    assert np.isfinite(loss) and grad_norm > 0
    assert trainer.eval_loss(x, y) == trainer.eval_loss(x, y)


def test_one_token_validator_names_argument_expected_and_given() -> None:
    """check_token_ids at each boundary: what passes, and the message of what does not."""
    from duetrl.core.interfaces.gpt_config import check_token_ids

    config = GPTConfig(vocab_size=5, block_size=4, n_layer=1, n_head=1, n_embd=4)
    ok = np.array([[0, 4, 1, 2]])  # the smallest and largest id, a full block
    check_token_ids(ok.shape, config, "idx", ok)
    check_token_ids((2, 3), config, more_tokens=1)  # 3 + 1 = block_size
    check_token_ids((None, None), config)  # a traced graph: sizes unknown
    cases = [
        ((4,), None, 0, r"^idx: expected token ids of shape \(batch, time\), got shape \(4,\)$"),
        ((1, 0), None, 0, r"^idx: expected at least one token per sequence, got shape \(1, 0\)$"),
        ((0, 3), None, 0, r"^idx: expected at least one token per sequence, got shape \(0, 3\)$"),
        ((1, 5), None, 0, r"^idx: expected at most block_size=4 tokens in the context, got 5 "
                          r"tokens = 5; shorten it"),
        ((1, 3), None, 2, r"^idx: expected at most block_size=4 tokens in the context, got 3 "
                          r"tokens \+ 2 more = 5;"),
        ((1, 2), np.array([[1, 5]]), 0, r"^idx: expected token ids in \[0, vocab_size=5\), got 5 "
                                        r"at index \(0, 1\)$"),
        ((1, 2), np.array([[-1, 0]]), 0, r"got -1 at index \(0, 0\)$"),
        ((1, 2), np.array([[1.0, 2.0]]), 0, r"^idx: expected integer token ids, got dtype float64$"),
    ]
    for shape, ids, more, message in cases:
        with pytest.raises(ValueError, match=message):
            check_token_ids(shape, config, "idx", ids, more)
    with pytest.raises(ValueError, match="^prompt: "):
        check_token_ids((1, 9), config, "prompt")


def test_models_check_their_input_with_the_one_validator(backend) -> None:
    config = GPTConfig(vocab_size=5, block_size=4, n_layer=1, n_head=1, n_embd=4)
    model = backend.GPT(config)
    assert backend.to_numpy(model(np.array([[0, 4, 4, 4]]))).shape == (1, 4, 5)
    # (Keras wraps an error raised in call() in its own text, so no ^ here)
    with pytest.raises(ValueError, match=r"idx: expected token ids in \[0, vocab_size=5\), got 5"):
        model(np.array([[0, 5]]))
    with pytest.raises(ValueError, match=r"idx: expected token ids in \[0, vocab_size=5\), got -1"):
        model(np.array([[-1, 0]]))
    with pytest.raises(ValueError, match="idx: expected at most block_size=4"):
        model(np.zeros((1, 5), dtype=np.int64))
