"""The Decision Transformer (outline 3.2.1, 3.2.5): returns-to-go and their tokens by hand, the
token layout and its loss mask, the weighted loss in both backends against the float64 oracle
and each other, a seeded learning test, and bad input."""

from __future__ import annotations

import os

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np
import pytest

from duetrl.core.agents.dt_data import (
    Episodes,
    ReturnBuckets,
    Vocabulary,
    batch,
    check_window,
    return_to_go,
    window,
    without_returns,
)
from duetrl.core.reference.gpt import cross_entropy

VOCAB = Vocabulary(num_buckets=3, num_states=16, num_actions=4)  # ids: R 0-2, NONE 3, s 4-19,
R, NONE, S, A, PAD = 0, 3, 4, 20, 24                             # a 20-23, PAD 24


# ---- returns-to-go and buckets -------------------------------------------------------------
def test_return_to_go_by_hand():
    # a terminal reward at the last step: every step's return-to-go is 1
    np.testing.assert_array_equal(return_to_go([0.0, 0.0, 1.0]), [1.0, 1.0, 1.0])
    # a reward at the first step of three: R_t counts r_t itself (sum over t' >= t), so R_1 = 1
    # and nothing after it; the off-by-one sum over t' > t would give [0, 0, 0]
    np.testing.assert_array_equal(return_to_go([1.0, 0.0, 0.0]), [1.0, 0.0, 0.0])
    # a one-step episode that ends with its reward
    np.testing.assert_array_equal(return_to_go([1.0]), [1.0])
    # mixed rewards, gamma = 1: suffix sums
    np.testing.assert_allclose(return_to_go([-1.0, 2.0, -1.0, 3.0]), [3.0, 4.0, 2.0, 3.0])
    # cut by the time limit: the return actually received, nothing bootstrapped
    np.testing.assert_array_equal(return_to_go([0.0, 0.0, 0.0], terminated=False), [0, 0, 0])
    np.testing.assert_array_equal(return_to_go([0.5, 0.0, 0.5], terminated=False),
                                  [1.0, 0.5, 0.5])


def test_buckets_by_hand():
    buckets = ReturnBuckets(0.0, 1.0, 3)  # tokens for 0, 0.5, 1
    np.testing.assert_array_equal(buckets.token([0.0, 0.2, 0.26, 0.5, 0.74, 1.0]),
                                  [0, 0, 1, 1, 1, 2])
    np.testing.assert_array_equal(buckets.token([-3.0, 7.0]), [0, 2])  # clipped to the ends
    np.testing.assert_allclose(buckets.value([0, 1, 2]), [0.0, 0.5, 1.0])
    negative = ReturnBuckets(-13.0, -1.0, 5)  # step costs: spacing 3
    np.testing.assert_array_equal(negative.token([-13.0, -10.0, -8.6, -1.0]), [0, 1, 1, 4])
    assert ReturnBuckets(1.0, 1.0, 4).token(1.0) == 0  # one return in the data: one bucket


# ---- layout and loss mask ------------------------------------------------------------------
STATES, ACTIONS = np.array([0, 4, 8, 9, 13]), np.array([1, 1, 2, 2, 3])
RTG_TOKENS = np.array([2, 2, 1, 1, 0])


def test_a_full_window_interleaves_returns_states_actions():
    x, y, w = window(STATES, ACTIONS, RTG_TOKENS, 0, 2, VOCAB)
    np.testing.assert_array_equal(x, [2, S + 0, A + 1, 2, S + 4, A + 1])
    np.testing.assert_array_equal(y, [S + 0, A + 1, 2, S + 4, A + 1, PAD])
    np.testing.assert_array_equal(w, [0, 1, 0, 0, 1, 0])


def test_the_mask_is_exactly_the_action_targets_also_in_a_padded_window_that_starts_late():
    # the window starts at t = 3 of 5 and asks for 4 steps: 2 real, 2 padded. A mask written as
    # "every third position from 1" survives the full window above; here it would put weight on
    # padding. A mask on x (not y) being an action would sit one position late.
    x, y, w = window(STATES, ACTIONS, RTG_TOKENS, 3, 4, VOCAB)
    np.testing.assert_array_equal(
        x, [1, S + 9, A + 2, 0, S + 13, A + 3, PAD, PAD, PAD, PAD, PAD, PAD])
    np.testing.assert_array_equal(y, np.append(x[1:], PAD))
    is_action = (y >= A) & (y < PAD)
    np.testing.assert_array_equal(w, is_action.astype(np.float32))
    np.testing.assert_array_equal(np.flatnonzero(w), [1, 4])
    assert all(S <= x[i] < A for i in np.flatnonzero(w))  # each weighted input is the state s_t


