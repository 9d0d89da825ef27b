"""Benchmark: the LM policy (GLAM) on KeyDoor, both backends, 1 thread.

Run by hand (``python benchmarks/lm_agent.py``), never in the test suite. It pretrains the
agent's GPT once in torch (``duetrl agent pretrain``'s defaults; ``--pretrained FILE`` loads one
instead), then per backend trains the pretrained-LM policy and reports:

    env steps/s    environment steps per second of the rollouts (the LM scores every admissible
                   command of every state; one batched pass per step of the num_envs episodes)
    updates/s      1 / median wall time of a whole update (rollout, pi_old and V pass, GAE,
                   ``epochs`` PPO steps); the first update (tf: tracing) left out
    first update   seconds of the first update
    learner share  median share of an update spent in the PPO steps

and, in torch, the wall time (pretraining excluded, first update included) until the policy's
success rate over ``--eval-episodes`` seeded evaluation episodes reaches ``--target``, both
sampled from pi and greedy (None: not within ``--updates``; evaluated every ``--eval-every``
updates, evaluation time included). KeyDoor's hall reads the same before and after a room was
searched, so a memoryless greedy policy loops there: the greedy target is not expected.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from duetrl.core.agents.pretrain import PretrainSettings, pretrain
from duetrl.core.agents.settings import AgentSettings
from duetrl.core.agents.train import LMAgentRun
from duetrl.core.backend import load_backend


def speed(backend_name: str, settings: AgentSettings, updates: int) -> dict[str, Any]:
    backend = load_backend(backend_name)
    trainer = LMAgentRun(backend, settings)
    times, learner, steps = [], [], []
    for _ in range(updates):
        collect_before, steps_before = trainer.collect_seconds, trainer.env_steps
        began = time.perf_counter()
        trainer.step()
        wall = time.perf_counter() - began
        times.append(wall)
        learner.append((wall - (trainer.collect_seconds - collect_before)) / wall)
        steps.append(trainer.env_steps - steps_before)
    trainer.close()
    rest = times[1:] or times
    return {"env_steps_per_s": trainer.env_steps / trainer.collect_seconds,
            "updates_per_s": 1.0 / statistics.median(rest), "first_update_s": times[0],
            "learner_share": statistics.median(learner[1:] or learner),
            "env_steps_per_update": statistics.mean(steps)}


def time_to_target(settings: AgentSettings, updates: int, target: float,
                   eval_every: int) -> dict[str, Any]:
    backend = load_backend("torch")
    trainer = LMAgentRun(backend, settings)
    began, found = time.perf_counter(), {"sampled": None, "greedy": None}
    curve = []
    for update in range(1, updates + 1):
        trainer.step()
        if update % eval_every and update != updates:
            continue
        sampled = trainer.success_rate(greedy=False)["success_rate"]
        greedy = trainer.success_rate()["success_rate"]
        curve.append((update, sampled, greedy))
        for key, value in (("sampled", sampled), ("greedy", greedy)):
            if found[key] is None and value >= target:
                found[key] = {"update": update, "wall_s": time.perf_counter() - began}
        if all(found.values()):
            break
    trainer.close()
    return {"target": target, "found": found, "curve": curve,
            "wall_s": time.perf_counter() - began}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["torch", "tf"])
    parser.add_argument("--pretrained", default=None, help="a world LM (default: pretrain one)")
    parser.add_argument("--pretrain-steps", type=int, default=PretrainSettings.steps)
    parser.add_argument("--speed-updates", type=int, default=6)
    parser.add_argument("--updates", type=int, default=60, help="budget of the target run")
    parser.add_argument("--target", type=float, default=0.95)
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument("--learning-rate", type=float, default=AgentSettings.learning_rate)
    parser.add_argument("--ent-coef", type=float, default=AgentSettings.ent_coef)
    parser.add_argument("--no-target", action="store_true", help="speed only")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    for name in ("torch", "tf"):  # torch first: import torch before tensorflow
        if name in args.backends:
            load_backend(name).set_num_threads(args.threads)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = args.pretrained
        if path is None:
            path = str(Path(tmp) / "world_lm.safetensors")
            began = time.perf_counter()
            pretrain(load_backend("torch"), PretrainSettings(steps=args.pretrain_steps), path,
                     progress=False)
            results["pretrain_s"] = time.perf_counter() - began
        settings = AgentSettings(policy="lm", lm_checkpoint=path, updates=args.updates,
                                 eval_episodes=args.eval_episodes,
                                 learning_rate=args.learning_rate, ent_coef=args.ent_coef)
        for name in args.backends:
            results[name] = speed(name, settings, args.speed_updates)
        if "torch" in results and "tf" in results:
            results["tf_over_torch_update_time"] = (results["torch"]["updates_per_s"]
                                                    / results["tf"]["updates_per_s"])
        if not args.no_target:
            results["time_to_target_torch"] = time_to_target(settings, args.updates,
                                                             args.target, args.eval_every)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for name in args.backends:
            r = results[name]
            print(f"{name:5s}  {r['env_steps_per_s']:7.0f} env steps/s  "
                  f"{r['updates_per_s']:5.2f} updates/s  first update {r['first_update_s']:.2f}"
                  f" s  learner share {r['learner_share']:.2f}")
        if "time_to_target_torch" in results:
            t = results["time_to_target_torch"]
            print(f"torch: success >= {t['target']}: sampled {t['found']['sampled']}, greedy "
                  f"{t['found']['greedy']}; curve (update, sampled, greedy) {t['curve']}")
    return results


if __name__ == "__main__":
    main()
