"""DQN's loop, written once for both backends: act eps-greedily, store, replay, update, sync.

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
run refills it (``learning_starts`` transitions) before updating again.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib
import json
import math
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from duetrl.core.backend import load_backend
from duetrl.core.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from duetrl.core.envs.vector import check_env_id, make_vector_env
from duetrl.core.initializers import cast_params
from duetrl.core.interfaces.rl import check_discount, check_positive_int
from duetrl.core.reference.dqn import init_q_params
from duetrl.core.rl.replay import ReplayBuffer
from duetrl.core.tabular import check_epsilon
from duetrl.core.tensorboard import ScalarWriter
from duetrl.core.weights import describe

DQN_KIND = "duetrl.dqn"
"""The ``kind`` of a DQN checkpoint (duetrl.core.checkpoint)."""

LOG_FIELDS = ("update", "env_steps", "episodes", "mean_return", "epsilon", "loss", "q_mean",
              "td_error", "greedy_return", "collect_ms", "update_ms")


def _help(default, text: str):
    return dataclasses.field(default=default, metadata={"help": text})


@dataclass
class DQNSettings:
    """DQN (Mnih et al. 2015) with Double DQN and n-step returns as options.

    Defaults follow rl-baselines3-zoo's CartPole-v1 DQN (lr 2.3e-3, batch 64, 256 env steps
    then 128 gradient steps, eps 1 -> 0.04 over 16% of the budget), on 4 vector envs, with two
    changes measured on CartPole-v1: 3-step returns and a target sync every 64 gradient steps
    (twice per training phase; the zoo's effectively syncs once per phase). Both carry reward
    back faster: with 1-step returns and one sync per phase Q grows by about one reward per
    phase, and the greedy policy hovered at 80-250 for 30k+ steps on most seeds (SB3 with the
    zoo settings: 7k-27k steps on seeds 0-4; these defaults: 8k-22k, benchmarks/dqn.py).
    n-step returns of an exploring policy are biased toward its own values: for an off-policy
    oracle (Q* under a uniform behaviour) set ``n_step=1``.
    """

    num_envs: int = _help(4, "vector environments stepped together")
    hidden_dim: int = _help(128, "width of the Q-network's two hidden layers")
    learning_rate: float = _help(2.3e-3, "Adam step size")
    gamma: float = _help(0.99, "discount factor in [0, 1]")
    batch_size: int = _help(64, "transitions per gradient step")
    buffer_size: int = _help(25_000, "vector steps the replay buffer keeps (x num_envs)")
    learning_starts: int = _help(1_000, "env steps collected before the first update")
    train_freq: int = _help(64, "vector steps collected between training phases")
    gradient_steps: int = _help(128, "gradient steps per training phase")
    target_update_interval: int = _help(64, "gradient steps between target syncs")
    epsilon_start: float = _help(1.0, "exploration rate at the start, in [0, 1]")
    epsilon_final: float = _help(0.04, "exploration rate after the decay, in [0, 1]")
    exploration_fraction: float = _help(0.16, "share of --total-steps over which eps decays")
    double: bool = _help(False, "Double DQN: the online network picks a*, the target rates it")
    n_step: int = _help(3, "steps summed into each return before bootstrapping")
    max_grad_norm: float = _help(10.0, "clip the global gradient norm to this (0 = off)")
    eval_episodes: int = _help(20, "greedy episodes that decide 'solved'")
    eval_interval: int = _help(1024, "env steps between greedy evaluations")

    def validate(self) -> None:
        """Raise ValueError naming the first setting out of range."""
        check_discount("gamma", self.gamma)
        check_epsilon(self.epsilon_start, "epsilon_start")
        check_epsilon(self.epsilon_final, "epsilon_final")
        check_discount("exploration_fraction", self.exploration_fraction)
        for name in ("num_envs", "hidden_dim", "batch_size", "buffer_size", "train_freq",
                     "gradient_steps", "target_update_interval", "n_step", "eval_episodes",
                     "eval_interval"):
            check_positive_int(name, getattr(self, name))
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate: expected a positive number, got {self.learning_rate}")
        if self.buffer_size * self.num_envs < self.batch_size:
            raise ValueError(
                f"buffer_size: {self.buffer_size} steps x {self.num_envs} envs = "
                f"{self.buffer_size * self.num_envs} transitions is smaller than a batch of "
                f"{self.batch_size}; raise --buffer-size or lower --batch-size")


def make_dqn_settings(**overrides) -> DQNSettings:
    """The default settings with ``overrides`` applied, validated."""
    known = {f.name for f in dataclasses.fields(DQNSettings)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"settings: dqn has no setting {unknown}; known: {sorted(known)}")
    settings = DQNSettings(**overrides)
    settings.validate()
    return settings


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


class DQNTrainer:
    """One DQN agent, its environments, replay buffer and counters; :meth:`step` = one update.

    :param env_id: a Gymnasium id with a discrete action space.
    :param backend: ``"torch"`` or ``"tf"``.
    :param settings: :class:`DQNSettings`.
    :param seed: seeds the initial weights, the environments, exploration and replay samples.
    :param total_steps: the env-step budget (the eps schedule decays over a share of it).
    :param dtype: ``"float32"`` (training) or ``"float64"`` (lockstep tests).
    :param threads: CPU threads for the framework.
    :param env_kwargs: passed to ``gym.make`` (e.g. ``{"is_slippery": False}``).
    """

    def __init__(self, env_id: str, backend: str, settings: DQNSettings, seed: int = 0,
                 total_steps: int = 50_000, dtype: str = "float32", threads: int = 1,
                 env_kwargs: dict | None = None) -> None:
        settings.validate()
        self.env_id, self.settings, self.seed = env_id, settings, seed
        self.total_steps, self.dtype = total_steps, dtype
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
        self.updates = self.env_steps = self.episodes = self.gradient_steps = 0
        self.recent_returns: deque = deque(maxlen=100)
        self.episode_log: list[tuple[int, float]] = []
        self.greedy_return = float("nan")
        self.next_eval = settings.eval_interval

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
        if self.env_steps >= max(s.learning_starts, s.batch_size):
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
        return {"update": self.updates, "env_steps": self.env_steps, "episodes": self.episodes,
                "mean_return": self.mean_return(), "epsilon": epsilon, **metrics,
                "greedy_return": self.greedy_return, "collect_ms": 1000 * (collected - start),
                "update_ms": 1000 * (done - collected)}

    def mean_return(self) -> float:
        """Mean return of the last 100 training episodes (NaN before the first)."""
        return float(np.mean(self.recent_returns)) if self.recent_returns else float("nan")

    def evaluate(self, episodes: int | None = None, seed: int | None = None) -> float:
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
        self.greedy_return = self.evaluate()
        return self.greedy_return >= target

    # ---- parameters and checkpoints --------------------------------------------------
    def params(self) -> dict:
        """Both networks' canonical parameters (``q.*``, ``q_target.*``), NumPy copies."""
        return self.backend.export_params(self.agent)

    def save(self, path: str | Path) -> Path:
        """Checkpoint networks, Adam, settings and counters (atomic; not the buffer)."""
        metadata = {
            "algorithm": "dqn", "env_id": self.env_id, "backend": self.backend.NAME,
            "dtype": self.dtype, "seed": self.seed, "total_steps": self.total_steps,
            "settings": dataclasses.asdict(self.settings), "updates": self.updates,
            "env_steps": self.env_steps, "episodes": self.episodes,
            "gradient_steps": self.gradient_steps, "recent_returns": list(self.recent_returns),
            "episode_log": self.episode_log[-5000:],
        }
        tensors = {"params": self.params(), "optim": self.agent.optimizer.state_arrays()}
        return save_checkpoint(path, Checkpoint(DQN_KIND, tensors, metadata))

    def load(self, path: str | Path) -> dict:
        """Continue from a checkpoint of the same environment and network shape."""
        saved = load_checkpoint(path, DQN_KIND, {"algorithm": "dqn", "env_id": self.env_id},
                                {"params": describe(self.params())})
        meta = saved.metadata
        self.backend.import_params(self.agent, saved.tensors["params"])
        self.agent.optimizer.load_state_arrays(saved.tensors.get("optim", {}))
        self.updates, self.env_steps = meta["updates"], meta["env_steps"]
        self.episodes, self.gradient_steps = meta["episodes"], meta["gradient_steps"]
        self.recent_returns.extend(meta["recent_returns"])
        self.episode_log = [tuple(x) for x in meta["episode_log"]]
        self._seed_streams(self.updates)
        # the buffer starts empty: refill learning_starts transitions before updating again
        self.settings = dataclasses.replace(
            self.settings, learning_starts=self.env_steps + self.settings.learning_starts)
        self.observations = self.encode(self.envs.reset(seed=self.seed + 7919 * self.updates)[0])
        self.pending_reset[:] = False
        self.episode_return[:] = 0.0
        return meta

    def close(self) -> None:
        self.envs.close()


def default_run_dir(env_id: str, backend: str, seed: int) -> Path:
    return Path("runs") / f"dqn-{env_id.replace('/', '_')}-{backend}-s{seed}"


def train_dqn(env_id: str, backend: str, settings: DQNSettings, seed: int = 0,
              total_steps: int = 50_000, target: float | None = None, out: str | None = None,
              resume: bool = False, quiet: bool = False, checkpoint_every: int = 20,
              dtype: str = "float32", threads: int = 1, tensorboard: bool = False) -> dict:
    """Train until the greedy policy reaches ``target`` or ``total_steps`` are spent.

    Writes ``log.csv``, ``checkpoint.safetensors``, ``curve.png`` and ``summary.json`` to the
    run folder, as ``duetrl train ppo`` does (and, with ``tensorboard``, the log rows as
    TensorBoard scalars); returns the summary.
    """
    from duetrl.core.rl.session import _progress, _StopFlag, plot_learning_curves

    target = check_env_id(env_id).reward_threshold if target is None else target
    run_dir = Path(out) if out else default_run_dir(env_id, backend, seed)
    checkpoint = run_dir / "checkpoint.safetensors"
    trainer = DQNTrainer(env_id, backend, settings, seed, total_steps, dtype, threads)
    if resume:
        if not checkpoint.is_file():
            raise FileNotFoundError(f"resume: no checkpoint at {str(checkpoint)!r}")
        trainer.load(checkpoint)
    run_dir.mkdir(parents=True, exist_ok=True)
    log_path = run_dir / "log.csv"
    interrupted = solved = False
    start = time.perf_counter()
    with open(log_path, "a" if resume else "w", newline="") as log_file, \
            _progress(total_steps, quiet, f"dqn {backend}") as bar, _StopFlag() as stop, \
            ScalarWriter(run_dir, "env_steps", tensorboard,
                         trainer.env_steps + 1 if resume else None) as scalars:
        writer = csv.DictWriter(log_file, LOG_FIELDS, extrasaction="ignore")
        if not resume:
            writer.writeheader()
        bar.update(trainer.env_steps)
        while trainer.env_steps < total_steps:
            try:
                record = trainer.step()
            except FloatingPointError as error:
                raise ValueError(f"{error}; training stopped, the last checkpoint "
                                 f"{str(checkpoint)!r} is kept") from None
            solved = trainer.solved(target)
            record["greedy_return"] = trainer.greedy_return
            writer.writerow(record)
            scalars.write({key: record[key] for key in LOG_FIELDS if key in record})
            bar.update(record["env_steps"] - bar.n)
            bar.set_postfix(episodes=trainer.episodes, mean_return=f"{trainer.mean_return():.1f}",
                            eps=f"{record['epsilon']:.2f}")
            if trainer.updates % checkpoint_every == 0:
                trainer.save(checkpoint)
            if solved or stop.requested:
                interrupted = stop.requested and not solved
                break
    wall_s = time.perf_counter() - start
    trainer.save(checkpoint)
    plot = plot_learning_curves({backend: trainer}, run_dir / "curve.png",
                                f"DQN on {env_id} ({backend})", target)
    summary = {
        "algorithm": "dqn", "env": env_id, "backend": backend, "seed": seed, "solved": solved,
        "target": target, "greedy_return": trainer.greedy_return,
        "env_steps": trainer.env_steps, "episodes": trainer.episodes,
        "updates": trainer.updates, "gradient_steps": trainer.gradient_steps,
        "wall_s": round(wall_s, 3), "final_mean_return": trainer.mean_return(),
        "interrupted": interrupted, "checkpoint": str(checkpoint), "log": str(log_path),
        "plot": str(plot),
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    trainer.close()
    return summary


def compare_dqn(env_id: str, settings: DQNSettings, seed: int = 0, total_steps: int = 50_000,
                target: float | None = None, out: str = "runs", quiet: bool = False,
                dtype: str = "float32") -> dict:
    """PyTorch and TensorFlow DQN from the same weights, exploration coins and replay samples,
    stepped in alternation; the largest parameter difference after each common update."""
    from duetrl.core.backend import BACKENDS
    from duetrl.core.rl.compare import max_param_difference
    from duetrl.core.rl.session import _progress, plot_learning_curves

    target = check_env_id(env_id).reward_threshold if target is None else target
    trainers = {n: DQNTrainer(env_id, n, settings, seed, total_steps, dtype) for n in BACKENDS}
    times = {n: 0.0 for n in BACKENDS}
    solved = {n: False for n in BACKENDS}
    last_diff, diff_update = 0.0, 0
    with _progress(total_steps, quiet, "compare dqn") as bar:
        while any(t.env_steps < total_steps and not solved[n] for n, t in trainers.items()):
            for name, trainer in trainers.items():
                if trainer.env_steps < total_steps and not solved[name]:
                    start = time.perf_counter()
                    trainer.step()
                    solved[name] = trainer.solved(target)
                    times[name] += time.perf_counter() - start
            if len({t.updates for t in trainers.values()}) == 1:
                last_diff = max_param_difference(*(t.params() for t in trainers.values()))
                diff_update = trainers["torch"].updates
            bar.update(max(t.env_steps for t in trainers.values()) - bar.n)
    results = {"algorithm": "dqn", "env": env_id, "seed": seed, "dtype": dtype,
               "target": target, "max_param_diff": last_diff,
               "max_param_diff_at_update": diff_update, "backends": {}}
    for name, trainer in trainers.items():
        results["backends"][name] = {
            "solved": solved[name], "greedy_return": trainer.greedy_return,
            "env_steps": trainer.env_steps, "episodes": trainer.episodes,
            "updates": trainer.updates, "final_mean_return": trainer.mean_return(),
            "wall_s": round(times[name], 3)}
    path = Path(out) / f"compare-dqn-{env_id.replace('/', '_')}.png"
    results["plot"] = str(plot_learning_curves(trainers, path,
                                               f"DQN on {env_id}: PyTorch vs TensorFlow", target))
    for trainer in trainers.values():
        trainer.close()
    return results
