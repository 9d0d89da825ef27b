"""Value-based RL and exploration from the command line.

    duetrl solve value-iteration --env FrozenLake-v1 --map-size 8     V* as a grid, arrows picture
    duetrl bandit --horizon 5000 --runs 500                           regret curves and plot
    duetrl train dqn --env CartPole-v1 --backend tf                   DQN in one backend
    duetrl compare dqn --env CartPole-v1                              DQN, torch vs tf

Every field of DQNSettings (core/rl/dqn_settings.py) is a ``--flag`` of ``train dqn`` and
``compare dqn``; the run flags (``--out --seed --backend ...``) are cli/flags.py's.
Frameworks load only when a DQN command runs; ``solve`` and ``bandit`` are NumPy only.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from duetrl.core.cli.flags import add_dataclass_flags, add_run_flags
from duetrl.core.cli.rl import COMPARE_FLAGS, RUN_FLAGS, SEED_HELP

ARROWS = {0: "\u2190", 1: "\u2193", 2: "\u2192", 3: "\u2191"}
"""FrozenLake's actions: 0 left, 1 down, 2 right, 3 up."""


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def _add_dqn_flags(parser: argparse.ArgumentParser, default_steps: int) -> None:
    from duetrl.core.rl.dqn_settings import DQNSettings

    parser.add_argument("--env", default="CartPole-v1", help="Gymnasium id (discrete actions)")
    parser.add_argument("--total-steps", type=int, default=default_steps,
                        help="environment-step budget")
    parser.add_argument("--target", type=float, default=None,
                        help="stop when the greedy policy's mean return reaches this "
                             "(default: the environment's reward threshold)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    add_dataclass_flags(parser, dataclasses.fields(DQNSettings), "dqn settings")


def register(commands: argparse._SubParsersAction, compare: argparse._SubParsersAction) -> None:
    if commands is not None:
        solve = commands.add_parser("solve", help="dynamic programming on a known MDP")
        methods = solve.add_subparsers(dest="method", metavar="METHOD", required=True)
        for method in ("value-iteration", "policy-iteration"):
            parser = methods.add_parser(method, help=f"{method.replace('-', ' ')}: V*, Q*, pi*")
            parser.add_argument("--env", default="FrozenLake-v1",
                                help="an environment with a transition table (FrozenLake-v1, "
                                     "Taxi-v4 or Taxi-v3 by Gymnasium release, "
                                     "CliffWalking-v1)")
            parser.add_argument("--map-size", type=int, choices=[4, 8], default=4,
                                help="FrozenLake's map: 4x4 or 8x8")
            parser.add_argument("--slippery", action=argparse.BooleanOptionalAction,
                                default=True, help="FrozenLake's slippery ice")
            parser.add_argument("--gamma", type=float, default=0.99, help="discount in [0, 1]")
            add_run_flags(parser, "out", "json", out="runs", out_help="folder for the picture",
                          json_help="print V* as JSON")
            parser.set_defaults(run=run_solve, method=method)

        bandit = commands.add_parser("bandit", help="exploration on a k-armed bandit: regret")
        bandit.add_argument("--kind", choices=["bernoulli", "gaussian"], default="bernoulli")
        bandit.add_argument("--means", type=float, nargs="+", default=[0.9, 0.8, 0.6, 0.4, 0.2],
                            help="the arms' mean rewards (k >= 2)")
        bandit.add_argument("--std", type=float, default=1.0, help="Gaussian arms' sigma")
        bandit.add_argument("--epsilon", type=float, default=0.1,
                            help="fixed epsilon-greedy's exploration rate in [0, 1]")
        bandit.add_argument("--horizon", type=int, default=5000, help="steps per run")
        bandit.add_argument("--runs", type=int, default=500, help="independent runs (seeds)")
        add_run_flags(bandit, "out", "seed", "json", out="runs", out_help="folder for the plot",
                      seed_help="seeds the arms' rewards and the agents' choices",
                      json_help="print the final regrets")
        bandit.set_defaults(run=run_bandit)

        train = commands.choices.get("train")  # `duetrl train` comes from core/cli/rl.py
        algorithms = _subparsers(train) if train is not None else None
        if algorithms is not None:
            parser = algorithms.add_parser("dqn", help="DQN (Double DQN, n-step as options)")
            add_run_flags(parser, *RUN_FLAGS, out_help="run folder (default: runs/dqn-...)",
                          seed_help=SEED_HELP, json_help="print the run summary as JSON")
            _add_dqn_flags(parser, 50_000)
            parser.add_argument("--checkpoint-every", type=int, default=20,
                                help="updates between checkpoints (0: at the end only)")
            parser.set_defaults(run=run_train_dqn, algorithm="dqn")
    parser = compare.add_parser("dqn", help="DQN: torch vs tf from the same start")
    add_run_flags(parser, *COMPARE_FLAGS, out="runs", out_help="folder for the plot",
                  seed_help=SEED_HELP, json_help="print the results as JSON")
    _add_dqn_flags(parser, 50_000)
    parser.add_argument("--report-every", type=int, default=0,
                        help="updates between table rows (0: only the final table)")
    parser.set_defaults(run=run_compare_dqn, algorithm="dqn")


def _settings(args: argparse.Namespace):
    from duetrl.core.rl.dqn_settings import DQNSettings, make_dqn_settings

    return make_dqn_settings(**{f.name: getattr(args, f.name)
                                for f in dataclasses.fields(DQNSettings)
                                if getattr(args, f.name, None) is not None})


def format_grid(values: np.ndarray, side: int) -> str:
    """V as a side x side grid of numbers."""
    rows = values.reshape(side, side)
    return "\n".join(" ".join(f"{v:6.3f}" for v in row) for row in rows)


def plot_policy_arrows(value: np.ndarray, policy: np.ndarray, desc: np.ndarray,
                       path: str | Path, title: str) -> Path:
    """FrozenLake's map coloured by V*, with pi*'s arrow on every frozen tile."""
    from duetrl.core.plots import pyplot, save_figure

    plt = pyplot()
    side = desc.shape[0]
    fig, ax = plt.subplots(figsize=(1 + 0.7 * side, 0.7 * side + 0.6))
    image = ax.imshow(value.reshape(side, side), cmap="viridis")
    fig.colorbar(image, ax=ax, label="V*(s)")
    for s in range(side * side):
        r, c = divmod(s, side)
        tile = desc[r, c]
        text = {"H": "H", "G": "G"}.get(tile, ARROWS[int(policy[s])])
        ax.text(c, r, text, ha="center", va="center", fontsize=14,
                color="white" if value[s] < value.max() / 2 else "black")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)
    return save_figure(fig, path)


