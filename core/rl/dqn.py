"""DQN's trainer, written once for both backends: act eps-greedily, store, replay, update, sync.

    every update (one call of DQNTrainer.step):
        train_freq vector steps with a ~ eps-greedy(Q(s, .)), eps from linear_epsilon
        -> the replay buffer (core/rl/replay.py; n-step returns, terminations kept apart)
        gradient_steps times: batch <- buffer.sample; agent.update(batch)  (the backend)
        every target_update_interval gradient steps: theta_target <- theta
        (the gradient steps between two syncs go to the backend in one call: update_many)

The backend's ``DQNAgent`` (backends/<name>/dqn.py) holds the networks, the loss and the Adam
step; everything random (initial weights, exploration coins, replay samples) is drawn here
with NumPy, so a PyTorch and a TensorFlow trainer from one seed act and update alike.
"Solved" for DQN is the greedy policy's mean return over ``eval_episodes`` episodes reaching
the target (CartPole-v1: 475), checked every ``eval_interval`` env steps.
A checkpoint holds both networks, Adam and the counters, not the replay buffer: a resumed
run refills it (``learning_starts`` transitions) before updating again. The settings are in
core/rl/dqn_settings.py; the run (log, checkpoints, Ctrl-C) is the one loop of core/run.
"""

from __future__ import annotations

import importlib
import math
import time

import numpy as np

from duetrl.core.backend import load_backend
from duetrl.core.envs.vector import check_env_id, make_vector_env
from duetrl.core.initializers import cast_params
from duetrl.core.reference.dqn import init_q_params
from duetrl.core.rl.base import RLTrainer
from duetrl.core.rl.dqn_settings import DQNSettings, make_dqn_settings
from duetrl.core.rl.replay import ReplayBuffer
from duetrl.core.tabular import check_epsilon

DQN_KIND = "duetrl.dqn"
"""The ``kind`` of a DQN checkpoint (duetrl.core.checkpoint)."""

__all__ = ["DQN_KIND", "DQNSettings", "DQNTrainer", "check_dqn_env", "epsilon_greedy",
           "linear_epsilon", "make_dqn_settings"]  # the settings live in dqn_settings.py


def linear_epsilon(step: int, start: float, final: float, decay_steps: int) -> float:
    """eps_t = start + (final - start) min(1, t / decay_steps): linear, then constant."""
    check_epsilon(start, "epsilon_start")
    check_epsilon(final, "epsilon_final")
    if decay_steps <= 0:
        return final
    return start + (final - start) * min(1.0, step / decay_steps)


def epsilon_greedy(q_values: np.ndarray, epsilon: float, rng: np.random.Generator) -> np.ndarray:
    """argmax_a Q(s, a) per row, replaced by a uniform action with probability eps; (N, A) -> (N,).

    The coins and random actions are drawn for every row whatever eps is, so the random
    stream (and two backends stepped in lockstep) stay aligned.
    """
    coins = rng.random(q_values.shape[0])
    random_actions = rng.integers(0, q_values.shape[1], size=q_values.shape[0])
    return np.where(coins < epsilon, random_actions, np.argmax(q_values, axis=1))


def check_dqn_env(envs) -> tuple[int, int, bool]:
    """``(state_dim, action_dim, one_hot)``; a ValueError names a space DQN cannot handle."""
    import gymnasium as gym

    obs_space, action_space = envs.single_observation_space, envs.single_action_space
    if not isinstance(action_space, gym.spaces.Discrete):
        raise ValueError(
            f"env: DQN needs a discrete action space (one Q-value per action), got "
            f"{action_space}; for continuous actions use PPO (duetrl train ppo)")
    if isinstance(obs_space, gym.spaces.Discrete):  # FrozenLake, Taxi: one-hot states
        return int(obs_space.n), int(action_space.n), True
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        raise ValueError(f"env: DQN here needs flat Box or Discrete observations, got {obs_space}")
    return int(obs_space.shape[0]), int(action_space.n), False


