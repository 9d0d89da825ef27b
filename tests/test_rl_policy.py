"""Policy and value networks, distributions, losses, gradients and Adam: both backends vs the
float64 reference (core/reference), and against each other."""

from __future__ import annotations

import numpy as np
import pytest

from duetrl.core.initializers import cast_params
from duetrl.core.interfaces.rl_settings import make_settings
from duetrl.core.reference import algorithms as ref
from duetrl.core.reference.optim import adam_step
from duetrl.core.reference.policy import (
    categorical_entropy,
    categorical_log_prob,
    gaussian_log_prob,
    init_agent_params,
    mlp_forward,
    sample_categorical,
)
from duetrl.core.tolerances import assert_close

STATE, ACTIONS, HIDDEN, BATCH = 4, 3, 8, 10


def tol(dtype: str) -> str:
    return "float64" if dtype == "float64" else "float32_layer"


def make_agent(backend, algorithm, continuous, dtype, seed=0, **overrides):
    settings = make_settings(algorithm, hidden_dim=HIDDEN, **overrides)
    agent = backend.Agent(algorithm, STATE, ACTIONS, continuous, settings, dtype)
    params = init_agent_params(algorithm, STATE, HIDDEN, ACTIONS, continuous, seed)
    params = {k: v + (0.1 if k.endswith("bias") else 0.0) for k, v in params.items()}
    params["policy.fc2.kernel"] *= 50  # a policy far from uniform tests more
    backend.import_params(agent, cast_params(params, dtype))
    return agent, params, settings


def flat_batch(continuous, rng):
    actions = rng.normal(size=(BATCH, ACTIONS)) if continuous else rng.integers(0, ACTIONS, BATCH)
    return {"states": rng.normal(size=(BATCH, STATE)), "actions": actions,
            "advantages": rng.normal(size=BATCH), "returns": rng.normal(size=BATCH),
            "mask": (rng.random(BATCH) < 0.8).astype(float),
            "old_log_probs": rng.normal(size=BATCH) * 0.3 - 1.0}


def test_policy_log_prob_entropy_and_sampling_match_reference(backend, dtype):
    rng = np.random.default_rng(0)
    agent, params, _ = make_agent(backend, "ppo", False, dtype)
    states, actions = rng.normal(size=(BATCH, STATE)), rng.integers(0, ACTIONS, BATCH)
    logits = mlp_forward(params, "policy", states)[0]
    t = lambda x: backend.as_tensor(x.astype(dtype) if x.dtype.kind == "f" else x)
    assert_close(agent.policy(t(states)), logits, tol(dtype), "logits")
    log_probs, entropy = agent.policy.log_prob_entropy(t(states), t(actions))
    assert_close(log_probs, categorical_log_prob(logits, actions), tol(dtype), "log pi")
    assert_close(entropy, categorical_entropy(logits), tol(dtype), "entropy")
    noise = rng.gumbel(size=(BATCH, ACTIONS))
    acted = agent.act(states, noise)
    np.testing.assert_array_equal(acted["actions"], sample_categorical(logits, noise))


@pytest.mark.parametrize("log_std", [[0.0, 0.0, 0.0], [0.7, -1.2, 0.3]], ids=["sigma1", "sigma"])
def test_gaussian_policy_matches_reference(backend, dtype, log_std):
    rng = np.random.default_rng(1)
    agent, params, _ = make_agent(backend, "ppo", True, dtype)
    params["policy.log_std"] = np.array(log_std)  # sigma = exp(log_std), one per action dim
    backend.import_params(agent, cast_params(params, dtype))
    states, noise = rng.normal(size=(BATCH, STATE)), rng.normal(size=(BATCH, ACTIONS))
    acted = agent.act(states, noise)
    mean = mlp_forward(params, "policy", states)[0]
    sigma = np.exp(np.array(log_std))
    assert_close(acted["actions"], mean + sigma * noise, tol(dtype), "a = mu + sigma eps")
    expected = gaussian_log_prob(mean, params["policy.log_std"], acted["actions"])
    assert_close(acted["log_probs"], expected, tol(dtype), "log pi")
    # log N(mu + sigma eps; mu, sigma) = sum_d [-eps_d^2 / 2 - log sigma_d - log(2 pi) / 2]
    by_hand = (-0.5 * noise**2 - np.array(log_std) - 0.5 * np.log(2 * np.pi)).sum(axis=1)
    assert_close(acted["log_probs"], by_hand, tol(dtype), "log pi by hand")
    _, entropy = agent.policy.log_prob_entropy(backend.as_tensor(states.astype(dtype)),
                                               backend.as_tensor(acted["actions"]))
    expected_entropy = np.sum(np.array(log_std) + 0.5 * (1 + np.log(2 * np.pi)))
    assert_close(entropy, np.full(BATCH, expected_entropy), tol(dtype), "entropy")


