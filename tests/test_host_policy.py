"""The RL loops act on the host (core/rl/host_policy.py): a HostActor built from an agent's
exported policy must pick the actions and log-probabilities of the agent's own framework step
(``Agent.act``), in both backends, categorical and Gaussian, float32 and float64; and the
trainer's actor follows the weights as they change."""

from __future__ import annotations

import numpy as np
import pytest

from duetrl.core.interfaces.rl_settings import make_settings
from duetrl.core.reference.policy import init_agent_params
from duetrl.core.rl.host_policy import HostActor
from duetrl.core.tolerances import assert_close


@pytest.mark.parametrize("continuous", [False, True], ids=["categorical", "gaussian"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_host_actor_acts_as_the_agent(backend, continuous, dtype):
    state_dim, action_dim = 5, 3
    settings = make_settings("ppo")
    agent = backend.Agent("ppo", state_dim, action_dim, continuous, settings, dtype)
    rng = np.random.default_rng(7)
    params = init_agent_params("ppo", state_dim, settings.hidden_dim, action_dim, continuous, 1)
    params = {k: rng.normal(0.0, 0.5, size=np.shape(v)).astype(dtype) for k, v in params.items()}
    backend.import_params(agent, params)
    states = rng.standard_normal((16, state_dim))
    noise = (rng.standard_normal if continuous else rng.gumbel)(size=(16, action_dim))
    host = HostActor(backend.export_params(agent.policy), dtype).act(states, noise)
    framework = agent.act(states, noise)
    tolerance = "float32_model" if dtype == "float32" else "float64"
    assert host["actions"].shape == framework["actions"].shape
    if continuous:
        assert_close(host["actions"], framework["actions"], tolerance, "actions")
    else:
        np.testing.assert_array_equal(host["actions"], framework["actions"])
        assert host["actions"].dtype == np.int64
    assert_close(host["log_probs"], framework["log_probs"], tolerance, "log_probs")
    assert host["log_probs"].dtype == np.dtype(dtype)


def test_the_trainers_actor_is_taken_afresh(backend):
    from duetrl.core.rl.train import PolicyGradientTrainer

    trainer = PolicyGradientTrainer("ppo", "CartPole-v1", backend.NAME, make_settings("ppo"),
                                    seed=0, total_steps=1000)
    try:
        before = trainer.actor().weights
        changed = {k: v + 1.0 for k, v in backend.export_params(trainer.agent.policy).items()}
        backend.import_params(trainer.agent.policy, changed)
        after = trainer.actor().weights
        for old, new, name in zip(before, after, ("W1", "b1", "W2", "b2")):
            np.testing.assert_allclose(new, old + 1.0, rtol=0, atol=1e-6, err_msg=name)
    finally:
        trainer.close()


def test_log_probs_stay_exact_for_logits_hundreds_apart():
    """The log-sum-exp is shifted by each row's own largest logit: shifting by the smallest
    (row 0: exp(800) overflows) or by the batch's largest (row 1, all near -900: every exp
    underflows to 0) gives inf or -inf here, where the log-softmax is exact."""
    from scipy.special import log_softmax

    from duetrl.core.rl.host_policy import sample

    eye = np.eye(3)
    weights = (eye, np.zeros(3), -eye, np.zeros(3))  # out = -relu(states) = -states here
    states = np.array([[0.0, 800.0, 10.0], [1000.0, 900.0, 950.0]])
    actions, log_probs = sample(weights, states, np.zeros((2, 3)))
    np.testing.assert_array_equal(actions, [0, 1])  # the largest logit of each row
    expected = log_softmax(-states, axis=-1)[[0, 1], [0, 1]]
    np.testing.assert_allclose(log_probs, expected, rtol=0, atol=1e-12)
