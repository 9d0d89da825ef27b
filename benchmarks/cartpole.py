"""Time to solve CartPole-v1: duetrl (PPO, REINFORCE with baseline; torch and tf) vs SB3 PPO.

"Solved" = the mean return of the last 100 training episodes reaches 475. Every method runs
in this one process, one after another (never two at once), with one CPU thread per
framework; the table reports medians over seeds and ratios measured in this same run.

    pip install -e ".[bench]"          # stable-baselines3, for the reference
    python benchmarks/cartpole.py --seeds 5

Stable-Baselines3 PPO uses the rl-zoo hyperparameters for CartPole-v1: 8 envs, n_steps 32,
batch 256, gae_lambda 0.8, gamma 0.98, 20 epochs, ent_coef 0, learning rate linear from
1e-3, clip range linear from 0.2, 1e5 timesteps.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

TARGET = 475.0
WINDOW = 100


def run_ours(algorithm: str, backend: str, seed: int, max_steps: int) -> dict:
    from duetrl.core.interfaces.rl_settings import make_settings
    from duetrl.core.rl.train import PolicyGradientTrainer

    trainer = PolicyGradientTrainer(algorithm, "CartPole-v1", backend, make_settings(algorithm),
                                    seed=seed, total_steps=max_steps, threads=1)
    start = time.perf_counter()
    while trainer.env_steps < max_steps and not trainer.solved(TARGET):
        trainer.step()
    wall = time.perf_counter() - start
    trainer.close()
    return {"solved": trainer.solved(TARGET), "steps": trainer.env_steps, "wall_s": wall}


def run_sb3(seed: int, total_steps: int = 100_000) -> dict:
    import numpy as np
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(1)

    def linear(start: float):
        return lambda progress_remaining: progress_remaining * start

    class StopWhenSolved(BaseCallback):
        def __init__(self):
            super().__init__()
            self.returns: list[float] = []
            self.solved_at = None

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:
                    self.returns.append(info["episode"]["r"])
            recent = self.returns[-WINDOW:]
            if len(recent) == WINDOW and np.mean(recent) >= TARGET:
                self.solved_at = self.num_timesteps
                return False
            return True

    env = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
    model = PPO("MlpPolicy", env, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98,
                n_epochs=20, ent_coef=0.0, learning_rate=linear(1e-3), clip_range=linear(0.2),
                seed=seed, device="cpu", verbose=0)
    callback = StopWhenSolved()
    start = time.perf_counter()
    model.learn(total_timesteps=total_steps, callback=callback)
    wall = time.perf_counter() - start
    solved = callback.solved_at is not None
    return {"solved": solved, "steps": callback.solved_at or model.num_timesteps, "wall_s": wall}


def median_solved(runs: list[dict], key: str) -> float:
    """Median over seeds; an unsolved seed counts as infinitely slow."""
    return statistics.median(r[key] if r["solved"] else float("inf") for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--max-steps", type=int, default=300_000)
    parser.add_argument("--algorithms", nargs="+", default=["ppo", "reinforce_baseline"])
    parser.add_argument("--backends", nargs="+", default=["torch", "tf"])
    parser.add_argument("--no-sb3", action="store_true", help="skip Stable-Baselines3")
    parser.add_argument("--json", default=None, help="also write the raw runs to this file")
    args = parser.parse_args()

    from duetrl.core.backend import load_backends

    load_backends(args.backends)  # torch first, then tf, before anything is timed
    methods = [(a, b) for a in args.algorithms for b in args.backends]
    if not args.no_sb3:
        methods.append(("sb3_ppo", "torch"))
    runs: dict[str, list[dict]] = {f"{a}/{b}": [] for a, b in methods}
    for seed in range(args.seeds):
        for algorithm, backend in methods:
            if algorithm == "sb3_ppo":
                result = run_sb3(seed)
            else:
                result = run_ours(algorithm, backend, seed, args.max_steps)
            runs[f"{algorithm}/{backend}"].append(result)
            print(f"seed {seed} {algorithm:>18}/{backend:<5} solved={result['solved']!s:<5} "
                  f"steps={result['steps']:>7} wall={result['wall_s']:6.1f} s", flush=True)

    sb3 = runs.get("sb3_ppo/torch")
    sb3_wall = median_solved(sb3, "wall_s") if sb3 else None
    print(f"\nCartPole-v1, time to solve (mean of last {WINDOW} >= {TARGET:.0f}), "
          f"median over {args.seeds} seeds")
    print(f"{'method':<28}{'solved':>8}{'median steps':>14}{'median wall s':>15}"
          f"{'vs SB3 wall':>13}{'max steps':>11}")
    for name, results in runs.items():
        wall = median_solved(results, "wall_s")
        ratio = f"{wall / sb3_wall:.2f}x" if sb3_wall else "-"
        solved = sum(r["solved"] for r in results)
        print(f"{name:<28}{solved:>5}/{len(results):<2}{median_solved(results, 'steps'):>14.0f}"
              f"{wall:>15.1f}{ratio:>13}{max(r['steps'] for r in results):>11}")
    for algorithm in args.algorithms:
        if {"torch", "tf"} <= set(args.backends):
            ratio = (median_solved(runs[f"{algorithm}/tf"], "wall_s")
                     / median_solved(runs[f"{algorithm}/torch"], "wall_s"))
            print(f"{algorithm}: tf / torch wall-time ratio {ratio:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(runs, f, indent=2)


if __name__ == "__main__":
    main()
