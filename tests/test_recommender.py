"""The recommender's tensors in both backends (issue 19 part 1, outline 6.2.2-6.2.3): every loss
and correction against the float64 reference, the gradient through the stop-gradients (beta's
head never moves the trunk, the weight f is a constant), the policy's outputs on a GPT with
title words, N lockstep updates of each method in both frameworks, and bad input."""

# ruff: noqa: B023  (each closure is called in the loop iteration that defines it)
from __future__ import annotations

import numpy as np
import pytest

from duetrl.core.cases.recommender.catalogue import ITEM_OFFSET, make_catalogue
from duetrl.core.cases.recommender.logged import log_sessions
from duetrl.core.cases.recommender.simulator import Simulator
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.recommender import METHODS
from duetrl.core.reference import recommender as ref
from duetrl.core.tolerances import assert_close, to_numpy

CATALOGUE = make_catalogue(n_topics=2, items_per_topic=3, seed=0)  # N = 6
HISTORY, FIRST = 3, 1


def _config() -> GPTConfig:
    return GPTConfig(
        vocab_size=CATALOGUE.vocab_size,
        block_size=CATALOGUE.block_size(HISTORY, True),
        n_layer=1,
        n_head=2,
        n_embd=16,
    )


@pytest.fixture(scope="module")
def events():
    rng = np.random.default_rng(0)
    b, e, n = 3, 4, 6
    return {
        "logits": rng.normal(size=(b, e, n)),
        "behaviour": rng.normal(size=(b, e, n)),
        "actions": rng.integers(0, n, (b, e)),
        "rewards": rng.random((b, e)),
        "beta": rng.uniform(0.02, 0.5, (b, e)),
        "targets": rng.integers(0, n, (b, e)),
        "mask": (rng.random((b, e)) < 0.8).astype(float),
    }


@pytest.fixture(scope="module")
def batch():
    data = log_sessions(Simulator(CATALOGUE), 5, HISTORY, FIRST, seed=1)
    return {
        "tokens": CATALOGUE.encode(data.history, True),
        "positions": CATALOGUE.state_positions(FIRST, HISTORY, True),
        "actions": data.actions,
        "rewards": data.rewards,
        "propensities": data.propensities,
        "next_items": data.next_items,
        "mask": np.ones(data.actions.shape),
    }


# ---- the pieces against the reference ---------------------------------------------------------
@pytest.mark.parametrize("method", ["reinforce", "off_policy", "top_k"])
@pytest.mark.parametrize("cap", [10.0, 1.5])
def test_corrected_loss_and_its_gradient_match_the_reference(backends, events, method, cap):
    ev = events
    args = (ev["actions"], ev["rewards"], ev["beta"], ev["mask"])
    expected = ref.corrected_loss(ev["logits"], *args, method, cap, 3)
    grad = ref.corrected_loss_grad(ev["logits"], *args, method, cap, 3)
    for name, b in backends.items():
        loss, _, grads = b.loss_and_gradients(
            b.RecommenderPolicy(_config(), CATALOGUE.size, dtype="float64"),
            lambda z, a, r, beta, m: b.corrected_loss(z, a, r, beta, m, method, cap, 3),
            ev["logits"],
            *args,
        )
        assert abs(loss - expected) < 1e-10, name
        assert_close(grads[0], grad, "float64", name=f"{name} dL/dz")
        # sg[f]: neither the behaviour probabilities nor the rewards get a gradient path
        assert grads[3] is None or not np.any(grads[3]), name


