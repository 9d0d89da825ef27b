"""Checkpoints round-trip exactly, and a checkpoint from one backend resumes in the other
(parameters and Adam state are stored in the canonical layout)."""

from __future__ import annotations

import numpy as np

from duetrl.core.interfaces.rl_settings import make_settings
from duetrl.core.rl.train import PolicyGradientTrainer
from duetrl.core.tolerances import assert_close


def make(backend: str) -> PolicyGradientTrainer:
    settings = make_settings("ppo", num_envs=2, num_steps=8, hidden_dim=8, update_epochs=2)
    return PolicyGradientTrainer("ppo", "duetrl/Identity-v0", backend, settings, seed=1, total_steps=10_000)


def test_checkpoint_round_trip_and_cross_backend_resume(tmp_path):
    source = make("torch")
    for _ in range(3):
        source.step()
    path = source.save(tmp_path / "checkpoint.safetensors")
    saved_params = source.params()
    saved_optimizer = source.agent.optimizer.state_arrays()
    for backend in ("torch", "tf"):
        resumed = make(backend)
        metadata = resumed.load(path)
        assert metadata["backend"] == "torch" and resumed.updates == 3
        assert resumed.env_steps == source.env_steps and resumed.episodes == source.episodes
        for name, value in saved_params.items():
            assert_close(resumed.params()[name], value, "exact", f"{backend} {name}")
        for name, value in saved_optimizer.items():
            got = resumed.agent.optimizer.state_arrays()[name]
            assert_close(np.reshape(got, np.shape(value)), value, "exact", f"{backend} {name}")
        record = resumed.step()  # and training goes on from there
        assert record["update"] == 4 and np.isfinite(record["loss"])


OLD_METADATA = ("algorithm", "env_id", "backend", "dtype", "seed", "total_steps", "settings",
                "updates", "env_steps", "episodes", "recent_returns", "episode_log")
"""The metadata keys a policy-gradient checkpoint has held since its first version (DQN's
adds gradient_steps); the kinds are "duetrl.rl" and "duetrl.dqn"."""


def test_a_checkpoint_in_the_previous_format_still_loads(tmp_path):
    import dataclasses

    from duetrl.core.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
    from duetrl.core.rl.dqn import DQNTrainer
    from duetrl.core.rl.dqn_settings import make_dqn_settings

    source = make("torch")
    for _ in range(2):
        source.step()
    values = {"algorithm": "ppo", "env_id": "duetrl/Identity-v0", "backend": "torch",
              "dtype": "float32", "seed": 1, "total_steps": 10_000,
              "settings": dataclasses.asdict(source.settings), "updates": 2,
              "env_steps": source.env_steps, "episodes": source.episodes,
              "recent_returns": list(source.recent_returns),
              "episode_log": [list(e) for e in source.episode_log]}
    tensors = {"params": source.params(), "optim": source.agent.optimizer.state_arrays()}
    path = save_checkpoint(tmp_path / "old.safetensors", Checkpoint("duetrl.rl", tensors, values))
    resumed = make("tf")
    assert resumed.load(path)["updates"] == 2 and resumed.env_steps == source.env_steps
    assert resumed.episode_log == source.episode_log
    for name, value in source.params().items():
        assert_close(resumed.params()[name], value, "exact", name)
    written = resumed.state()  # and what it writes now is the same format
    assert written.kind == "duetrl.rl" and tuple(written.metadata) == OLD_METADATA
    assert set(written.tensors) == {"params", "optim"}

    settings = make_dqn_settings(num_envs=2, hidden_dim=8, batch_size=8, learning_starts=8,
                                 train_freq=4, gradient_steps=2)
    dqn = DQNTrainer("duetrl/Identity-v0", "torch", settings, seed=0, total_steps=1000)
    dqn.step()
    old = {**{k: dqn.state().metadata[k] for k in OLD_METADATA}, "gradient_steps": 2}
    path = save_checkpoint(tmp_path / "old_dqn.safetensors",
                           Checkpoint("duetrl.dqn", dqn.state().tensors, old))
    again = DQNTrainer("duetrl/Identity-v0", "tf", settings, seed=0, total_steps=1000)
    assert again.load(path)["gradient_steps"] == 2 and again.gradient_steps == 2
    assert set(load_checkpoint(path).metadata) == set(again.state().metadata)
    dqn.close()
    again.close()