def test_behaviour_cloning_is_the_same_layout_with_one_constant_return_token():
    x, y, w = window(STATES, ACTIONS, RTG_TOKENS, 3, 4, VOCAB)
    bx, by = without_returns(x[None], VOCAB)
    expected = x.copy()
    expected[[0, 3]] = NONE
    np.testing.assert_array_equal(bx[0], expected)
    np.testing.assert_array_equal(by[0], np.append(expected[1:], PAD))
    x_none, y_none, w_none = window(STATES, ACTIONS, None, 3, 4, VOCAB)
    np.testing.assert_array_equal(x_none, bx[0])
    np.testing.assert_array_equal(y_none, by[0])
    np.testing.assert_array_equal(w_none, w)


def test_batches_start_anywhere_in_the_dataset_and_are_seeded():
    data = Episodes(states=[STATES, np.array([2, 6])], actions=[ACTIONS, np.array([0, 1])],
                    rewards=[np.array([0, 0, 0, 0, 1.0]), np.array([0, 0.0])],
                    terminated=[True, True], epsilons=[0.0, 1.0])
    tokens = [np.array([2, 2, 2, 2, 2]), np.array([0, 0])]
    first = batch(data, tokens, 3, VOCAB, np.random.default_rng(5), 64)
    again = batch(data, tokens, 3, VOCAB, np.random.default_rng(5), 64)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    x, y, w = first
    assert x.shape == y.shape == w.shape == (64, 9)
    starts = {int(row[1]) - S for row in x}  # the first state of each window
    assert starts == {0, 4, 8, 9, 13, 2, 6}  # every timestep of both episodes starts a window
    assert ((y >= A) & (y < PAD)).astype(np.float32).tolist() == w.tolist()


# ---- the weighted loss: oracle, both backends, each other ----------------------------------
def _loss_case(dtype: str):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 6, 7)).astype(dtype)
    targets = rng.integers(0, 7, size=(3, 6))
    weights = (rng.random((3, 6)) < 0.4).astype(dtype)
    weights[0, 1] = 0.5  # not only a 0/1 mask
    return logits, targets, weights


def test_the_reference_weighted_loss_by_hand_and_its_bad_input():
    logits, targets, weights = _loss_case("float64")
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    picked = np.take_along_axis(logp, targets[..., None], -1)[..., 0]
    assert cross_entropy(logits, targets, weights) == pytest.approx(
        -(weights * picked).sum() / weights.sum(), abs=1e-12)
    assert cross_entropy(logits, targets, np.ones((3, 6))) == pytest.approx(
        cross_entropy(logits, targets), abs=1e-12)
    with pytest.raises(ValueError, match="weights"):
        cross_entropy(logits, targets, np.zeros((3, 6)))
    with pytest.raises(ValueError, match="weights"):
        cross_entropy(logits, targets, np.ones((3, 5)))


def _backend_loss(name: str, logits, targets, weights) -> float:
    from duetrl.core.backend import load_backend

    backend = load_backend(name)
    if name == "torch":
        import torch

        to = torch.as_tensor
    else:
        import tensorflow as tf

        to = tf.convert_to_tensor
    w = None if weights is None else to(weights)
    return float(backend.cross_entropy_loss(to(logits), to(targets), w))


@pytest.mark.parametrize("name", ["torch", "tf"])
def test_the_weighted_loss_matches_the_oracle_in_each_backend(name):
    for dtype, tolerance in (("float64", 1e-10), ("float32", 1e-5)):
        logits, targets, weights = _loss_case(dtype)
        expected = cross_entropy(logits, targets, weights)
        assert abs(_backend_loss(name, logits, targets, weights) - expected) <= tolerance, dtype
        ones = np.ones_like(weights)
        plain = _backend_loss(name, logits, targets, None)
        assert abs(plain - cross_entropy(logits, targets)) <= tolerance
        assert abs(_backend_loss(name, logits, targets, ones) - plain) <= tolerance


def test_the_weighted_loss_agrees_across_backends():
    logits, targets, weights = _loss_case("float32")
    assert abs(_backend_loss("torch", logits, targets, weights)
               - _backend_loss("tf", logits, targets, weights)) <= 1e-5