def test_weights_multiplier_and_head_losses_match_the_reference(backends, events):
    ev = events
    pi = ref.softmax(ev["logits"])[..., 0]
    for name, b in backends.items():
        t = b.as_tensor
        for k in (1, 2, 5):
            assert_close(
                b.top_k_multiplier(t(pi), k),
                ref.top_k_multiplier(pi, k),
                "float64",
                name=f"{name} lambda_{k}",
            )
        for cap in (0.5, 3.0):
            assert_close(
                b.importance_weights(t(pi), t(ev["beta"]), cap),
                ref.importance_weights(pi, ev["beta"], cap),
                "float64",
                name=name,
            )
        for method in ("reinforce", "off_policy", "top_k"):
            assert_close(
                b.event_weights(t(pi), t(ev["beta"]), method, 2.0, 4),
                ref.event_weights(pi, ev["beta"], method, 2.0, 4),
                "float64",
                name=f"{name} {method}",
            )
        got = b.behaviour_loss(t(ev["behaviour"]), t(ev["actions"]), t(ev["mask"]))
        assert (
            abs(
                float(to_numpy(got))
                - ref.behaviour_loss(ev["behaviour"], ev["actions"], ev["mask"])
            )
            < 1e-10
        )
        got = b.next_item_loss(t(ev["logits"]), t(ev["targets"]), t(ev["mask"]))
        assert (
            abs(float(to_numpy(got)) - ref.next_item_loss(ev["logits"], ev["targets"], ev["mask"]))
            < 1e-10
        )


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_policy_outputs_match_the_reference_gpt_with_titles(backends, batch, dtype):
    for name, b in backends.items():
        policy = b.RecommenderPolicy(_config(), CATALOGUE.size, dtype=dtype, seed=3)
        pi, beta = b.item_probabilities(policy, batch["tokens"], batch["positions"])
        logits, behaviour = ref.recommender_outputs(
            b.export_params(policy),
            batch["tokens"],
            batch["positions"],
            _config(),
            CATALOGUE.size,
            ITEM_OFFSET,
        )
        tolerance = "float64" if dtype == "float64" else "float32_model"
        assert pi.shape == (5, HISTORY - FIRST + 1, CATALOGUE.size)
        assert_close(pi, ref.softmax(logits), tolerance, name=f"{name} pi")
        assert_close(beta, ref.softmax(behaviour), tolerance, name=f"{name} beta")
        assert sorted(b.export_params(policy))[:2] == ["behaviour.bias", "behaviour.kernel"]


def test_the_behaviour_head_never_moves_the_trunk(backends, batch):
    for name, b in backends.items():
        policy = b.RecommenderPolicy(_config(), CATALOGUE.size, dtype="float64", seed=3)
        tokens, positions = b.as_tensor(batch["tokens"]), b.as_tensor(batch["positions"])
        actions = b.as_tensor(batch["actions"])

        def beta_only(m):
            return b.behaviour_loss(policy(tokens, positions)[1], actions, m)

        _, grads, _ = b.loss_and_gradients(policy, beta_only, batch["mask"])
        assert np.abs(grads["behaviour.kernel"]).max() > 1e-6, name
        assert max(np.abs(g).max() for k, g in grads.items() if k.startswith("gpt.")) == 0, name

        def policy_only(m):
            logits, _ = policy(tokens, positions)
            return b.corrected_loss(
                logits,
                actions,
                b.as_tensor(batch["rewards"]),
                b.as_tensor(batch["propensities"]),
                m,
                "top_k",
                10.0,
                2,
            )

        _, grads, _ = b.loss_and_gradients(policy, policy_only, batch["mask"])
        assert np.abs(grads["gpt.wte.embeddings"]).max() > 1e-6, name
        assert not np.any(grads["behaviour.kernel"]) and not np.any(grads["behaviour.bias"])


# ---- lockstep: both frameworks, the same weights, the same batches ----------------------------
@pytest.mark.parametrize("method", METHODS)
def test_lockstep_updates_in_both_backends(backends, batch, method):
    params, losses = {}, {}
    for name, b in backends.items():
        policy = b.RecommenderPolicy(_config(), CATALOGUE.size, dtype="float64", seed=5)
        learner = b.RecommenderLearner(policy, method, learning_rate=1e-2, cap=3.0, k=3)
        losses[name] = [learner.update(**batch) for _ in range(3)]
        params[name] = b.export_params(policy)
    for key in ("loss", "policy_loss", "behaviour_loss", "weight", "grad_norm"):
        assert_close(
            [s[key] for s in losses["tf"]],
            [s[key] for s in losses["torch"]],
            "float64",
            name=f"{method} {key}",
        )
    for key, value in params["torch"].items():
        assert_close(params["tf"][key], value, "float64", name=f"{method} {key}")
    assert losses["torch"][2]["loss"] != losses["torch"][0]["loss"]  # the weights moved