def run_solve(args: argparse.Namespace) -> int:
    import gymnasium as gym

    from duetrl.core.envs.vector import check_env_id
    from duetrl.core.reference.dynamic_programming import (
        bellman_optimality_residual,
        policy_iteration,
        tabular_mdp,
        value_iteration,
    )

    check_env_id(args.env)
    kwargs = {}
    if args.env.startswith("FrozenLake"):
        kwargs = {"map_name": f"{args.map_size}x{args.map_size}", "is_slippery": args.slippery}
    env = gym.make(args.env, **kwargs)
    mdp = tabular_mdp(env)
    solve = value_iteration if args.method == "value-iteration" else policy_iteration
    solution = solve(mdp, args.gamma)
    residual = bellman_optimality_residual(mdp, solution.value, args.gamma)
    if args.json:
        print(json.dumps({"env": args.env, "method": args.method, "gamma": args.gamma,
                          "iterations": solution.iterations, "residual": residual,
                          "value": solution.value.tolist(),
                          "policy": solution.policy.tolist()}, indent=2))
        return 0
    print(f"{args.method} on {args.env} {kwargs or ''}: gamma {args.gamma}, "
          f"{solution.iterations} sweeps, Bellman residual {residual:.1e}")
    desc = getattr(env.unwrapped, "desc", None)
    if desc is not None and np.asarray(desc).size == mdp.num_states:  # FrozenLake: a grid
        desc = np.asarray(desc).astype(str)
        side = desc.shape[0]
        print("V*:\n" + format_grid(solution.value, side))
        tiles = [{"H": "H", "G": "G"}.get(tile, ARROWS[int(action)])
                 for tile, action in zip(desc.ravel(), solution.policy)]
        print("pi*:\n" + "\n".join(" ".join(tiles[r * side:(r + 1) * side])
                                     for r in range(side)))
        name = f"{args.method}-{args.env}-{side}x{side}{'' if args.slippery else '-det'}.png"
        path = plot_policy_arrows(solution.value, solution.policy, desc, Path(args.out) / name,
                                  f"{args.method} on {args.env} {side}x{side}, "
                                  f"gamma {args.gamma}")
        print(f"picture: {path}")
    else:
        print(f"V* over {mdp.num_states} states: min {solution.value.min():.3f}, "
              f"max {solution.value.max():.3f}, mean {solution.value.mean():.3f}")
    return 0