@pytest.mark.parametrize("name", ["torch", "tf"])
def test_train_step_without_weights_equals_all_ones(name):
    from duetrl.core.backend import load_backend
    from duetrl.core.interfaces.gpt_config import GPTConfig

    backend = load_backend(name)
    config = GPTConfig(vocab_size=11, block_size=6, n_layer=1, n_head=2, n_embd=8)
    x = np.random.default_rng(1).integers(0, 11, size=(2, 6))
    y = np.roll(x, -1, axis=1)
    results = []
    for weights in (None, np.ones((2, 6), np.float32)):
        trainer = backend.LMTrainer(backend.GPT(config, seed=0))
        loss, _ = trainer.train_step(x, y, 1e-2, weights)
        after = backend.export_params(trainer.model)
        results.append((loss, trainer.eval_loss(x, y, weights), after))
    (loss0, eval0, p0), (loss1, eval1, p1) = results
    assert abs(loss0 - loss1) <= 1e-6 and abs(eval0 - eval1) <= 1e-6
    for key in p0:
        np.testing.assert_allclose(p0[key], p1[key], atol=1e-6, err_msg=key)


# ---- bad input -----------------------------------------------------------------------------
def test_a_target_outside_the_dataset_range_is_refused_by_name():
    buckets = ReturnBuckets(0.0, 1.0, 5)
    assert buckets.check_target(1.0) == 1.0
    with pytest.raises(ValueError, match=r"target_return: .*\[0, 1\].*got 2"):
        buckets.check_target(2.0)
    with pytest.raises(ValueError, match="target_return"):
        buckets.check_target(-0.5)


def test_a_window_longer_than_the_block_size_is_refused_by_name():
    check_window(4, 12)
    with pytest.raises(ValueError, match=r"window: .*block_size 12.*K = 5"):
        check_window(5, 12)
    with pytest.raises(ValueError, match="start"):
        window(STATES, ACTIONS, RTG_TOKENS, 5, 2, VOCAB)


def test_acting_refuses_a_window_the_model_cannot_hold_and_a_target_out_of_range():
    from duetrl.core.agents.decision_transformer import DTRun, DTSettings, act
    from duetrl.core.backend import load_backend
    from duetrl.core.interfaces.gpt_config import GPTConfig

    backend = load_backend("torch")
    run = DTRun(backend, DTSettings(episodes=20, n_layer=1, n_embd=8, behaviour_cloning=False))
    small = backend.GPT(GPTConfig(vocab_size=run.vocab.size, block_size=6, n_layer=1, n_head=2,
                                  n_embd=8), seed=0)
    with pytest.raises(ValueError, match="window"):
        act(backend, small, run.vocab, run.buckets, run.settings, 1.0, 2, 0)
    with pytest.raises(ValueError, match="target_return"):
        run.returns_asked([0.0, 3.0], episodes=2)


# ---- learning ------------------------------------------------------------------------------
LEARN = {"episodes": 400, "steps": 150, "n_layer": 1, "batch_size": 64,
         "behaviour_cloning": False, "eval_episodes": 50}
"""Deterministic FrozenLake 4x4; the behaviour's mean return is 0.415 on these 400 episodes.
Measured: asked 0 -> 0.06, asked 1 -> 0.78 in both backends (torch ~4 s, tf ~15 s: slow)."""


@pytest.mark.parametrize("name", ["torch", pytest.param("tf", marks=pytest.mark.slow)])
def test_asking_for_the_top_return_gets_it_more_than_a_low_one_and_the_behaviour(name):
    from duetrl.core.agents.decision_transformer import DTRun, DTSettings
    from duetrl.core.backend import load_backend

    backend = load_backend(name)
    backend.set_num_threads(1)
    run = DTRun(backend, DTSettings(**LEARN))
    while not run.finished():
        run.step()
    result = run.returns_asked([0.0, 1.0])
    low, top = result["achieved"]
    behaviour = result["behaviour_return"]
    assert top >= low + 0.4 and top >= behaviour + 0.2, result


# ---- the command line ----------------------------------------------------------------------
def test_dt_train_then_eval_through_the_cli(tmp_path, capsys):
    import json

    from duetrl.core.cli import main

    out = tmp_path / "run"
    tiny = ["--episodes", "30", "--steps", "3", "--n-layer", "1", "--n-embd", "8",
            "--batch-size", "4", "--eval-episodes", "2", "--warmup-steps", "1"]
    assert main(["dt", "train", "--backend", "torch", "--out", str(out), "--quiet", "--json",
                 *tiny]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["updates"] == 3 and len(summary["achieved"]) == 3
    assert {"bc_return", "behaviour_return", "dataset", "train_tokens_per_second"} <= set(summary)
    assert (out / "returns.png").is_file() and (out / "log.csv").is_file()
    checkpoint = str(out / "checkpoint.safetensors")
    assert main(["dt", "eval", checkpoint, "--targets", "0", "1", "--episodes", "2",
                 "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table["targets"] == [0.0, 1.0] and table["backend"] == "torch"
    assert main(["dt", "eval", checkpoint, "--targets", "5"]) == 2  # outside the data's range
    assert "target_return" in capsys.readouterr().err