class DQNTrainer(RLTrainer):
    """One DQN agent, its environments, replay buffer and counters; :meth:`step` = one update.

    :param env_id: a Gymnasium id with a discrete action space.
    :param backend: ``"torch"`` or ``"tf"``.
    :param settings: :class:`DQNSettings`.
    :param seed: seeds the initial weights, the environments, exploration and replay samples.
    :param total_steps: the env-step budget (the eps schedule decays over a share of it).
    :param dtype: ``"float32"`` (training) or ``"float64"`` (lockstep tests).
    :param threads: CPU threads for the framework.
    :param env_kwargs: passed to ``gym.make`` (e.g. ``{"is_slippery": False}``).
    :param target: :meth:`step` evaluates the greedy policy every ``eval_interval`` env steps
        and the trainer is :meth:`finished` once it reaches this mean return (None: never).
    """

    kind, algorithm, extra_counters = DQN_KIND, "dqn", ("gradient_steps",)

    def __init__(self, env_id: str, backend: str, settings: DQNSettings, seed: int = 0,
                 total_steps: int = 50_000, dtype: str = "float32", threads: int = 1,
                 env_kwargs: dict | None = None, target: float | None = None) -> None:
        settings.validate()
        self.env_id, self.settings, self.seed = env_id, settings, seed
        self.total_steps, self.dtype, self.target = total_steps, dtype, target
        self.env_kwargs = dict(env_kwargs or {})
        self.envs = self._make_envs(settings.num_envs, seed)
        self.state_dim, self.action_dim, self.one_hot = check_dqn_env(self.envs)
        spec = check_env_id(env_id)
        self.max_episode_steps = spec.max_episode_steps
        self.backend = load_backend(backend)
        if threads:
            self.backend.set_num_threads(threads)
        dqn = importlib.import_module(f"duetrl.backends.{self.backend.NAME}.dqn")
        self.agent = dqn.DQNAgent(self.state_dim, self.action_dim, settings.hidden_dim,
                                  settings.double, settings.max_grad_norm or None, dtype)
        initial = init_q_params(self.state_dim, settings.hidden_dim, self.action_dim, seed)
        self.backend.import_params(self.agent, cast_params(initial, dtype))
        self.buffer = ReplayBuffer(settings.buffer_size, settings.num_envs, (self.state_dim,),
                                   settings.n_step, settings.gamma, settings.batch_size)
        self._seed_streams(0)
        self.observations = self.encode(self.envs.reset(seed=seed)[0])
        self.pending_reset = np.zeros(settings.num_envs, bool)
        self.episode_return = np.zeros(settings.num_envs)
        self.start_counters()
        self.gradient_steps = 0
        self.greedy_return = float("nan")
        self.next_eval = settings.eval_interval
        self.is_solved = False
        self.learn_from = settings.learning_starts  # env steps before the first update

    def _make_envs(self, num_envs: int, seed: int):
        import gymnasium as gym

        if not self.env_kwargs:
            return make_vector_env(self.env_id, num_envs, seed)
        check_env_id(self.env_id)
        envs = gym.make_vec(self.env_id, num_envs=num_envs, vectorization_mode="sync",
                            **self.env_kwargs)
        envs.action_space.seed(seed)
        return envs

    def _seed_streams(self, stream: int) -> None:
        self.explore_rng = np.random.default_rng([self.seed, stream, 11])
        self.replay_rng = np.random.default_rng([self.seed, stream, 12])

    def encode(self, observations: np.ndarray) -> np.ndarray:
        """Observations as float rows: one-hot for Discrete spaces, else as they are."""
        if self.one_hot:
            return np.eye(self.state_dim)[np.asarray(observations, np.int64)]
        return np.asarray(observations, np.float64)

    def epsilon(self) -> float:
        s = self.settings
        return linear_epsilon(self.env_steps, s.epsilon_start, s.epsilon_final,
                              int(s.exploration_fraction * self.total_steps))

    # ---- one update ------------------------------------------------------------------
    def collect(self) -> float:
        """``train_freq`` vector steps with eps-greedy actions into the buffer; returns eps."""
        epsilon = self.epsilon()
        for _ in range(self.settings.train_freq):
            epsilon = self.epsilon()
            actions = epsilon_greedy(self.agent.q_values(self.observations), epsilon,
                                     self.explore_rng)
            next_obs, rewards, terminations, truncations, _ = self.envs.step(actions)
            next_obs = self.encode(next_obs)
            valid = ~self.pending_reset  # NEXT_STEP autoreset: this step only reset the env
            self.buffer.add(self.observations, actions, rewards, next_obs, terminations,
                            truncations, valid)
            self.episode_return += np.where(valid, rewards, 0.0)
            done = (terminations | truncations) & valid
            for index in np.flatnonzero(done):
                self.episode_log.append((self.env_steps + int(valid.sum()),
                                         float(self.episode_return[index])))
                self.recent_returns.append(float(self.episode_return[index]))
                self.episode_return[index] = 0.0
                self.episodes += 1
            self.env_steps += int(valid.sum())
            self.pending_reset = done
            self.observations = next_obs
        return epsilon

    def step(self) -> dict:
        """Collect, then (past ``learning_starts``) ``gradient_steps`` updates; a log record.

        :raises FloatingPointError: when the loss is not finite.
        """
        start = time.perf_counter()
        epsilon = self.collect()
        collected = time.perf_counter()
        metrics = {"loss": float("nan"), "q_mean": float("nan"), "td_error": float("nan")}
        s = self.settings
        if self.env_steps >= max(self.learn_from, s.batch_size):
            remaining = s.gradient_steps
            while remaining:  # in chunks that end at each target sync: one backend call each
                chunk = min(remaining, s.target_update_interval
                            - self.gradient_steps % s.target_update_interval)
                metrics = self.agent.update_many(
                    self.buffer.sample_many(chunk, s.batch_size, self.replay_rng),
                    s.learning_rate)
                self.gradient_steps += chunk
                remaining -= chunk
                if self.gradient_steps % s.target_update_interval == 0:
                    self.agent.sync_target()  # theta_target <- theta
            if not all(math.isfinite(v) for v in metrics.values()):
                raise FloatingPointError(f"loss: became {metrics['loss']} at update "
                                         f"{self.updates + 1} (env step {self.env_steps})")
        done = time.perf_counter()
        self.updates += 1
        self.last_loss = metrics["loss"]
        if self.target is not None:  # every eval_interval env steps: the greedy policy's return
            self.is_solved = self.solved(self.target)
        return {"update": self.updates, "env_steps": self.env_steps, "episodes": self.episodes,
                "mean_return": self.mean_return(), "epsilon": epsilon, **metrics,
                "greedy_return": self.greedy_return, "collect_ms": 1000 * (collected - start),
                "update_ms": 1000 * (done - collected)}

    def evaluate_greedy(self, episodes: int | None = None, seed: int | None = None) -> float:
        """Mean return of the greedy policy over ``episodes`` (all run at once, one per env)."""
        episodes = episodes or self.settings.eval_episodes
        envs = self._make_envs(episodes, self.seed + 10_000 if seed is None else seed)
        observations = self.encode(envs.reset(seed=self.seed + 10_000 if seed is None
                                              else seed)[0])
        returns, running = np.zeros(episodes), np.ones(episodes, bool)
        while running.any():
            actions = np.argmax(self.agent.q_values(observations), axis=1)
            observations, rewards, terminations, truncations, _ = envs.step(actions)
            observations = self.encode(observations)
            returns += np.where(running, rewards, 0.0)
            running &= ~(terminations | truncations)
        envs.close()
        return float(returns.mean())

    def solved(self, target: float | None) -> bool:
        """The greedy policy's mean return reaches ``target``; evaluated each time the env
        steps pass a multiple of ``eval_interval`` (training returns, taken with exploration
        on, say little: the greedy policy is often perfect long before they are)."""
        if target is None or self.env_steps < self.next_eval:
            return False
        self.next_eval = (self.env_steps // self.settings.eval_interval + 1) * \
            self.settings.eval_interval
        self.greedy_return = self.evaluate_greedy()
        return self.greedy_return >= target

    def reached_target(self) -> bool:
        return self.is_solved

    def evaluate(self) -> dict:
        """The run's final figures (:meth:`evaluate_greedy` is the greedy policy's return)."""
        return {**super().evaluate(), "greedy_return": self.greedy_return,
                "gradient_steps": self.gradient_steps}

    @property
    def title(self) -> str:
        return "DQN"

    # ---- checkpoints: the shared half is in core/rl/base.py ----------------------------
    def params(self) -> dict:
        """Both networks' canonical parameters (``q.*``, ``q_target.*``), NumPy copies."""
        return self.backend.export_params(self.agent)

    def restart_streams(self) -> None:
        self._seed_streams(self.updates)
        # the buffer starts empty: refill learning_starts transitions before updating again
        self.learn_from = self.env_steps + self.settings.learning_starts
        self.observations = self.encode(self.envs.reset(seed=self.seed + 7919 * self.updates)[0])
        self.pending_reset[:] = False
        self.episode_return[:] = 0.0