def run_bandit(args: argparse.Namespace) -> int:
    from duetrl.core.bandits import (
        Bandit,
        EpsilonGreedy,
        default_policies,
        lai_robbins_bound,
        plot_regret,
        run_experiment,
    )

    bandit = Bandit(np.asarray(args.means, dtype=np.float64), args.kind, args.std)
    policies = default_policies(args.kind, args.std)
    fixed = EpsilonGreedy(args.epsilon)
    policies = {fixed.name: fixed, **{k: v for k, v in policies.items()
                                      if not k.startswith("eps-greedy")}}
    results = run_experiment(bandit, policies, args.horizon, args.runs, args.seed)
    path = plot_regret(results, bandit, Path(args.out) / f"bandit-{args.kind}.png")
    bound = float(lai_robbins_bound(bandit, args.horizon))
    if args.json:
        print(json.dumps({"horizon": args.horizon, "runs": args.runs, "lai_robbins": bound,
                          "plot": str(path), "regret": {
                              k: {"mean": float(c.mean[-1]), "low": float(c.low[-1]),
                                  "high": float(c.high[-1])} for k, c in results.items()}},
                         indent=2))
        return 0
    print(f"{args.kind} bandit {args.means}, {args.runs} runs x {args.horizon} steps")
    print(f"{'policy':<24}{'regret R(T)':>14}{'95% band':>22}")
    for name, curve in results.items():
        print(f"{name:<24}{curve.mean[-1]:>14.1f}   [{curve.low[-1]:8.1f}, {curve.high[-1]:8.1f}]")
    print(f"{'Lai-Robbins c ln T':<24}{bound:>14.1f}\nplot: {path}")
    return 0


def run_train_dqn(args: argparse.Namespace) -> int:
    from duetrl.core.backend import canonical_backend_name
    from duetrl.core.rl.session import train_dqn

    summary = train_dqn(args.env, canonical_backend_name(args.backend), _settings(args),
                        args.seed, args.total_steps, args.target, args.out, args.resume,
                        args.quiet, args.checkpoint_every, args.dtype, args.threads,
                        args.tensorboard)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        state = "solved" if summary["solved"] else "not solved"
        print(f"dqn on {args.env} ({summary['backend']}): {state} after {summary['env_steps']} "
              f"steps, {summary['episodes']} episodes, {summary['wall_s']:.1f} s; greedy return "
              f"{summary['greedy_return']:.1f}, training mean {summary['final_mean_return']:.1f}"
              f"\nlog {summary['log']}, curve {summary['plot']}, checkpoint "
              f"{summary['checkpoint']}")
    return 130 if summary["interrupted"] else 0


def run_compare_dqn(args: argparse.Namespace) -> int:
    from duetrl.core.rl.compare import compare_dqn, format_results, to_json

    results = compare_dqn(args.env, _settings(args), args.seed, args.total_steps, args.target,
                          args.out, args.quiet, args.dtype,
                          report_every=0 if args.json else args.report_every)
    print(to_json(results) if args.json else format_results(results))
    return 0
