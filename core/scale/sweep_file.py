"""The sweep file: a TOML grid of training runs, read and checked before anything runs.

    [sweep]
    seeds = 10                     # seeds 0..9, or a list: [0, 3, 7]
    backends = ["torch", "tf"]
    max_retries = 2                # a failed or killed run is started again this many times
    time_limit_s = 900             # wall-clock limit of one run, all its attempts together
    threads_per_run = 1            # framework threads (and Ray CPUs) of each run

    [[run]]                        # one block per command; any number of blocks
    command = "train ppo"          # any command `duetrl train ALGO` or `duetrl rlhf train` takes
    env = "CartPole-v1"            # every other key is a flag, spelled as on the command line
    total-steps = 100000
    [run.grid]                     # the product of these lists
    learning-rate = [0.001, 0.0003]

Runs = blocks x grid points x backends x seeds. A block may override ``seeds``, ``backends``,
``max_retries`` and ``time_limit_s``, and give a ``name`` for its run ids. Each run's argv is
parsed by duetrl's own argument parser, which the caller hands in (``duetrl sweep`` passes
``duetrl.core.cli.build_parser()``: the library never imports its command line), so exactly
the flags the command accepts are accepted, and a mistake is reported with the file's line
number before a single run starts. The sweep
itself sets ``--out``, ``--seed``, ``--backend``, ``--threads``, ``--quiet``, ``--json`` and
(on a retry) ``--resume``.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import io
import itertools
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BACKEND_NAMES = ("torch", "tf")

SWEEP_KEYS = {"seeds", "backends", "max_retries", "time_limit_s", "threads_per_run"}
"""Keys of the ``[sweep]`` table."""

RUN_KEYS = {"command", "name", "seeds", "backends", "max_retries", "time_limit_s", "grid"}
"""Keys of a ``[[run]]`` block that are not command-line flags."""

MANAGED_FLAGS = ("--out", "--seed", "--backend", "--threads", "--quiet", "--json", "--resume")
"""Flags the sweep sets on every run; a sweepable command must accept all of them."""

MANAGED_HINT = {"seed": "seeds", "backend": "backends", "threads": "threads_per_run"}
"""Where in the sweep file a managed flag's value comes from instead."""


@dataclass(frozen=True)
class RunSpec:
    """One training run of a sweep.

    run_id: the run's folder name, e.g. ``"ppo-torch-s3-learning-rate0.001"``.
    command: e.g. ``"train ppo"`` or ``"rlhf train"``.
    argv: the command and its settings flags, without the flags the sweep manages.
    settings: ``{flag-name: value}`` of every flag the block sets (fixed and grid).
    line: the line of the run's ``[[run]]`` block in the sweep file.
    """

    run_id: str
    command: str
    algorithm: str
    backend: str
    seed: int
    env: str
    argv: tuple[str, ...]
    settings: dict[str, Any] = field(hash=False)
    max_retries: int
    time_limit_s: float | None
    line: int


@dataclass(frozen=True)
class SweepPlan:
    """A checked sweep file: its runs and the thread budget of each."""

    path: Path
    runs: tuple[RunSpec, ...]
    threads_per_run: int

    def setting_names(self) -> list[str]:
        """The swept settings, the ``setting.*`` columns: flags whose value (or absence) differs
        between runs of one algorithm. (A budget that differs only from one algorithm to the
        next is no column: the algorithm column already tells those runs apart.)"""
        names = sorted({name for run in self.runs for name in run.settings if name != "env"})
        groups: dict[tuple[str, str], list[RunSpec]] = {}
        for run in self.runs:
            groups.setdefault((run.command, run.algorithm), []).append(run)
        return [name for name in names if any(
            len({repr(run.settings.get(name)) for run in runs}) > 1 for runs in groups.values())]


