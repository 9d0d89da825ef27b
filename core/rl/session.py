"""Whole runs: ``train`` a policy-gradient agent or ``train_dqn`` a DQN agent in one backend,
through the one run loop (``duetrl.core.run.run``).

A run folder holds ``log.csv`` (one row per update, written as it goes),
``checkpoint.safetensors`` (atomic; ``--resume`` continues it), ``curve.png`` (the learning
curve) and ``summary.json``. Ctrl-C stops after the current update and saves a checkpoint; a
non-finite loss stops the run (``Diverged``, a ValueError) and keeps the last good checkpoint.
A resumed run is a valid continuation, not a bit-for-bit replay: the environments' internal
state is not in the checkpoint, and the trainer re-seeds them from (seed, update).
"""

from __future__ import annotations

from pathlib import Path

from duetrl.core.envs.vector import check_env_id
from duetrl.core.interfaces.rl_settings import ReinforceSettings
from duetrl.core.rl.base import RLTrainer
from duetrl.core.rl.dqn import DQNTrainer
from duetrl.core.rl.dqn_settings import DQNSettings
from duetrl.core.rl.train import PolicyGradientTrainer
from duetrl.core.run import run


def default_target(env_id: str) -> float | None:
    """The environment's registered reward threshold (CartPole-v1: 475), if any."""
    return check_env_id(env_id).reward_threshold


def default_run_dir(algorithm: str, env_id: str, backend: str, seed: int) -> Path:
    return Path("runs") / f"{algorithm}-{env_id.replace('/', '_')}-{backend}-s{seed}"


def run_trainer(trainer: RLTrainer, out: str | Path | None, resume: bool, quiet: bool,
                checkpoint_every: int, tensorboard: bool) -> dict:
    """:func:`duetrl.core.run.run` on ``trainer`` (default folder ``runs/<algo>-<env>-...``),
    then close its environments."""
    out = out or default_run_dir(trainer.algorithm, trainer.env_id, trainer.backend_name,
                                 trainer.seed)
    try:
        return run(trainer, out, resume=resume, quiet=quiet, checkpoint_every=checkpoint_every,
                   tensorboard=tensorboard)
    finally:
        trainer.close()


def train(algorithm: str, env_id: str, backend: str, settings: ReinforceSettings, seed: int = 0,
          total_steps: int = 100_000, target: float | None = None, out: str | None = None,
          resume: bool = False, quiet: bool = False, checkpoint_every: int = 50,
          dtype: str = "float32", threads: int = 1, tensorboard: bool = False) -> dict:
    """Train one agent until it is solved (``target``) or ``total_steps`` are spent.

    :param target: the mean return of the last 100 episodes that stops the run (default: the
        environment's reward threshold).
    :param checkpoint_every: updates between checkpoints (0: at the end and on Ctrl-C only).
    :param tensorboard: also write every log row as TensorBoard scalars into the run folder
        (duetrl.core.tensorboard), the same tags for both backends.
    :returns: the run summary (also written to ``summary.json``): duetrl.core.run's base keys,
        then algorithm, env, solved, target, env_steps, episodes, final_mean_return, last_loss.
    :raises ValueError: bad input, or a non-finite loss (naming the update and the checkpoint).
    """
    target = default_target(env_id) if target is None else target
    trainer = PolicyGradientTrainer(algorithm, env_id, backend, settings, seed, total_steps, dtype,
                                    threads, target=target)
    return run_trainer(trainer, out, resume, quiet, checkpoint_every, tensorboard)


def train_dqn(env_id: str, backend: str, settings: DQNSettings, seed: int = 0,
              total_steps: int = 50_000, target: float | None = None, out: str | None = None,
              resume: bool = False, quiet: bool = False, checkpoint_every: int = 20,
              dtype: str = "float32", threads: int = 1, tensorboard: bool = False) -> dict:
    """Train DQN until the greedy policy reaches ``target`` or ``total_steps`` are spent.

    The same run folder as :func:`train`; the summary adds greedy_return and gradient_steps.
    """
    target = default_target(env_id) if target is None else target
    trainer = DQNTrainer(env_id, backend, settings, seed, total_steps, dtype, threads,
                         target=target)
    return run_trainer(trainer, out, resume, quiet, checkpoint_every, tensorboard)