def test_gumbel_max_samples_the_softmax():
    logits = np.array([[0.0, 1.0, 2.0]])
    rng = np.random.default_rng(0)
    draws = sample_categorical(np.repeat(logits, 20000, 0), rng.gumbel(size=(20000, 3)))
    expected = np.exp(logits[0]) / np.exp(logits[0]).sum()
    np.testing.assert_allclose(np.bincount(draws, minlength=3) / 20000, expected, atol=0.01)


@pytest.mark.parametrize("algorithm", ["reinforce", "reinforce_baseline", "ppo"])
@pytest.mark.parametrize("continuous", [False, True], ids=["categorical", "gaussian"])
def test_loss_and_gradients_match_reference(backends, algorithm, continuous):
    rng = np.random.default_rng(2)
    batch = flat_batch(continuous, rng)
    for backend in backends.values():
        extra = {} if algorithm == "reinforce" else {"ent_coef": 0.01}
        agent, params, settings = make_agent(backend, algorithm, continuous, "float64", **extra)
        loss, grads, _ = ref.loss_and_gradients(algorithm, params, batch, settings, continuous)
        tensors = {k: backend.as_tensor(v) for k, v in batch.items()}
        got_loss, got_grads, _ = backend.loss_and_gradients(
            agent, lambda a=agent, b=tensors: a.algorithm_module.compute_loss(a, b)[0])
        assert got_loss == pytest.approx(loss, abs=1e-10)
        assert sorted(got_grads) == sorted(grads)
        for name in grads:
            assert_close(got_grads[name], grads[name], "float64", f"{backend.NAME} d/d{name}")


@pytest.mark.parametrize("continuous", [False, True], ids=["categorical", "gaussian"])
def test_reference_gradients_agree_with_finite_differences(continuous):
    rng = np.random.default_rng(4)
    batch = flat_batch(continuous, rng)
    params = init_agent_params("ppo", STATE, HIDDEN, ACTIONS, continuous, 0)
    settings = make_settings("ppo", hidden_dim=HIDDEN, ent_coef=0.01)
    _, grads, _ = ref.loss_and_gradients("ppo", params, batch, settings, continuous)
    for name in grads:
        index = tuple(rng.integers(0, n) for n in params[name].shape)
        shifted = {}
        for sign in (1, -1):
            p = {k: v.copy() for k, v in params.items()}
            p[name][index] += sign * 1e-6
            shifted[sign] = ref.loss_and_gradients("ppo", p, batch, settings, continuous)[0]
        numeric = (shifted[1] - shifted[-1]) / 2e-6
        assert numeric == pytest.approx(grads[name][index], abs=1e-6), name


def test_ppo_clip_test_vectors_from_design(backend):
    cases = [(1.0, 1.3, -1.2), (-1.0, 0.7, 0.8), (-1.0, 1.3, 1.3)]
    for advantage, ratio, expected in cases:
        t = lambda x: backend.as_tensor(np.array([x], dtype="float64"))
        loss = backend.ppo_clip_loss(t(np.log(ratio)), t(0.0), t(advantage), 0.2)
        assert float(backend.to_numpy(loss)) == pytest.approx(expected, abs=1e-12)


