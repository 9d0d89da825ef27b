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

``--listing-episodes N`` (default 100) also times listing 5.2 as the book gives it
(``backends/*/reinforce.reinforce``: one environment, one episode per update, acting one step
at a time), from the same weights in both backends: the cost of one environment step, which
is the framework's per-call cost (an eager torch call against one traced TF function call).
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


def run_listing(backend_name: str, episodes: int) -> dict:
    """Listing 5.2 for ``episodes`` episodes from ch05_2's initial weights: its wall and CPU
    seconds per environment step (the per-step act dominates; one update per episode)."""
    import gymnasium as gym

    from duetrl.core.backend import load_backend
    from duetrl.core.initializers import cast_params
    from duetrl.core.reference.policy import init_agent_params

    backend = load_backend(backend_name)
    backend.set_num_threads(1)
    params = init_agent_params("reinforce", 4, 64, 2, False, seed=0)
    net = backend.PolicyNet(4, 64, 2)
    backend.import_params(net, {k[len("policy."):]: v
                                for k, v in cast_params(params, "float32").items()})
    start, cpu = time.perf_counter(), time.process_time()
    returns = backend.reinforce(gym.make("CartPole-v1"), net, episodes, gamma=0.99,
                                learning_rate=1e-2, seed=0)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    steps = int(sum(returns))
    return {"episodes": episodes, "steps": steps, "wall_s": wall, "cpu_s": cpu,
            "us_per_step": 1e6 * wall / steps, "cpu_us_per_step": 1e6 * cpu / steps}


def call_costs(calls: int = 2000) -> dict[str, float]:
    """Wall microseconds of one policy call on one CartPole observation, the framework's own
    per-call cost measured in isolation: torch eager (under ``inference_mode``), and TF three
    ways: the Keras model called eagerly, a ``tf.function`` of it, and that function's
    concrete function (what listing 5.2 calls per step: no argument matching)."""
    import numpy as np
    import tensorflow as tf
    import torch

    from duetrl.core.backend import load_backends

    backends = load_backends(["torch", "tf"])
    for backend in backends.values():
        backend.set_num_threads(1)
    state = np.zeros((1, 4), np.float32)
    torch_net, tf_net = backends["torch"].PolicyNet(4, 64, 2), backends["tf"].PolicyNet(4, 64, 2)
    traced = tf.function(tf_net, autograph=False)
    concrete = traced.get_concrete_function(tf.TensorSpec((1, 4)))

    def torch_call():
        with torch.inference_mode():
            torch_net(torch.as_tensor(state))

    ways = {"torch eager": torch_call, "tf eager (Keras call)": lambda: tf_net(state),
            "tf.function": lambda: traced(state),
            "tf concrete function": lambda: concrete(tf.constant(state))}
    costs = {}
    for label, call in ways.items():
        for _ in range(50):  # warm: tracing, first allocations
            call()
        began = time.perf_counter()
        for _ in range(calls):
            call()
        costs[label] = 1e6 * (time.perf_counter() - began) / calls
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
    parser.add_argument("--listing-episodes", type=int, default=100,
                        help="episodes of listing 5.2 per backend (0: skip it)")
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

    for backend in args.backends if args.listing_episodes > 0 else ():
        result = run_listing(backend, args.listing_episodes)
        runs[f"listing/{backend}"] = [result]
        print(f"listing 5.2/{backend:<5} {result['episodes']} episodes, {result['steps']} steps, "
              f"{result['us_per_step']:.0f} us wall per step", flush=True)

    if args.listing_episodes > 0 and {"torch", "tf"} <= set(args.backends):
        runs["listing_calls"] = [call_costs()]
        print("one policy call, one observation: " + ", ".join(
            f"{label} {us:.0f} us" for label, us in runs["listing_calls"][0].items()))

    sb3 = runs.get("sb3_ppo/torch")
    sb3_wall = median_solved(sb3, "wall_s") if sb3 else None
    print(f"\nCartPole-v1, time to solve (mean of last {WINDOW} >= {TARGET:.0f}), "
          f"median over {args.seeds} seeds")
    sb3_cpu = median_solved(sb3, "cpu_s") if sb3 else None
    print(f"{'method':<28}{'solved':>8}{'median steps':>14}{'median wall s':>15}"
          f"{'vs SB3 wall':>13}{'median CPU s':>14}{'vs SB3 CPU':>12}{'max steps':>11}")
    for name, results in runs.items():
        if name.startswith("listing") or not results:
            continue
        wall, cpu = median_solved(results, "wall_s"), median_solved(results, "cpu_s")
        ratio = f"{wall / sb3_wall:.2f}x" if sb3_wall else "-"
        cpu_ratio = f"{cpu / sb3_cpu:.2f}x" if sb3_cpu else "-"
        solved = sum(r["solved"] for r in results)
        print(f"{name:<28}{solved:>5}/{len(results):<2}{median_solved(results, 'steps'):>14.0f}"
              f"{wall:>15.1f}{ratio:>13}{cpu:>14.1f}{cpu_ratio:>12}"
              f"{max(r['steps'] for r in results):>11}")
    for algorithm in args.algorithms:
        if {"torch", "tf"} <= set(args.backends) and args.seeds > 0:
            ratios = [median_solved(runs[f"{algorithm}/tf"], key)
                      / median_solved(runs[f"{algorithm}/torch"], key)
                      for key in ("wall_s", "cpu_s")]
            print(f"{algorithm}: tf / torch ratio, wall {ratios[0]:.2f}, CPU {ratios[1]:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(runs, f, indent=2)


if __name__ == "__main__":
    main()
