"""The policy-gradient trainer, written once for both backends: collect, update, count.

    for each update (one call of step()):
        rollout  <- collect with the vector environments (core/rl/rollout.py)
        metrics  <- agent.update(rollout)          (the backend: returns, loss, Adam step)
        the log row: counters, metrics, learning rate, timings

A :class:`PolicyGradientTrainer` (REINFORCE, REINFORCE with baseline, PPO on Gymnasium
environments) does one update per :meth:`PolicyGradientTrainer.step`. It is a
:class:`duetrl.core.run.Trainer`: ``duetrl train`` hands it to the one run loop
(``duetrl.core.run.run``: log, checkpoints, resume, Ctrl-C) and ``duetrl compare`` steps a
PyTorch and a TensorFlow trainer in alternation, from the same weights and noise. Counters,
checkpoints, the summary and the curve are shared with DQN (core/rl/base.py).
"""

from __future__ import annotations

import math
import time

from duetrl.core.backend import load_backend
from duetrl.core.envs.vector import describe_env, make_vector_env
from duetrl.core.initializers import cast_params
from duetrl.core.interfaces.rl_settings import ReinforceSettings
from duetrl.core.reference.policy import init_agent_params
from duetrl.core.rl.base import SOLVED_WINDOW, RLTrainer
from duetrl.core.rl.host_policy import HostActor
from duetrl.core.rl.rollout import NoiseSource, collect_episodes, collect_steps, start

RL_KIND = "duetrl.rl"
"""The ``kind`` of an RL agent's checkpoint (duetrl.core.checkpoint)."""

__all__ = ["RL_KIND", "SOLVED_WINDOW", "PolicyGradientTrainer"]


class PolicyGradientTrainer(RLTrainer):
    """One agent, its environments and its counters; :meth:`step` runs one update.

    :param algorithm: ``"reinforce"``, ``"reinforce_baseline"`` or ``"ppo"``.
    :param env_id: a Gymnasium id (``CartPole-v1``, ``duetrl/Identity-v0``, ...).
    :param backend: ``"torch"`` or ``"tf"``.
    :param settings: the algorithm's settings (duetrl.core.interfaces.rl_settings.make_settings).
    :param seed: seeds the initial weights, the environments and the sampling noise.
    :param total_steps: the environment-step budget (learning-rate annealing runs over it).
    :param dtype: ``"float32"`` (training) or ``"float64"`` (lockstep tests).
    :param threads: CPU threads for the framework (1 is fastest for these small networks).
    :param target: :meth:`finished` once the mean return of the last 100 episodes reaches it
        (None: run the whole budget).
    """

    kind = RL_KIND

    def __init__(self, algorithm: str, env_id: str, backend: str, settings: ReinforceSettings,
                 seed: int = 0, total_steps: int = 100_000, dtype: str = "float32",
                 threads: int = 1, target: float | None = None) -> None:
        settings.validate()
        if algorithm == "ppo" and (settings.num_envs * settings.num_steps) % \
                settings.num_minibatches:
            raise ValueError(f"num_minibatches: expected a divisor of num_envs * num_steps = "
                             f"{settings.num_envs * settings.num_steps}, "
                             f"got {settings.num_minibatches}")
        self.algorithm, self.env_id, self.settings = algorithm, env_id, settings
        self.seed, self.total_steps, self.dtype, self.target = seed, total_steps, dtype, target
        self.envs = make_vector_env(env_id, settings.num_envs, seed)
        self.info = describe_env(self.envs, env_id, algorithm)
        self.backend = load_backend(backend)
        if threads:  # 0 = leave the framework to decide
            self.backend.set_num_threads(threads)
        self.agent = self.backend.Agent(algorithm, self.info.state_dim, self.info.action_dim,
                                        self.info.continuous, settings, dtype)
        initial = init_agent_params(algorithm, self.info.state_dim, settings.hidden_dim,
                                    self.info.action_dim, self.info.continuous, seed)
        self.backend.import_params(self.agent, cast_params(initial, dtype))
        self.noise = NoiseSource(seed)
        self.env_state = None if algorithm != "ppo" else start(self.envs, seed)
        self.next_reset_seed: int | None = seed
        self.start_counters()

    # ---- one update -------------------------------------------------------------------
    def learning_rate(self) -> float:
        """The step size now: constant, or decayed linearly to 0 over ``total_steps``."""
        lr = self.settings.learning_rate
        if self.settings.anneal_lr:
            lr *= max(1.0 - self.env_steps / self.total_steps, 0.0)
        return lr

    def actor(self) -> HostActor:
        """What acts in a rollout: the policy's weights as they are now, sampled on the host
        (one framework call per environment step costs more than these networks' arithmetic;
        ``core/rl/host_policy.py``). Taken afresh for every rollout, so never stale."""
        return HostActor(self.backend.export_params(self.agent.policy), self.dtype)

    def collect(self) -> dict:
        """One rollout, and the episodes it finished added to the counters."""
        s = self.settings
        actor = self.actor()
        if self.algorithm == "ppo":
            rollout, steps = collect_steps(self.envs, actor, self.noise, self.info,
                                           self.env_state, s.num_steps)
            finished, self.env_state.finished = self.env_state.finished, []
            batch = s.num_envs * s.num_steps
            rollout["permutations"] = self.noise.permutations(s.update_epochs, batch,
                                                              s.num_minibatches)
        else:
            max_steps = min(s.max_episode_steps, self.info.max_episode_steps or math.inf)
            rollout, steps, finished = collect_episodes(
                self.envs, actor, self.noise, self.info, int(max_steps),
                seed=self.next_reset_seed)
            self.next_reset_seed = None  # later resets continue the environments' RNG
        rollout["learning_rate"] = self.learning_rate()
        for episode_return, _ in finished:
            self.episode_log.append((self.env_steps + steps, episode_return))
            self.recent_returns.append(episode_return)
        self.env_steps += steps
        self.episodes += len(finished)
        return rollout

    def step(self) -> dict:
        """Collect one rollout and update once; returns the update's log row.

        :raises FloatingPointError: when the loss is not finite (nothing is saved).
        """
        start_time = time.perf_counter()
        rollout = self.collect()
        collected = time.perf_counter()
        metrics = self.agent.update(rollout)
        done = time.perf_counter()
        self.updates += 1
        self.last_loss = metrics["loss"]
        if not all(math.isfinite(v) for v in metrics.values()):
            raise FloatingPointError(
                f"loss: became {metrics['loss']} at update {self.updates} "
                f"(env step {self.env_steps})")
        return {"update": self.updates, "env_steps": self.env_steps, "episodes": self.episodes,
                "mean_return": self.mean_return(), **metrics,
                "learning_rate": rollout["learning_rate"],
                "collect_ms": 1000 * (collected - start_time),
                "update_ms": 1000 * (done - collected)}

    def solved(self, target: float | None) -> bool:
        """True once 100 episodes are in and their mean return reaches ``target``."""
        return (target is not None and len(self.recent_returns) == SOLVED_WINDOW
                and self.mean_return() >= target)

    def reached_target(self) -> bool:
        return self.solved(self.target)

    def restart_streams(self) -> None:
        self.noise = NoiseSource(self.seed, stream=self.updates)
        self.envs.action_space.seed(self.seed + self.updates)
        self.next_reset_seed = self.seed + 7919 * self.updates
        if self.env_state is not None:
            self.env_state = start(self.envs, self.next_reset_seed)
