"""Training: one AdamW step against the float64 reference, lockstep runs of both backends,
the schedule, resumable checkpoints, fine-tuning, and a learning test on a Markov chain."""

from __future__ import annotations

import numpy as np
import pytest

from duetrl.core.checkpoint import Checkpoint, CheckpointError, save_checkpoint
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.gpt_params import init_gpt_params
from duetrl.core.lm.corpora import MarkovChain
from duetrl.core.lm.data import TokenData
from duetrl.core.lm.train import (
    GPT_KIND,
    TrainConfig,
    learning_rate_at,
    load_gpt_checkpoint,
    train,
)
from duetrl.core.reference.optim import adam_step, clip_by_global_norm
from duetrl.core.tolerances import assert_close

CONFIG = GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16)
TOL = {"float64": "float64", "float32": "float32_model"}


def make_model(backend, dtype="float32", config=CONFIG, seed=0):
    model = backend.GPT(config, dtype=dtype)
    return backend.import_params(model, init_gpt_params(config, seed, dtype, random_affine=True))


@pytest.mark.parametrize("max_grad_norm", [None, 0.05], ids=["no-clip", "clip"])
def test_one_adamw_step_matches_reference(backend, dtype, max_grad_norm):
    model = make_model(backend, dtype)
    before = backend.export_params(model)
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 11, (4, 8)), rng.integers(0, 11, (4, 8))
    loss_fn = lambda a, b: backend.cross_entropy_loss(model(a), b)  # noqa: E731
    _, grads, _ = backend.loss_and_gradients(model, loss_fn, x, y)
    trainer = backend.LMTrainer(model, weight_decay=0.1, max_grad_norm=max_grad_norm)
    _, grad_norm = trainer.train_step(x, y, 0.01)
    _, norm = clip_by_global_norm(grads, max_grad_norm)
    assert_close(grad_norm, norm, TOL[dtype], "gradient norm")
    before64 = {k: v.astype(np.float64) for k, v in before.items()}
    grads64 = {k: g.astype(np.float64) for k, g in grads.items()}
    expected, state = adam_step(before64, grads64, {}, 0.01, max_grad_norm, weight_decay=0.1)
    m, v = state["m"], state["v"]
    after = backend.export_params(model)
    for key in before:
        assert_close(after[key], expected[key], TOL[dtype], f"{key} after one step")
    state = trainer.optimizer.state_arrays()
    assert trainer.optimizer.step_count == 1
    assert_close(state["m.ln_f.scale"], m["ln_f.scale"], TOL[dtype], "first moment")
    assert_close(state["v.wte.embeddings"], v["wte.embeddings"], TOL[dtype], "second moment")


def test_lockstep_training_in_both_backends(backends):
    ids = np.random.default_rng(0).integers(0, 11, 2000)
    data = TokenData(ids, 8)
    config = TrainConfig(steps=6, batch_size=4, warmup_steps=2, eval_every=3, eval_batches=2)
    results, params = {}, {}
    for name, backend in backends.items():
        model = make_model(backend)
        results[name] = train(backend, model, data, config, progress=False)
        params[name] = backend.export_params(model)
    assert_close(
        results["tf"].history["train_loss"],
        results["torch"].history["train_loss"],
        "float32_model",
        "training losses",
    )
    assert_close(
        results["tf"].history["val_loss"],
        results["torch"].history["val_loss"],
        "float32_model",
        "validation losses",
    )
    for key in params["torch"]:
        assert_close(params["tf"][key], params["torch"][key], "float32_model", key)


def test_learning_rate_schedule():
    config = TrainConfig(steps=111, learning_rate=1e-3, min_learning_rate=1e-4, warmup_steps=10)
    assert learning_rate_at(0, config) == pytest.approx(1e-4)
    assert learning_rate_at(9, config) == pytest.approx(1e-3)
    assert learning_rate_at(10, config) == pytest.approx(1e-3)
    assert learning_rate_at(60, config) == pytest.approx(0.5 * (1e-3 + 1e-4), rel=1e-12)  # halfway
    assert learning_rate_at(110, config) == pytest.approx(1e-4)