class _Lines:
    """Line numbers of the keys of a sweep file (tomllib gives values, not positions)."""

    HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\" ]+?)\s*\]\]?\s*(#.*)?$")
    KEY = re.compile(r"^\s*(\"?)([A-Za-z0-9_\-]+)\1\s*=")

    def __init__(self, text: str) -> None:
        self.where: dict[tuple, int] = {}
        section: tuple = ("top", None)
        runs = -1
        for number, line in enumerate(text.splitlines(), start=1):
            header = self.HEADER.match(line)
            if header:
                name = header.group(2).replace('"', "").replace(" ", "")
                if name == "run" and header.group(1) == "[[":
                    runs += 1
                    section = ("run", runs)
                elif name == "run.grid":
                    section = ("grid", runs)
                else:
                    section = (name, None)
                self.where.setdefault((*section, None), number)
                continue
            key = self.KEY.match(line)
            if key:
                self.where.setdefault((*section, key.group(2)), number)

    def of(self, section: str, index: int | None, key: str | None = None) -> int:
        """The line of ``key`` in a section, else the section's header, else line 1."""
        candidates = [(section, index, key), (section, index, None)]
        if section == "grid":  # an inline grid = {...}, else the block's header
            candidates += [("run", index, "grid"), ("run", index, None)]
        for candidate in candidates:
            if candidate in self.where:
                return self.where[candidate]
        return 1


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def sweepable_commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> dict:
    """``{"train ppo": leaf parser, ...}``: every command that takes all the managed flags."""
    found = {}
    sub = _subparsers(parser)
    if sub is None:
        if all(flag in parser._option_string_actions for flag in MANAGED_FLAGS):
            found[" ".join(prefix)] = parser
        return found
    for name, child in sub.choices.items():
        if prefix or name != "compare":
            found.update(sweepable_commands(child, (*prefix, name)))
    return found


def _leaf_parser(root: argparse.ArgumentParser, command: Any, where: str,
                 sweepable: dict) -> argparse.ArgumentParser:
    """The parser of ``command`` (e.g. ``"train ppo"``), or a ValueError saying what is wrong."""
    if not isinstance(command, str) or not command.split():
        raise ValueError(f"{where}: command: expected a string such as \"train ppo\", "
                         f"got {command!r}")
    if command in sweepable:
        return sweepable[command]
    parser, words = root, command.split()
    for depth, word in enumerate(words):
        sub = _subparsers(parser)
        if sub is None:
            break
        if word not in sub.choices:
            kind = "algorithm" if depth > 0 and words[0] == "train" else "command"
            choices = sorted(sub.choices) if depth > 0 else sorted(
                {c.split()[0] for c in sweepable})
            raise ValueError(f"{where}: unknown {kind} {word!r} in command = {command!r}; "
                             f"choose from {', '.join(choices)}")
        parser = sub.choices[word]
    raise ValueError(f"{where}: command = {command!r} cannot be swept (it needs the flags "
                     f"{' '.join(MANAGED_FLAGS)}); sweepable: {', '.join(sweepable)}")


def _flag_argv(parser: argparse.ArgumentParser, name: str, value: Any) -> list[str]:
    """``--name value`` as the command line spells it; booleans as ``--name`` / ``--no-name``."""
    flag = "--" + name
    action = parser._option_string_actions[flag]
    if isinstance(value, bool):
        if isinstance(action, argparse.BooleanOptionalAction):
            return [flag if value else "--no-" + name]
        if action.nargs == 0:  # store_true: only True can be said
            return [flag] if value else []
    return [flag, str(value)]


