"""duetrl beside RLlib (outline 7.2.3): the same environments, the same PPO, the same weights.

Four bridges, each small enough to read in one sitting:

* **environments**: :func:`register_rllib_envs` hands duetrl's environments (and any
  Gymnasium id) to RLlib through ``ray.tune.registry.register_env``;
* **settings**: :func:`ppo_config` turns duetrl's :class:`PPOSettings` into an RLlib
  ``PPOConfig`` with the same network, gamma, lambda, clip range, learning rate, epochs,
  minibatches and batch size (rollout length x environments = RLlib's train batch);
* **evaluation**: :func:`evaluate` runs *one* piece of code for both libraries: N episodes
  with fixed seeds, acting **greedily** (argmax of the logits, or the Gaussian's mean),
  reporting the mean return;
* **weights** (:mod:`duetrl.core.scale.rllib_weights`, re-exported here):
  :func:`~duetrl.core.scale.rllib_weights.load_canonical_into_rllib` copies duetrl's
  canonical parameters (``policy.fc1.kernel`` ...; a kernel is ``(in, out)``, ``x @ W + b``)
  into RLlib's default PPO torch module, whose ``Linear`` weights are ``(out, in)``: every
  kernel is transposed once.
  :func:`~duetrl.core.scale.rllib_weights.rllib_to_canonical` goes the other way;
  :func:`compare_policies` runs both on the same observations and compares logits and chosen
  actions.

RLlib's current API stack (RLModule, Learner, EnvRunner) is PyTorch-only: RLlib no longer
trains TensorFlow models. A duetrl policy trained with the ``tf`` backend reaches RLlib the
same way as a torch one, through its canonical weights, which both backends export.

Nothing here imports Ray, RLlib or torch until a function needs them, so ``duetrl.core``
stays framework-free at import time (RLlib itself imports torch).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from duetrl.core.interfaces.rl_settings import PPOSettings
from duetrl.core.reference.policy import mlp_forward
from duetrl.core.scale.rllib_weights import (  # noqa: F401  (the bridge's weights, re-exported)
    CANONICAL_TO_RLLIB,
    DEFAULT_MODULE_ID,
    canonical_to_rllib_state,
    learner_params,
    load_canonical_into_rllib,
    rllib_to_canonical,
    set_rllib_weights,
)


# ---- environments ---------------------------------------------------------------------------
def register_rllib_envs(extra_env_ids: Iterable[str] = ()) -> list[str]:
    """Register duetrl's environments and ``extra_env_ids`` with RLlib (safe to call twice).

    RLlib builds an environment from a name registered with ``ray.tune.registry.register_env``
    and a creator ``env_config -> gymnasium.Env``; each creator here is ``gymnasium.make``.

    :param extra_env_ids: more Gymnasium ids to register (``"CartPole-v1"``, ...).
    :returns: every id registered, duetrl's first.
    :raises ValueError: naming an id Gymnasium does not know.
    """
    import gymnasium as gym
    from ray.tune.registry import register_env

    from duetrl.core.envs import ENV_IDS
    from duetrl.core.envs.vector import check_env_id

    env_ids = list(dict.fromkeys([*ENV_IDS, *extra_env_ids]))
    for env_id in env_ids:
        check_env_id(env_id)  # a clear error before RLlib fails somewhere deep inside

        def make_env(env_config: Mapping[str, Any] | None = None, env_id: str = env_id):
            return gym.make(env_id, **dict(env_config or {}))

        register_env(env_id, make_env)
    return env_ids


# ---- settings -------------------------------------------------------------------------------
def ppo_config(env_id: str, settings: PPOSettings | None = None, seed: int = 0,
               total_steps: int = 100_000, num_env_runners: int = 0) -> Any:
    """An RLlib ``PPOConfig`` matched, setting by setting, to duetrl's PPO.

    ==========================  ===========================================================
    duetrl (PPOSettings)        RLlib
    ==========================  ===========================================================
    hidden_dim, ReLU            ``fcnet_hiddens=[hidden_dim]``, ``fcnet_activation="relu"``,
                                ``vf_share_layers=False`` (separate policy and value nets)
    num_envs x num_steps        ``num_envs_per_env_runner``, ``rollout_fragment_length``,
                                ``train_batch_size_per_learner`` = their product
    update_epochs               ``num_epochs``
    num_minibatches             ``minibatch_size`` = batch / num_minibatches
    gamma, gae_lambda, clip     ``gamma``, ``lambda_``, ``clip_param``
    learning_rate, anneal_lr    ``lr``: a number, or the schedule [[0, lr], [total, 0]]
    vf_coef x (V - R)^2 / 2     ``vf_loss_coeff = vf_coef / 2`` (RLlib has no 1/2), no clip
    ent_coef, max_grad_norm     ``entropy_coeff``, ``grad_clip`` by global norm
    (no KL penalty)             ``use_kl_loss=False``
    ==========================  ===========================================================

    The same in both without a setting: advantages standardised over the whole batch, Adam's
    epsilon 1e-8, bootstrapping from V at a time-limit truncation. What stays different:
    RLlib initialises with torch's defaults (duetrl: Glorot, a policy head scaled by 0.01)
    unless :func:`~duetrl.core.scale.rllib_weights.set_rllib_weights` loads duetrl's initial
    weights; RLlib shuffles the minibatches with its own random numbers; an iteration may
    sample a few steps more than the batch.

    :param env_id: a registered environment id (see :func:`register_rllib_envs`).
    :param settings: duetrl's PPO settings (the defaults when ``None``).
    :param seed: RLlib's seed (environments and module initialisation).
    :param total_steps: the environment-step budget (the learning-rate schedule runs over it).
    :param num_env_runners: 0 samples in the driver process (smallest; what tests use).
    """
    import gymnasium as gym
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    from duetrl.core.envs.vector import check_env_id

    settings = settings or PPOSettings()
    settings.validate()
    if not settings.normalize_advantages:
        raise ValueError("settings: normalize_advantages=False has no RLlib counterpart "
                         "(RLlib's PPO always standardises advantages); expected True")
    batch = settings.num_envs * settings.num_steps
    if batch % settings.num_minibatches:
        raise ValueError(f"num_minibatches: expected a divisor of num_envs * num_steps = "
                         f"{batch}, got {settings.num_minibatches}")
    if num_env_runners < 0:
        raise ValueError(f"num_env_runners: expected 0 or more, got {num_env_runners}")
    spec = check_env_id(env_id)
    env = gym.make(spec.id)
    continuous = isinstance(env.action_space, gym.spaces.Box)  # a Gaussian policy
    env.close()
    lr = settings.learning_rate
    learning_rate = [[0, lr], [total_steps, 0.0]] if settings.anneal_lr else lr
    model = DefaultModelConfig(fcnet_hiddens=[settings.hidden_dim], fcnet_activation="relu",
                               head_fcnet_hiddens=[], vf_share_layers=False,
                               free_log_std=continuous)  # a learned log std, like duetrl's
    return (
        PPOConfig()
        .environment(env_id)
        .framework("torch")
        .env_runners(num_env_runners=num_env_runners,
                     num_envs_per_env_runner=settings.num_envs,
                     rollout_fragment_length=settings.num_steps)
        .training(gamma=settings.gamma, lambda_=settings.gae_lambda,
                  clip_param=settings.clip_eps, lr=learning_rate,
                  num_epochs=settings.update_epochs,
                  minibatch_size=batch // settings.num_minibatches,
                  train_batch_size_per_learner=batch,
                  vf_loss_coeff=settings.vf_coef / 2, vf_clip_param=math.inf,
                  entropy_coeff=settings.ent_coef, use_kl_loss=False, kl_coeff=0.0,
                  grad_clip=settings.max_grad_norm or None, grad_clip_by="global_norm")
        .rl_module(model_config=model)
        .debugging(seed=seed)
    )


def build_rllib_module(env_id: str, settings: PPOSettings | None = None) -> Any:
    """RLlib's default PPO torch RLModule for ``env_id``, built alone (no Ray cluster needed)."""
    import gymnasium as gym

    from duetrl.core.envs.vector import check_env_id

    check_env_id(env_id)
    env = gym.make(env_id)
    try:
        return ppo_config(env_id, settings).get_rl_module_spec(env=env).build()
    finally:
        env.close()