def test_one_adam_step_matches_reference(backend, dtype):
    rng = np.random.default_rng(5)
    agent, params, settings = make_agent(backend, "ppo", False, dtype, max_grad_norm=0.5)
    grads = {k: rng.normal(size=v.shape) for k, v in params.items()}
    expected, state = adam_step(params, grads, {}, 1e-2, 0.5)
    expected, _ = adam_step(expected, grads, state, 1e-2, 0.5)  # a second step: bias correction
    order = agent.optimizer.names
    for _ in range(2):
        # framework layout: torch's Linear weight is (out, in)
        framework = [backend.as_tensor(grads[n].astype(dtype)) for n in order]
        framework = [g if tuple(g.shape) == tuple(p.shape) else backend.as_tensor(
            grads[n].T.astype(dtype)) for g, p, n in zip(framework, agent.optimizer.parameters,
                                                         order)]
        agent.optimizer.apply_gradients(framework, 1e-2)
    got = backend.export_params(agent)
    for name in expected:
        assert_close(got[name], expected[name], tol(dtype), name)


def test_weights_move_between_backends_exactly(backends):
    torch_agent, params, _ = make_agent(backends["torch"], "ppo", True, "float32")
    tf_agent, _, _ = make_agent(backends["tf"], "ppo", True, "float32", seed=9)
    backends["tf"].import_params(tf_agent, backends["torch"].export_params(torch_agent))
    exported = backends["tf"].export_params(tf_agent)
    for name, value in cast_params(params, "float32").items():
        assert_close(exported[name], value, "exact", name)


def test_bad_loss_inputs_raise_the_same_message(backends):
    messages = set()
    for backend in backends.values():
        policy = backend.PolicyNet(STATE, HIDDEN, ACTIONS)
        with pytest.raises(ValueError) as error:
            policy.compute_loss(backend.as_tensor(np.zeros((5, STATE), "float32")),
                                backend.as_tensor(np.zeros(5, "int64")),
                                backend.as_tensor(np.zeros(4, "float32")))
        messages.add(str(error.value))
    assert messages == {"returns: expected shape (5,), got (4,)"}
    for backend in backends.values():
        with pytest.raises(ValueError, match=r"^hidden_dim: expected a positive int, got 0"):
            backend.PolicyNet(STATE, 0, ACTIONS)


def listing_run(backend, episodes: int, seed: int, learning_rate: float = 1e-2):
    """Listing 5.2's ``reinforce`` on CartPole-v1 from the tutorial's initial weights:
    (episode returns, the weights after)."""
    import gymnasium as gym

    params = init_agent_params("reinforce", 4, 64, 2, False, seed=0)
    net = backend.PolicyNet(4, 64, 2)
    backend.import_params(net, {k[len("policy."):]: v
                                for k, v in cast_params(params, "float32").items()})
    returns = backend.reinforce(gym.make("CartPole-v1"), net, episodes, gamma=0.99,
                                learning_rate=learning_rate, seed=seed)
    return returns, backend.export_params(net)


def test_the_listing_plays_the_same_episodes_in_both_frameworks(backends):
    """The same weights and noise: the same 12 episodes (the first 8 as ch05_2 prints them),
    the same weights after 12 updates; another seed plays other episodes, in both alike; with
    a learning rate of 0 the weights stay where they were."""
    runs = {name: listing_run(backend, 12, seed=0) for name, backend in backends.items()}
    assert runs["torch"][0] == runs["tf"][0]
    assert runs["tf"][0][:8] == [15.0, 17.0, 14.0, 38.0, 22.0, 28.0, 57.0, 44.0]
    for key, value in runs["torch"][1].items():
        assert_close(runs["tf"][1][key], value, "float32_layer", key)
    other = {name: listing_run(backend, 4, seed=1)[0] for name, backend in backends.items()}
    assert other["torch"] == other["tf"] != runs["tf"][0][:4]
    start = init_agent_params("reinforce", 4, 64, 2, False, seed=0)
    for name, backend in backends.items():
        returns, after = listing_run(backend, 3, seed=0, learning_rate=0.0)
        assert returns[0] == runs[name][0][0], name  # the first episode comes before any update
        for key, value in after.items():
            np.testing.assert_array_equal(value, np.float32(start["policy." + key]), key)
        moved = max(np.abs(runs[name][1][k] - after[k]).max() for k in after)
        assert moved > 1e-3, f"{name}: 12 updates left the weights where they were"
