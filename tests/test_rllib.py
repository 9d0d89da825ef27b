"""duetrl beside RLlib (core/scale/rllib.py): environments, settings, weights, one evaluation.

RLlib's modules are PyTorch-only; a policy built with the tf backend reaches them through the
canonical weights it exports, so the weight transfer is tested from both backends. One Ray
(one CPU, no dashboard) serves the whole module.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("ray.rllib", reason="needs the scale extra: pip install duetrl[scale]")

from duetrl.core.envs import ENV_IDS  # noqa: E402
from duetrl.core.initializers import cast_params  # noqa: E402
from duetrl.core.interfaces.rl_settings import PPOSettings  # noqa: E402
from duetrl.core.reference.policy import init_agent_params  # noqa: E402
from duetrl.core.scale import rllib  # noqa: E402
from duetrl.core.tolerances import assert_close  # noqa: E402

pytestmark = pytest.mark.xdist_group("ray")  # every Ray test on one xdist worker (conftest.py)

HIDDEN = 16
SETTINGS = PPOSettings(hidden_dim=HIDDEN, num_envs=2, num_steps=16, update_epochs=1)


def cartpole_params(seed: int, hidden: int = HIDDEN) -> dict[str, np.ndarray]:
    """PPO parameters for CartPole with a policy head far from uniform (distinct actions)."""
    params = init_agent_params("ppo", 4, hidden, 2, False, seed)
    params["policy.fc2.kernel"] = params["policy.fc2.kernel"] * 300.0  # undo the 0.01 scale
    params["policy.fc2.bias"] = np.array([0.3, -0.2])
    params["policy.fc1.bias"] = np.linspace(-0.5, 0.5, hidden)
    return cast_params(params, "float32")


def cartpole_observations(count: int = 300) -> np.ndarray:
    """Random CartPole observations (B, 4), spread over and beyond the usual range."""
    return np.random.default_rng(5).normal(0.0, 1.5, size=(count, 4)).astype(np.float32)


@pytest.fixture(scope="module")
def cartpole_module():
    return rllib.build_rllib_module("CartPole-v1", SETTINGS)


@pytest.fixture(scope="module")
def ray_cluster():
    with rllib.ray_session(num_cpus=1):
        yield


# ---- weights --------------------------------------------------------------------------------
def test_weights_from_each_backend_give_rllib_the_same_logits_and_actions(
        backends, cartpole_module) -> None:
    observations = cartpole_observations()
    for name, backend in backends.items():
        agent = backend.Agent("ppo", 4, 2, False, SETTINGS, "float32")
        backend.import_params(agent, cartpole_params(seed=3))
        canonical = backend.export_params(agent)  # what a tf or torch checkpoint holds
        rllib.load_canonical_into_rllib(cartpole_module, canonical)
        result = rllib.compare_policies(lambda s, a=agent: a.policy(a.as_tensor(s)),
                                        cartpole_module, observations)
        assert_close(result.rllib_logits, result.duetrl_logits, "float32_layer",
                     f"RLlib vs duetrl {name} logits")
        theirs = np.argmax(result.rllib_logits, axis=1)
        ours = np.argmax(result.duetrl_logits, axis=1)
        np.testing.assert_array_equal(theirs, ours)
        assert result.same_action_fraction == 1.0
        assert 0.2 < np.mean(ours) < 0.8, "the test policy should choose both actions"
        assert result.max_logit_error <= 1e-5
        # and against the float64 reference of the same canonical weights
        reference = rllib.reference_logits(canonical)(observations)
        assert_close(result.rllib_logits, reference, "float32_layer", f"RLlib vs reference {name}")


def test_canonical_round_trip_through_rllib_is_exact(cartpole_module) -> None:
    params = cartpole_params(seed=4)
    rllib.load_canonical_into_rllib(cartpole_module, params)
    back = rllib.rllib_to_canonical(cartpole_module)
    assert sorted(back) == sorted(params)
    for name, value in params.items():
        assert_close(back[name], value, "exact", name, check_dtype=True)
    state = cartpole_module.state_dict()  # kernels transposed: torch keeps (out, in)
    np.testing.assert_array_equal(state["pi.net.mlp.0.weight"].numpy(),
                                  params["policy.fc2.kernel"].T)
    np.testing.assert_array_equal(state["encoder.critic_encoder.net.mlp.0.bias"].numpy(),
                                  params["value.fc1.bias"])


def test_a_policy_alone_leaves_rllib_value_network_untouched(cartpole_module) -> None:
    before = rllib.rllib_to_canonical(cartpole_module)["value.fc2.kernel"]
    policy_only = {k: v for k, v in cartpole_params(seed=6).items() if k.startswith("policy.")}
    rllib.load_canonical_into_rllib(cartpole_module, policy_only)
    after = rllib.rllib_to_canonical(cartpole_module)
    np.testing.assert_array_equal(after["value.fc2.kernel"], before)
    np.testing.assert_array_equal(after["policy.fc1.kernel"], policy_only["policy.fc1.kernel"])


def test_wrong_hidden_size_names_the_layer_and_both_shapes(cartpole_module) -> None:
    params = cartpole_params(seed=0, hidden=HIDDEN * 2)
    with pytest.raises(ValueError, match=r"'policy.fc1.kernel' has shape \(4, 32\).*"
                                         r"expects \(4, 16\)"):
        rllib.load_canonical_into_rllib(cartpole_module, params)


def test_bad_parameter_sets_are_refused(cartpole_module) -> None:
    params = cartpole_params(seed=0)
    with pytest.raises(ValueError, match=r"needs \['policy.fc2.bias'\]"):
        rllib.load_canonical_into_rllib(
            cartpole_module, {k: v for k, v in params.items() if k != "policy.fc2.bias"})
    with pytest.raises(ValueError, match="no RLlib counterpart for \\['policy.fc3.bias'\\]"):
        rllib.load_canonical_into_rllib(cartpole_module,
                                        {**params, "policy.fc3.bias": np.zeros(2, np.float32)})
    gaussian = {**params, "policy.log_std": np.zeros(2, np.float32)}
    with pytest.raises(ValueError, match="'policy.log_std' has no place"):
        rllib.load_canonical_into_rllib(cartpole_module, gaussian)


def test_gaussian_policy_moves_its_mean_and_log_std() -> None:
    module = rllib.build_rllib_module("duetrl/IdentityContinuous-v0", SETTINGS)
    params = cast_params(init_agent_params("ppo", 1, HIDDEN, 1, True, 2), "float32")
    params["policy.log_std"] = np.array([-0.7], np.float32)
    params["policy.fc2.bias"] = np.array([0.25], np.float32)
    rllib.load_canonical_into_rllib(module, params)
    observations = np.linspace(-1, 1, 50, dtype=np.float32)[:, None]
    means = rllib.rllib_logits(module, observations)
    assert means.shape == (50, 1)
    assert_close(means, rllib.reference_logits(params)(observations), "float32_layer", "means")
    assert rllib.rllib_to_canonical(module)["policy.log_std"][0] == np.float32(-0.7)


# ---- settings and environments --------------------------------------------------------------
def test_ppo_config_carries_every_setting() -> None:
    settings = PPOSettings(hidden_dim=24, num_envs=3, num_steps=8, learning_rate=3e-3,
                           anneal_lr=False, gamma=0.97, gae_lambda=0.9, update_epochs=5,
                           num_minibatches=4, clip_eps=0.15, vf_coef=0.6, ent_coef=0.01,
                           max_grad_norm=0.7)
    config = rllib.ppo_config("CartPole-v1", settings, seed=9)
    assert (config.gamma, config.lambda_, config.clip_param) == (0.97, 0.9, 0.15)
    assert config.lr == 3e-3 and config.num_epochs == 5
    assert config.train_batch_size_per_learner == 24 and config.minibatch_size == 6
    assert config.num_envs_per_env_runner == 3 and config.rollout_fragment_length == 8
    assert config.vf_loss_coeff == pytest.approx(0.3)  # duetrl's loss has (V - R)^2 / 2
    assert config.vf_clip_param == math.inf and not config.use_kl_loss
    assert (config.entropy_coeff, config.grad_clip, config.grad_clip_by) == (
        0.01, 0.7, "global_norm")
    assert config.seed == 9 and config.num_env_runners == 0
    model = config.model_config
    assert model["fcnet_hiddens"] == [24] and model["fcnet_activation"] == "relu"
    assert model["head_fcnet_hiddens"] == [] and model["vf_share_layers"] is False
    annealed = rllib.ppo_config("CartPole-v1", PPOSettings(learning_rate=2e-3),
                                total_steps=5000)
    assert annealed.lr == [[0, 2e-3], [5000, 0.0]]


def test_ppo_config_refuses_what_rllib_cannot_match() -> None:
    with pytest.raises(ValueError, match="num_minibatches: expected a divisor of .* = 256, got 3"):
        rllib.ppo_config("CartPole-v1", PPOSettings(num_minibatches=3))
    with pytest.raises(ValueError, match="normalize_advantages"):
        rllib.ppo_config("CartPole-v1", PPOSettings(normalize_advantages=False))
    with pytest.raises(ValueError, match="unknown environment id 'NoSuchEnv-v0'"):
        rllib.register_rllib_envs(["NoSuchEnv-v0"])


def test_rllib_builds_and_steps_every_registered_env() -> None:
    from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

    env_ids = rllib.register_rllib_envs(["CartPole-v1"])
    assert env_ids == [*ENV_IDS, "CartPole-v1"]
    for env_id in env_ids:
        runner = SingleAgentEnvRunner(config=rllib.ppo_config(env_id, SETTINGS))
        episodes = runner.sample(num_timesteps=20, random_actions=True)
        assert sum(len(e) for e in episodes) >= 20, env_id
        space = gym.make(env_id).observation_space
        assert runner.env.single_observation_space == space, env_id
        runner.stop()


# ---- one evaluation for both ----------------------------------------------------------------
def test_evaluate_is_greedy_seeded_and_matches_a_hand_replay() -> None:
    perfect = {"policy.fc1.kernel": np.eye(4), "policy.fc1.bias": np.zeros(4),
               "policy.fc2.kernel": np.eye(4), "policy.fc2.bias": np.zeros(4)}
    result = rllib.evaluate(rllib.reference_logits(perfect), "duetrl/Identity-v0", episodes=3)
    assert result.returns == [16.0, 16.0, 16.0] and result.mean_return == 16.0
    # always action 2: the return is the number of steps whose target is 2, seeds 7, 8
    always_2 = {**perfect, "policy.fc2.kernel": np.zeros((4, 4)),
                "policy.fc2.bias": np.array([0.0, 0.0, 1.0, 0.0])}
    got = rllib.evaluate(rllib.reference_logits(always_2), "duetrl/Identity-v0", 2, seed=7)
    expected = []
    for seed in (7, 8):
        env = gym.make("duetrl/Identity-v0")
        observation, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            observation, reward, terminated, truncated, _ = env.step(2)
            total, done = total + reward, terminated or truncated
        expected.append(total)
    assert got.returns == expected
    continuous = {"policy.fc1.kernel": np.array([[1.0, -1.0]]), "policy.fc1.bias": np.zeros(2),
                  "policy.fc2.kernel": np.array([[1.0], [-1.0]]), "policy.fc2.bias": np.zeros(1)}
    exact = rllib.evaluate(rllib.reference_logits(continuous), "duetrl/IdentityContinuous-v0", 2)
    assert exact.returns == [0.0, 0.0]  # the mean action relu(x) - relu(-x) = x, no noise
    with pytest.raises(ValueError, match="episodes: expected a positive number, got 0"):
        rllib.evaluate(rllib.reference_logits(perfect), "duetrl/Identity-v0", episodes=0)


def test_learning_curve_is_the_mean_of_the_last_window_episodes() -> None:
    log = [(10, 1.0), (10, 3.0), (25, 5.0), (40, 10.0)]
    assert rllib.learning_curve(log, window=2) == ([10, 10, 25, 40], [1.0, 2.0, 4.0, 7.5])
    assert rllib.learning_curve(log)[1] == [1.0, 2.0, 3.0, 4.75]
    assert rllib.learning_curve(log, window=1)[1] == [1.0, 3.0, 5.0, 10.0]
    with pytest.raises(ValueError, match="window: expected a positive number, got 0"):
        rllib.learning_curve(log, window=0)


# ---- RLlib's PPO, one iteration ---------------------------------------------------------------
def test_rllib_ppo_iterations_and_the_shared_evaluation(ray_cluster) -> None:
    params = cartpole_params(seed=1)
    run = rllib.train_rllib_ppo("CartPole-v1", SETTINGS, total_steps=10_000, seed=0,
                                initial_params=params, max_iterations=2)
    try:
        assert len(run.env_steps) == 2
        assert run.env_steps[1] >= run.env_steps[0] >= SETTINGS.num_envs * SETTINGS.num_steps
        assert len(run.episode_log) >= 2
        assert all(step in run.env_steps and r >= 8.0 for step, r in run.episode_log)
        # CartPole pays 1 per step: the recorded returns cannot exceed the steps sampled, and
        # an episode cut between iterations counts its steps from both (no return below 8)
        assert sum(r for _, r in run.episode_log) <= run.env_steps[-1]
        evaluation = rllib.evaluate(lambda s: rllib.rllib_logits(run.module, s), "CartPole-v1",
                                    episodes=3)
        assert len(evaluation.returns) == 3 and math.isfinite(evaluation.mean_return)
        assert evaluation.mean_return >= 8.0  # no CartPole episode is shorter than 8 steps
        # the update moved the weights away from the ones loaded at the start
        trained = rllib.rllib_to_canonical(run.module)
        assert not np.array_equal(trained["policy.fc1.kernel"], params["policy.fc1.kernel"])
        # the learner's module holds the value network too, and the same policy
        learned = rllib.learner_params(run.algo)
        assert sorted(learned) == sorted(params)
        np.testing.assert_array_equal(learned["policy.fc2.kernel"], trained["policy.fc2.kernel"])
        assert not np.array_equal(learned["value.fc1.kernel"], params["value.fc1.kernel"])
        # the same weights evaluated by duetrl's reference give the same greedy returns
        again = rllib.evaluate(rllib.reference_logits(trained), "CartPole-v1", episodes=3)
        assert again.returns == evaluation.returns
        # set_rllib_weights reaches both the learner and the acting env runner
        rllib.set_rllib_weights(run.algo, params)
        learner = run.algo.learner_group._learner.module[rllib.DEFAULT_MODULE_ID]
        observations = cartpole_observations(100)
        for module in (learner, run.module):
            result = rllib.compare_policies(rllib.reference_logits(params), module, observations)
            assert result.max_logit_error <= 1e-5 and result.same_action_fraction == 1.0
    finally:
        run.algo.stop()