# ---- acting and comparing -------------------------------------------------------------------
def rllib_logits(module: Any, observations: np.ndarray) -> np.ndarray:
    """The policy's outputs (B, A) for observations (B, S): logits, or the Gaussian's means.

    RLlib's ``forward_inference`` returns ``action_dist_inputs``; for a Gaussian that is
    ``[means, log stds]``, of which the first half is returned.
    """
    from ray.rllib.utils.torch_utils import convert_to_torch_tensor

    from duetrl.core.tolerances import to_numpy

    observations = np.asarray(observations, dtype=np.float32)
    inputs = module.forward_inference({"obs": convert_to_torch_tensor(observations)})
    outputs = to_numpy(inputs["action_dist_inputs"])
    if type(module.pi).__name__.endswith("FreeLogStdMLPHead"):
        outputs = outputs[:, : outputs.shape[1] // 2]
    return outputs


def reference_logits(params: Mapping[str, np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """A float64 NumPy policy from canonical parameters: observations (B, S) -> logits (B, A)."""
    params64 = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    return lambda observations: mlp_forward(params64, "policy",
                                            np.asarray(observations, dtype=np.float64))[0]


@dataclass
class PolicyComparison:
    """Two policies on the same observations: how far their logits and actions differ."""

    max_logit_error: float
    """max |logits_duetrl - logits_rllib| over the batch."""
    same_action_fraction: float
    """Fraction of observations on which both argmax actions agree (1.0 = all)."""
    duetrl_logits: np.ndarray = field(repr=False)
    rllib_logits: np.ndarray = field(repr=False)


def compare_policies(duetrl_logits: Callable[[np.ndarray], Any], module: Any,
                     observations: np.ndarray) -> PolicyComparison:
    """Run a duetrl policy and an RLlib module on the same observations (B, S) and compare.

    :param duetrl_logits: observations -> logits; :func:`reference_logits`, or a backend's
        own network (``lambda s: agent.policy(agent.as_tensor(s))``).
    :param module: the RLlib module, after
        :func:`~duetrl.core.scale.rllib_weights.load_canonical_into_rllib`.
    """
    from duetrl.core.tolerances import to_numpy

    ours = np.asarray(to_numpy(duetrl_logits(observations)), dtype=np.float64)
    theirs = rllib_logits(module, observations).astype(np.float64)
    if ours.shape != theirs.shape:
        raise ValueError(f"logits: duetrl gives shape {ours.shape}, RLlib {theirs.shape}")
    same = np.argmax(ours, axis=1) == np.argmax(theirs, axis=1)
    return PolicyComparison(float(np.max(np.abs(ours - theirs))), float(np.mean(same)),
                            ours, theirs)


# ---- one evaluation for both ----------------------------------------------------------------
def greedy_policy(logits: Callable[[np.ndarray], Any], action_space: Any
                  ) -> Callable[[np.ndarray], Any]:
    """observation -> action: argmax of the logits (Discrete), or the mean clipped to the box."""
    import gymnasium as gym

    from duetrl.core.tolerances import to_numpy

    def act(observation: np.ndarray) -> Any:
        out = np.asarray(to_numpy(logits(np.asarray(observation, np.float32)[None])))[0]
        if isinstance(action_space, gym.spaces.Discrete):
            return int(np.argmax(out))
        return np.clip(out, action_space.low, action_space.high).astype(action_space.dtype)

    return act


@dataclass
class Evaluation:
    """Returns of N greedy episodes on seeds ``seed, seed + 1, ...``."""

    returns: list[float]

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns))


def evaluate(logits: Callable[[np.ndarray], Any], env_id: str, episodes: int = 10,
             seed: int = 10_000) -> Evaluation:
    """The one evaluation both libraries get: ``episodes`` greedy episodes, fixed seeds.

    Episode i is reset with seed ``seed + i`` and runs until it terminates or the
    environment's time limit truncates it; the action is the argmax of the logits (the
    Gaussian's mean for continuous actions), so the result is deterministic given the weights.
    The default seed is far from the training seeds, so evaluation starts are unseen.

    :param logits: observations (B, S) -> logits (B, A); :func:`reference_logits` for duetrl,
        ``lambda s: rllib_logits(module, s)`` for RLlib.
    """
    import gymnasium as gym

    from duetrl.core.envs.vector import check_env_id

    if episodes < 1:
        raise ValueError(f"episodes: expected a positive number, got {episodes}")
    check_env_id(env_id)
    env = gym.make(env_id)
    act = greedy_policy(logits, env.action_space)
    returns = []
    try:
        for i in range(episodes):
            observation, _ = env.reset(seed=seed + i)
            total, done = 0.0, False
            while not done:
                observation, reward, terminated, truncated, _ = env.step(act(observation))
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
    finally:
        env.close()
    return Evaluation(returns)


# ---- training RLlib's PPO -------------------------------------------------------------------
@contextlib.contextmanager
def ray_session(num_cpus: int = 1) -> Iterator[None]:
    """A local Ray for the block (no dashboard, workers' logs kept off the driver).

    Reuses a Ray that is already running and then leaves it running.
    """
    import ray

    started = not ray.is_initialized()
    if started:
        # address="local": a new Ray of this process's own, never a cluster that happens to run
        # on this machine (ray.init would join it, and refuse num_cpus)
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False,
                 log_to_driver=False)
    try:
        yield
    finally:
        if started:
            ray.shutdown()


