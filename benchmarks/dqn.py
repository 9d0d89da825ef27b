"""Time to solve CartPole-v1 with DQN: duetrl (torch, tf) vs Stable-Baselines3, in one run.

    .venv/bin/python benchmarks/dqn.py --seeds 0 1 2 --total-steps 50000

"Solved" = the greedy policy's mean return over 20 episodes >= 475, checked for both every
``eval_interval`` env steps (1,024 by default; SB3 through a callback at the start of the
rollout that follows, i.e. after the training phase, as ours; evaluation time excluded from
neither). SB3 runs rl-baselines3-zoo's CartPole-v1
DQN hyperparameters; it is skipped if stable-baselines3 is not installed (the ``bench``
extra). One process, one framework thread, runs one after another. Reports steps and wall
seconds per run and the median ratios ours / SB3 and tf / torch.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

ZOO = dict(learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1000,
           gamma=0.99, target_update_interval=10, train_freq=256, gradient_steps=128,
           exploration_fraction=0.16, exploration_final_eps=0.04,
           policy_kwargs=dict(net_arch=[256, 256]))
"""rl-baselines3-zoo hyperparams/dqn.yml, CartPole-v1 (n_timesteps 5e4)."""


def run_ours(backend: str, seed: int, total_steps: int, overrides: dict) -> dict:
    from duetrl.core.rl.dqn import DQNTrainer, make_dqn_settings

    trainer = DQNTrainer("CartPole-v1", backend, make_dqn_settings(**overrides), seed,
                         total_steps)
    start, solved = time.perf_counter(), False
    while trainer.env_steps < total_steps and not solved:
        trainer.step()
        solved = trainer.solved(475.0)
    wall = time.perf_counter() - start
    trainer.close()
    return {"solved": solved, "env_steps": trainer.env_steps, "wall_s": round(wall, 2),
            "greedy_return": trainer.greedy_return}


def run_sb3(seed: int, total_steps: int, eval_interval: int) -> dict | None:
    try:
        import gymnasium as gym
        from stable_baselines3 import DQN
        from stable_baselines3.common.callbacks import BaseCallback
    except ImportError:
        return None

    def greedy(model) -> float:
        envs = gym.make_vec("CartPole-v1", num_envs=20, vectorization_mode="vector_entry_point")
        obs, _ = envs.reset(seed=seed + 10_000)
        returns, running = np.zeros(20), np.ones(20, bool)
        while running.any():
            obs, r, term, trunc, _ = envs.step(model.predict(obs, deterministic=True)[0])
            returns += np.where(running, r, 0.0)
            running &= ~(term | trunc)
        return float(returns.mean())

    class Solved(BaseCallback):
        def __init__(self):
            super().__init__()
            self.solved, self.greedy = False, float("nan")

        def _on_rollout_start(self) -> None:  # after the previous rollout's training
            if self.num_timesteps and self.num_timesteps % eval_interval < ZOO["train_freq"]:
                self.greedy = greedy(self.model)
                self.solved = self.greedy >= 475

        def _on_step(self) -> bool:
            return not self.solved

    model = DQN("MlpPolicy", "CartPole-v1", seed=seed, verbose=0, device="cpu", **ZOO)
    callback = Solved()
    start = time.perf_counter()
    model.learn(total_timesteps=total_steps, callback=callback)
    wall = time.perf_counter() - start
    return {"solved": callback.solved, "env_steps": int(model.num_timesteps),
            "wall_s": round(wall, 2), "greedy_return": callback.greedy}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--total-steps", type=int, default=50_000)
    parser.add_argument("--no-sb3", action="store_true", help="skip Stable-Baselines3")
    parser.add_argument("--set", default="{}", help="DQNSettings overrides as JSON")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from duetrl.core.backend import load_backends

    for module in load_backends(("torch", "tf")).values():
        module.set_num_threads(1)
    import torch

    torch.set_num_threads(1)
    overrides = json.loads(args.set)
    results: dict = {"ours_torch": [], "ours_tf": [], "sb3": []}
    for seed in args.seeds:
        for backend in ("torch", "tf"):
            results[f"ours_{backend}"].append(run_ours(backend, seed, args.total_steps, overrides))
        if not args.no_sb3:
            from duetrl.core.rl.dqn import make_dqn_settings

            sb3 = run_sb3(seed, args.total_steps, make_dqn_settings(**overrides).eval_interval)
            if sb3 is not None:
                results["sb3"].append(sb3)
        if not args.json:
            print(seed, {k: v[-1] for k, v in results.items() if v}, flush=True)
    median = {k: statistics.median(r["wall_s"] for r in v) for k, v in results.items() if v}
    results["median_wall_s"] = median
    if "sb3" in median:
        results["ratio_torch_sb3"] = median["ours_torch"] / median["sb3"]
    results["ratio_tf_torch"] = median["ours_tf"] / median["ours_torch"]
    print(json.dumps(results, indent=2) if args.json else
          f"median wall s {median}; tf/torch {results['ratio_tf_torch']:.2f}")
    return results


if __name__ == "__main__":
    main()