def test_resumed_run_equals_uninterrupted_run(backend, tmp_path, monkeypatch):
    """Three trainers (straight, interrupted, resumed): TensorFlow's steps run as plain graphs,
    not XLA, here: what is checked is the checkpoint's round trip, and an XLA compile costs
    ~10 s of CPU per trainer (XLA's numbers are checked by test_one_adamw_step_matches_reference)."""
    monkeypatch.setattr("duetrl.backends.tf.training.XLA_TRAIN_STEP", False)
    ids = np.random.default_rng(1).integers(0, 11, 2000)
    data = TokenData(ids, 8)
    settings = dict(batch_size=4, warmup_steps=2, eval_every=2, eval_batches=1)
    straight = make_model(backend)
    train(backend, straight, data, TrainConfig(steps=6, **settings), progress=False)
    path = tmp_path / "model.safetensors"
    first = make_model(backend)
    train(backend, first, data, TrainConfig(steps=3, **settings), path, progress=False)
    # a fresh model (other initial weights) resumes: weights, moments, step come from the file
    resumed = make_model(backend, seed=7)
    result = train(
        backend, resumed, data, TrainConfig(steps=6, **settings), path, resume=True, progress=False
    )
    assert result.history["step"] == [1, 2, 3, 4, 5, 6]
    config, saved = load_gpt_checkpoint(path)
    assert config == CONFIG and saved.metadata["step"] == 6
    assert saved.metadata["history"]["step"] == [1, 2, 3, 4, 5, 6]
    assert_close(saved.tensors["optim"]["step"], [6], "exact", "Adam's step is saved")
    expected, got = backend.export_params(straight), backend.export_params(resumed)
    for key in expected:
        assert_close(got[key], expected[key], 1e-6, f"resumed {key}")


def gpt_checkpoint(params, config=CONFIG, step=3):
    return Checkpoint(GPT_KIND, {"params": params}, {"config": config.to_dict(), "step": step})


def test_checkpoint_with_another_config_is_refused(backend, tmp_path):
    path = tmp_path / "model.safetensors"
    params = init_gpt_params(CONFIG)
    save_checkpoint(path, gpt_checkpoint(params))
    config, loaded = load_gpt_checkpoint(path, expected_config=CONFIG)
    assert loaded.metadata["step"] == 3 and config == CONFIG
    for name, value in params.items():
        assert_close(loaded.tensors["params"][name], value, "exact", name)
    other = GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16)
    with pytest.raises(CheckpointError, match=r"another config; .*\{'n_layer': \(2, 1\)\}"):
        load_gpt_checkpoint(path, expected_config=other)
    data = TokenData(np.zeros(100, dtype=np.int64), 8)
    with pytest.raises(CheckpointError, match="another config"):
        train(
            backend,
            make_model(backend, config=other),
            data,
            TrainConfig(steps=1),
            path,
            resume=True,
            progress=False,
        )
    bad = dict(params)
    bad["wte.embeddings"] = np.zeros((12, 16), dtype=np.float32)
    save_checkpoint(tmp_path / "bad.safetensors", gpt_checkpoint(bad))
    with pytest.raises(CheckpointError, match=r"'wte.embeddings' has shape \(12, 16\)"):
        load_gpt_checkpoint(tmp_path / "bad.safetensors")
    bad_config = gpt_checkpoint(params)
    bad_config.metadata["config"]["n_head"] = 3  # 16 is no multiple of 3
    save_checkpoint(tmp_path / "bad_config.safetensors", bad_config)
    with pytest.raises(CheckpointError, match="invalid config .*n_embd: expected a multiple"):
        load_gpt_checkpoint(tmp_path / "bad_config.safetensors")
    rl = Checkpoint("duetrl.rl", {"params": params}, {"config": CONFIG.to_dict()})
    save_checkpoint(tmp_path / "rl.safetensors", rl)
    with pytest.raises(CheckpointError, match="is a 'duetrl.rl' checkpoint, expected 'duetrl.gpt'"):
        load_gpt_checkpoint(tmp_path / "rl.safetensors")


@pytest.mark.slow
def test_markov_chain_is_learned_to_its_entropy_rate(backend):
    """The validation loss comes within 0.05 nats of the chain's entropy rate in 200 steps."""
    backend.set_num_threads(1)
    chain = MarkovChain.random(num_states=6, concentration=0.3, seed=0)
    data = TokenData(chain.sample(50_000, seed=1), block_size=32)
    config = GPTConfig(vocab_size=6, block_size=32, n_layer=1, n_head=2, n_embd=32)
    train_config = TrainConfig(
        steps=200,
        batch_size=16,
        learning_rate=3e-3,
        min_learning_rate=3e-4,
        warmup_steps=20,
        weight_decay=0.0,
        eval_every=100,
        eval_batches=16,
    )
    result = train(backend, backend.GPT(config, seed=0), data, train_config, progress=False)
    gap = result.val_loss - chain.entropy_rate
    assert gap < 0.05, (
        f"{backend.NAME}: val loss {result.val_loss:.4f}, entropy rate "
        f"{chain.entropy_rate:.4f}, gap {gap:.4f}"
    )
