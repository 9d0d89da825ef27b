"""``duetrl play``: play a text environment in the terminal (outline 3.2.2), or watch its
oracle play.

    duetrl play KeyDoor-v0 --seed 3            # type a command's number; q quits
    duetrl play Household-v0 --split heldout --oracle

Each step shows the goal, the text and the numbered commands; after a command, the reward;
at the end, whether the goal was reached and the return.
"""

from __future__ import annotations

import argparse

from duetrl.core.cli.flags import add_run_flags


def register(commands: argparse._SubParsersAction, compare: argparse._SubParsersAction) -> None:
    from duetrl.core.envs.text import REWARDS, SPLITS

    parser = commands.add_parser(
        "play", help="play a text environment in the terminal (or watch its oracle)")
    parser.add_argument("env", metavar="ENV",
                        help="KeyDoor-v0, Household-v0 or TextFrozenLake-v0 (duetrl/ optional)")
    add_run_flags(parser, "seed", seed_help="seeds the episode")
    parser.add_argument("--split", choices=list(SPLITS), default="train",
                        help="which words episodes use (default: train)")
    parser.add_argument("--reward", choices=list(REWARDS), default="sparse",
                        help="sparse: 1 on success; shaped: plus a one-time bonus per sub-goal "
                             "(default: sparse)")
    parser.add_argument("--oracle", action="store_true",
                        help="let the oracle play and print each step (no input read)")
    parser.set_defaults(run=run)


def env_id(name: str) -> str:
    """The registered id of a text environment named with or without ``duetrl/``."""
    from duetrl.core.envs import TEXT_ENV_IDS

    full = name if name.startswith("duetrl/") else f"duetrl/{name}"
    if full not in TEXT_ENV_IDS:
        short = [i.removeprefix("duetrl/") for i in TEXT_ENV_IDS]
        raise ValueError(f"env: expected one of {short}, got {name!r}")
    return full


def ask(count: int) -> int | None:
    """A command index typed by the player (None: quit), asked again until it is valid."""
    while True:
        try:
            answer = input("> ").strip()
        except EOFError:
            return None
        if answer.lower() in ("q", "quit"):
            return None
        if answer.isdigit() and int(answer) < count:
            return int(answer)
        print(f"type a number from 0 to {count - 1}, or q to quit")


def run(args: argparse.Namespace) -> int:
    import gymnasium as gym

    from duetrl.core.envs.text import show

    env = gym.make(env_id(args.env), split=args.split, reward=args.reward)
    observation, _ = env.reset(seed=args.seed)
    total, steps, done, info = 0.0, 0, False, {"success": False}
    while not done:
        print(show(observation))
        if args.oracle:
            action = env.unwrapped.oracle_action()
            print(f"> {action}")
        else:
            action = ask(len(observation["admissible"]))
            if action is None:
                print("quit")
                return 0
        command = observation["admissible"][action]
        observation, reward, terminated, truncated, info = env.step(action)
        total, steps, done = total + reward, steps + 1, terminated or truncated
        print(f"{command}: reward {reward:g}" + ("  (time is up)" if truncated else ""))
        print()
    print(observation["text"])
    print(f"success: {'yes' if info['success'] else 'no'}, return {total:g}, steps {steps}")
    return 0