def learning_curve(episode_log: Iterable[tuple[int, float]], window: int = 100
                   ) -> tuple[list[int], list[float]]:
    """``(env steps, mean return of the last ``window`` episodes)`` after each finished episode.

    The statistic of duetrl's "solved" test, computed the same way for both libraries from
    ``(env steps when the episode finished, its return)`` pairs.
    """
    if window < 1:
        raise ValueError(f"window: expected a positive number, got {window}")
    steps, means, recent = [], [], deque(maxlen=window)  # the last `window` returns
    for step, episode_return in episode_log:
        recent.append(float(episode_return))
        steps.append(int(step))
        means.append(float(np.mean(recent)))
    return steps, means


@dataclass
class RLlibRun:
    """What :func:`train_rllib_ppo` returns: the algorithm and what its training saw."""

    algo: Any
    env_steps: list[int]
    """Environment steps sampled after each training iteration."""
    episode_log: list[tuple[int, float]]
    """(env steps at the end of the iteration it finished in, return) per finished episode:
    the same record as duetrl's ``PolicyGradientTrainer.episode_log``."""
    seconds: float

    @property
    def module(self) -> Any:
        """The module that acts (RLlib's local env runner's copy)."""
        return self.algo.get_module()


def train_rllib_ppo(env_id: str, settings: PPOSettings | None = None, total_steps: int = 10_000,
                    seed: int = 0, initial_params: Mapping[str, np.ndarray] | None = None,
                    max_iterations: int | None = None) -> RLlibRun:
    """Train RLlib's PPO on ``env_id`` until ``total_steps`` environment steps are sampled.

    Needs a running Ray (:func:`ray_session`). Samples in the driver (``num_env_runners=0``),
    which is also where an ``on_episode_end`` callback records each finished episode's return.
    (RLlib's own ``episode_return_mean`` averages only the episodes of one iteration.)

    :param initial_params: canonical parameters to start from (duetrl's initial weights make
        the two libraries start from the same policy and value networks).
    :param max_iterations: stop after this many iterations even if the budget is not spent.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps: expected a positive number, got {total_steps}")
    register_rllib_envs([env_id])
    finished: list[float] = []  # returns of the episodes finished during this iteration

    def record_episode(*, episode: Any, prev_episode_chunks: list, **_: Any) -> None:
        # RLlib hands an episode over in chunks, one per iteration it spans: add them all
        chunks = [*prev_episode_chunks, episode]
        finished.append(float(sum(chunk.get_return() for chunk in chunks)))

    start = time.perf_counter()
    config = ppo_config(env_id, settings, seed, total_steps, num_env_runners=0)
    algo = config.callbacks(on_episode_end=record_episode).build_algo()
    if initial_params is not None:
        set_rllib_weights(algo, initial_params)
    env_steps, episode_log = [], []
    while not env_steps or env_steps[-1] < total_steps:
        result = algo.train()
        env_steps.append(int(result["num_env_steps_sampled_lifetime"]))
        episode_log.extend((env_steps[-1], episode_return) for episode_return in finished)
        finished.clear()
        if max_iterations is not None and len(env_steps) >= max_iterations:
            break
    return RLlibRun(algo, env_steps, episode_log, time.perf_counter() - start)