def test_first_step_loss_is_the_reference_loss_on_the_learners_own_outputs(backends, batch):
    for name, b in backends.items():
        policy = b.RecommenderPolicy(_config(), CATALOGUE.size, dtype="float64", seed=5)
        logits, behaviour = ref.recommender_outputs(
            b.export_params(policy),
            batch["tokens"],
            batch["positions"],
            _config(),
            CATALOGUE.size,
            ITEM_OFFSET,
        )
        beta = np.take_along_axis(ref.softmax(behaviour), batch["actions"][..., None], 2)[..., 0]
        for propensity, used in (("learned", beta), ("logged", batch["propensities"])):
            fresh = b.RecommenderPolicy(_config(), CATALOGUE.size, dtype="float64", seed=5)
            learner = b.RecommenderLearner(
                fresh, "top_k", 1e-3, cap=2.0, k=2, propensity=propensity
            )
            stats = learner.update(**batch)
            expected = ref.corrected_loss(
                logits, batch["actions"], batch["rewards"], used, batch["mask"], "top_k", 2.0, 2
            )
            assert abs(stats["policy_loss"] - expected) < 1e-10, (name, propensity)
            assert (
                abs(
                    stats["behaviour_loss"]
                    - ref.behaviour_loss(behaviour, batch["actions"], batch["mask"])
                )
                < 1e-10
            )


@pytest.mark.parametrize("method", ["supervised", "top_k"])
def test_lockstep_in_float32_within_the_model_tolerance(backends, batch, method):
    params = {}
    for name, b in backends.items():
        policy = b.RecommenderPolicy(_config(), CATALOGUE.size, seed=5)
        learner = b.RecommenderLearner(policy, method, learning_rate=1e-2)
        for _ in range(3):
            learner.update(**batch)
        params[name] = b.export_params(policy)
    for key, value in params["torch"].items():
        assert_close(params["tf"][key], value, "float32_model", name=f"{method} {key}")


# ---- bad input --------------------------------------------------------------------------------
def test_bad_input_is_named(backends, batch):
    for b in backends.values():
        learner = b.RecommenderLearner(b.RecommenderPolicy(_config(), CATALOGUE.size), "top_k")
        outside = {**batch, "actions": batch["actions"] + CATALOGUE.size}
        with pytest.raises(ValueError, match=r"actions: expected item ids in \[0, 6\)"):
            learner.update(**outside)
        with pytest.raises(ValueError, match=r"next_items: expected item ids in \[0, 6\).*got -1"):
            learner.update(**{**batch, "next_items": batch["next_items"] * 0 - 1})
        zero = batch["propensities"].copy()
        zero[0, 0] = 0.0
        with pytest.raises(
            ValueError, match=r"propensities: expected behaviour probabilities in \(0, 1\].*got 0.0"
        ):
            learner.update(**{**batch, "propensities": zero})
        nan = batch["rewards"].copy()
        nan[1, 2] = np.nan
        with pytest.raises(ValueError, match="rewards: expected finite numbers, got nan"):
            learner.update(**{**batch, "rewards": nan})
        with pytest.raises(ValueError, match=r"rewards: expected shape \(5, 3\)"):
            learner.update(**{**batch, "rewards": batch["rewards"][:, :2]})
        with pytest.raises(ValueError, match="method: expected one of"):
            b.RecommenderLearner(b.RecommenderPolicy(_config(), CATALOGUE.size), "ips")
        with pytest.raises(ValueError, match="propensity: expected one of"):
            b.RecommenderLearner(
                b.RecommenderPolicy(_config(), CATALOGUE.size), "top_k", propensity="true"
            )
        with pytest.raises(ValueError, match="num_items: expected item_offset"):
            b.RecommenderPolicy(_config(), CATALOGUE.vocab_size)
