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