def _parse_argv(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse with argparse, turning its exit into a ValueError that carries its message."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            return parser.parse_args(argv)
    except SystemExit:
        message = stderr.getvalue().strip().splitlines()
        text = message[-1] if message else "invalid arguments"
        raise ValueError(text.split("error: ", 1)[-1]) from None


def _seeds(value: Any, where: str) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return list(range(value))
    if (isinstance(value, list) and value and all(isinstance(s, int) and not isinstance(s, bool)
                                                  and s >= 0 for s in value)
            and len(set(value)) == len(value)):
        return list(value)
    raise ValueError(f"{where}: seeds: expected a positive number of seeds or a list of distinct "
                     f"integers >= 0, got {value!r}")


def _backends(value: Any, where: str) -> list[str]:
    if (isinstance(value, list) and value and all(v in BACKEND_NAMES for v in value)
            and len(set(value)) == len(value)):
        return list(value)
    raise ValueError(f"{where}: backends: expected a list of distinct names from "
                     f"{list(BACKEND_NAMES)}, got {value!r}")


def _count(value: Any, name: str, where: str, minimum: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= minimum:
        return value
    raise ValueError(f"{where}: {name}: expected an integer >= {minimum}, got {value!r}")


def _seconds(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    raise ValueError(f"{where}: time_limit_s: expected a number of seconds > 0, got {value!r}")


def _id_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


def load_sweep(path: str | Path, parser: argparse.ArgumentParser,
               threads_per_run: int | None = None, max_retries: int | None = None,
               time_limit_s: float | None = None) -> SweepPlan:
    """Read and check a sweep file; the keyword arguments override its ``[sweep]`` values.

    :param parser: the root parser of the command line (``duetrl.core.cli.build_parser()``):
        each run's command must be one of its sweepable commands, and its argv must parse.
    :raises FileNotFoundError: no file at ``path``.
    :raises ValueError: bad TOML, or a bad key, value, command or flag, naming its line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sweep file: no file at {str(path)!r}")
    text = path.read_text()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML: {error}") from None
    lines = _Lines(text)

    def at(section: str, index: int | None = None, key: str | None = None) -> str:
        return f"{path}:{lines.of(section, index, key)}"

    for key in data:
        if key not in ("sweep", "run"):
            raise ValueError(f"{at(key, None, None if isinstance(data[key], dict) else key)}: "
                             f"unknown table or key {key!r}; a sweep file has [sweep] and "
                             f"[[run]] blocks")
    sweep = data.get("sweep", {})
    if not isinstance(sweep, dict):
        raise ValueError(f"{at('top', None, 'sweep')}: sweep: expected a [sweep] table")
    for key in sweep:
        if key not in SWEEP_KEYS:
            raise ValueError(f"{at('sweep', None, key)}: unknown key {key!r} in [sweep]; "
                             f"expected one of {', '.join(sorted(SWEEP_KEYS))}")
    blocks = data.get("run")
    if not isinstance(blocks, list) or not blocks:
        raise ValueError(f"{path}: no [[run]] block; add one, e.g. [[run]] command = "
                         f"\"train ppo\"")
    seeds = _seeds(sweep.get("seeds", 1), at("sweep", None, "seeds"))
    backends = _backends(sweep.get("backends", ["torch"]), at("sweep", None, "backends"))
    retries = _count(sweep.get("max_retries", 1) if max_retries is None else max_retries,
                     "max_retries", at("sweep", None, "max_retries"), 0)
    limit = _seconds(sweep.get("time_limit_s") if time_limit_s is None else time_limit_s,
                     at("sweep", None, "time_limit_s"))
    threads = _count(sweep.get("threads_per_run", 1) if threads_per_run is None
                     else threads_per_run, "threads_per_run",
                     at("sweep", None, "threads_per_run"), 1)

    sweepable = sweepable_commands(parser)
    if not sweepable:
        raise ValueError(f"parser: expected the command line's root parser, with commands that "
                         f"take {', '.join(MANAGED_FLAGS)}; it has none")
    runs: list[RunSpec] = []
    for index, block in enumerate(blocks):
        runs.extend(_expand_block(index, block, parser, sweepable, at, seeds, backends, retries,
                                  limit, threads, time_limit_s is not None,
                                  max_retries is not None))
    first: dict[str, RunSpec] = {}
    for run in runs:
        if run.run_id in first:
            raise ValueError(f"{path}:{run.line}: run id {run.run_id!r} is also made by the "
                             f"block at line {first[run.run_id].line}; give one block a "
                             f"name = \"...\" or sweep the difference in [run.grid]")
        first[run.run_id] = run
    return SweepPlan(path, tuple(runs), threads)


def _expand_block(index: int, block: dict, root: argparse.ArgumentParser, sweepable: dict, at,
                  seeds: list[int], backends: list[str], retries: int, limit: float | None,
                  threads: int, limit_given: bool, retries_given: bool) -> list[RunSpec]:
    """The runs of one ``[[run]]`` block: grid points x backends x seeds, each argv parsed."""
    header = at("run", index)
    parser = _leaf_parser(root, block.get("command"), at("run", index, "command"), sweepable)
    command = " ".join(block["command"].split())
    grid = block.get("grid", {})
    if not isinstance(grid, dict):
        raise ValueError(f"{at('run', index, 'grid')}: grid: expected a [run.grid] table of "
                         f"lists")
    flags = {key: value for key, value in block.items() if key not in RUN_KEYS}
    known = {option[2:] for option in parser._option_string_actions if option.startswith("--")}
    for section, table in (("run", flags), ("grid", grid)):
        for key, value in table.items():
            where = at(section, index, key)
            if "--" + key in MANAGED_FLAGS:
                hint = MANAGED_HINT.get(key)
                raise ValueError(f"{where}: {key!r} is set by the sweep itself"
                                 + (f"; use {hint} instead" if hint else ""))
            if key not in known:
                close = difflib.get_close_matches(key.replace("_", "-"), sorted(known), n=1)
                raise ValueError(f"{where}: unknown setting {key!r} for {command!r}"
                                 + (f"; did you mean {close[0]!r}?" if close else
                                    f"; see duetrl {command} --help"))
            if section == "grid":
                if key in flags:
                    raise ValueError(f"{where}: {key!r} is both fixed (line "
                                     f"{at('run', index, key).rsplit(':', 1)[1]}) and in the "
                                     f"grid")
                if not isinstance(value, list) or not value or not all(map(_scalar, value)):
                    raise ValueError(f"{where}: grid {key}: expected a non-empty list of "
                                     f"values, got {value!r}")
            elif not _scalar(value):
                raise ValueError(f"{where}: {key}: expected a single value (string, number or "
                                 f"true/false), got {value!r}; lists go in [run.grid]")
    run_seeds = _seeds(block["seeds"], at("run", index, "seeds")) if "seeds" in block else seeds
    run_backends = (_backends(block["backends"], at("run", index, "backends"))
                    if "backends" in block else backends)
    run_retries = retries if retries_given or "max_retries" not in block else _count(
        block["max_retries"], "max_retries", at("run", index, "max_retries"), 0)
    run_limit = limit if limit_given or "time_limit_s" not in block else _seconds(
        block["time_limit_s"], at("run", index, "time_limit_s"))
    name = block.get("name")
    if name is not None and (not isinstance(name, str) or not _id_part(name).strip("_")):
        raise ValueError(f"{at('run', index, 'name')}: name: expected a non-empty string, got "
                         f"{name!r}")

    runs = []
    for point in itertools.product(*grid.values()):
        chosen = dict(zip(grid, point))
        settings = {**flags, **chosen}
        argv = command.split()
        for key, value in settings.items():
            argv += _flag_argv(parser, key, value)
        for backend in run_backends:
            for seed in run_seeds:
                managed = ["--out", "RUN_DIR", "--seed", str(seed), "--backend", backend,
                           "--threads", str(threads), "--quiet", "--json"]
                try:
                    args = _parse_argv(root, argv + managed)
                except ValueError as error:
                    bad = re.search(r"--([A-Za-z0-9-]+)", str(error))
                    key = bad.group(1) if bad else None
                    section = "grid" if key in chosen else "run"
                    where = at(section, index, key) if key in settings else header
                    raise ValueError(f"{where}: {error}") from None
                env = str(getattr(args, "env", None) or "")
                if env and "env" in settings:  # an unknown id fails here, not in 60 children
                    from duetrl.core.envs.vector import check_env_id

                    try:
                        check_env_id(env)
                    except ValueError as error:
                        raise ValueError(f"{at('run', index, 'env')}: {error}") from None
                algorithm = getattr(args, "algorithm", None) or _rlhf_algorithm(args)
                suffix = "".join(f"-{_id_part(k)}{_id_part(_text(v))}" for k, v in chosen.items())
                run_id = f"{_id_part(name or algorithm)}-{backend}-s{seed}{suffix}"
                runs.append(RunSpec(run_id, command, algorithm, backend, seed, env, tuple(argv),
                                    settings,
                                    run_retries, run_limit, int(header.rsplit(":", 1)[1])))
    return runs


def _rlhf_algorithm(args: argparse.Namespace) -> str:
    """``rlhf-<algo>`` for ``rlhf train`` (its ``--algo``, else RLHFSettings' default)."""
    algo = getattr(args, "algo", None)
    if algo is None:
        from duetrl.core.rlhf.train import RLHFSettings

        algo = RLHFSettings().algo
    return f"rlhf-{algo}"
