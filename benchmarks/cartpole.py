"""Time to solve CartPole-v1: duetrl (PPO, REINFORCE with baseline; torch and tf) vs SB3 PPO.

"Solved" = the mean return of the last 100 training episodes reaches 475. Every method runs
in this one process, one after another (never two at once), with one CPU thread per
framework; the table reports medians over seeds and ratios measured in this same run, of wall
time and of the process's CPU time (steadier than wall on a shared machine).

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
    start, cpu = time.perf_counter(), time.process_time()
    while trainer.env_steps < max_steps and not trainer.solved(TARGET):
        trainer.step()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    trainer.close()
    return {"solved": trainer.solved(TARGET), "steps": trainer.env_steps, "wall_s": wall,
            "cpu_s": cpu}


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
    start, cpu = time.perf_counter(), time.process_time()
    model.learn(total_timesteps=total_steps, callback=callback)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    solved = callback.solved_at is not None
    return {"solved": solved, "steps": callback.solved_at or model.num_timesteps, "wall_s": wall,
            "cpu_s": cpu}


def act_cost(backends: list[str], calls: int = 2000) -> dict[str, float]:
    """CPU microseconds of one act on a batch of 16 CartPole observations: each backend's
    ``Agent.act`` (one framework call, conversions included) and the trainers' host step
    (``core/rl/host_policy.HostActor``), which the rollouts use."""
    import numpy as np

    from duetrl.core.backend import load_backend
    from duetrl.core.interfaces.rl_settings import make_settings
    from duetrl.core.rl.host_policy import HostActor

    rng = np.random.default_rng(0)
    states, noise = rng.standard_normal((16, 4)), rng.gumbel(size=(16, 2))
    costs = {}
    for name in backends:
        backend = load_backend(name)
        backend.set_num_threads(1)
        agent = backend.Agent("ppo", 4, 2, False, make_settings("ppo"))
        actors = {f"{name} Agent.act": agent, f"{name} host": HostActor(
            backend.export_params(agent.policy))}
        for label, actor in actors.items():
            actor.act(states, noise)  # the first call traces
            began = time.process_time()
            for _ in range(calls):
                actor.act(states, noise)
            costs[label] = 1e6 * (time.process_time() - began) / calls
    return costs


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
    parser.add_argument("--act-cost", action="store_true",
                        help="only measure one act's CPU time: the frameworks' and the host's")
    args = parser.parse_args()
    if args.act_cost:
        for label, us in act_cost(args.backends).items():
            print(f"{label:<20} {us:8.0f} us CPU per act (16 observations)")
        return

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
    sb3_cpu = median_solved(sb3, "cpu_s") if sb3 else None
    print(f"{'method':<28}{'solved':>8}{'median steps':>14}{'median wall s':>15}"
          f"{'vs SB3 wall':>13}{'median CPU s':>14}{'vs SB3 CPU':>12}{'max steps':>11}")
    for name, results in runs.items():
        wall, cpu = median_solved(results, "wall_s"), median_solved(results, "cpu_s")
        ratio = f"{wall / sb3_wall:.2f}x" if sb3_wall else "-"
        cpu_ratio = f"{cpu / sb3_cpu:.2f}x" if sb3_cpu else "-"
        solved = sum(r["solved"] for r in results)
        print(f"{name:<28}{solved:>5}/{len(results):<2}{median_solved(results, 'steps'):>14.0f}"
              f"{wall:>15.1f}{ratio:>13}{cpu:>14.1f}{cpu_ratio:>12}"
              f"{max(r['steps'] for r in results):>11}")
    for algorithm in args.algorithms:
        if {"torch", "tf"} <= set(args.backends):
            ratios = [median_solved(runs[f"{algorithm}/tf"], key)
                      / median_solved(runs[f"{algorithm}/torch"], key)
                      for key in ("wall_s", "cpu_s")]
            print(f"{algorithm}: tf / torch ratio, wall {ratios[0]:.2f}, CPU {ratios[1]:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(runs, f, indent=2)


if __name__ == "__main__":
    main()
