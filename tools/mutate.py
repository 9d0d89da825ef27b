"""Mutation testing of the numeric core: plant one small bug at a time, run the tests that own
the module, and count the bugs the tests caught.

    python tools/mutate.py                     every module of tools/mutation.toml, in turn
                                               (--all: the ones marked optional too)
    python tools/mutate.py tabular bandits     some of them (names from the toml)
    python tools/mutate.py --list              the modules, their tests and mutant counts
    python tools/mutate.py tabular --sample 20 time 20 mutants, to extrapolate (no score kept)
    python tools/mutate.py tabular --again     rerun only the last run's survivors and new names

Each mutant is one rewrite of tools/mutation_operators.py (``<`` for ``<=``, a sign, n + 1, a
mean for a max, a keyword dropped, ...). Its verdict:

    killed      the owning tests failed (or the module no longer imports)
    timeout     the tests ran past the limit (3 x the clean run + 10 s): a hang is noticed too
    survived    the tests passed: a bug no test sees (``uncovered``: no test even runs the line)
    equivalent  listed in tools/mutants_equivalent.toml with the reason no input can tell it
                apart; not run

    score = (killed + timeout) / (mutants - equivalent)

How it runs, and why not mutmut: mutmut 3 copies the sources into mutants/ and imports them
from there under their folder's name (``core.tabular``); duetrl is imported as
``duetrl.core.tabular`` through pyproject's package-dir mapping, so its tests never reach the
copies (mutmut 3.x stops with "could not find any test case for any mutant"). Here nothing is
copied and no file is touched (other people work in this checkout): this process imports torch
and TensorFlow once (9 s a pytest run otherwise), then forks one child per mutant; the child
puts an import hook in front of the editable install that compiles the mutated syntax tree
under the module's own name and file, and runs pytest on the owning tests (``-x``). A clean
traced run first checks the tests pass and records the lines they execute.

Scores go to tools/mutation_scores.json and the table of MUTATION.md; every verdict to
build/mutation/<module>.json.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import importlib.abc
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from mutation_operators import Mutant, list_mutants, mutated_tree  # noqa: E402
from mutation_report import write_report  # noqa: E402

CONFIG = ROOT / "tools" / "mutation.toml"
EQUIVALENTS = ROOT / "tools" / "mutants_equivalent.toml"
WORK = ROOT / "build" / "mutation"
PYTEST_ARGS = ["-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "--no-header"]


def import_name(path: str) -> str:
    """``core/rl/replay.py`` -> ``duetrl.core.rl.replay`` (pyproject's package-dir mapping)."""
    parts = list(Path(path).with_suffix("").parts)
    if parts[0] not in ("core", "backends"):
        raise ValueError(f"path: expected a module under core/ or backends/, got {path!r}")
    return ".".join(["duetrl", *parts])


class _MutantLoader(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves one module from a compiled (mutated) tree, under its own name and file."""

    def __init__(self, name: str, path: str, code) -> None:
        self.name, self.path, self.code = name, path, code

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        return importlib.util.spec_from_file_location(fullname, self.path, loader=self)

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        exec(self.code, module.__dict__)


def _child(module: dict, index: int, log: Path, trace_to: Path | None) -> None:
    """In the forked child: plant mutant ``index`` (-1: none), run the tests, exit with pytest's
    status. With ``trace_to``, write the module's executed lines there (the clean run)."""
    os.setpgid(0, 0)  # the tests' own children die with the child at a time-out
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    path = str(ROOT / module["path"])
    source = Path(path).read_text()
    tree = mutated_tree(source, index, *_scope(module))
    try:
        code = compile(tree, path, "exec", dont_inherit=True)
    except SyntaxError:  # a mutant Python refuses to compile is caught at once
        os._exit(1)
    sys.meta_path.insert(0, _MutantLoader(import_name(module["path"]), path, code))
    lines: set[int] = set()
    if trace_to is not None:

        def local(frame, event, arg):
            if event == "line":
                lines.add(frame.f_lineno)
            return local

        sys.settrace(lambda frame, event, arg: local if frame.f_code.co_filename == path else None)
    import pytest

    status = pytest.main([*module["tests"], *PYTEST_ARGS, *module.get("pytest_args", [])])
    sys.settrace(None)
    if trace_to is not None:
        trace_to.write_text(json.dumps(sorted(lines)))
    sys.stdout.flush()
    os._exit(int(status))


def _start(module: dict, index: int, log: Path, trace_to: Path | None = None) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            _child(module, index, log, trace_to)
        finally:
            os._exit(3)
    return pid


def _finish(pid: int, started: float, limit_s: float) -> tuple[int | None, float]:
    """Wait for child ``pid``: (its exit status, or None when killed at ``limit_s``; seconds)."""
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            return code, time.monotonic() - started
        if time.monotonic() - started > limit_s:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None, time.monotonic() - started
        time.sleep(0.02)


def _preload(names: list[str]) -> None:
    """Import the heavy libraries once, here, so every forked child starts with them."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("MPLBACKEND", "Agg")
    for name in names:
        __import__(name)


def _scope(module: dict) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(functions, exclude) of a module's entry: what is mutated, what is left alone."""
    return tuple(module.get("functions", ())), tuple(module.get("exclude", ()))


def _verdict(code: int | None) -> str:
    return "timeout" if code is None else "survived" if code == 0 else "killed"


def run_module(
    name: str,
    module: dict,
    equivalents: dict[str, str],
    jobs: int,
    sample: int = 0,
    again: bool = False,
) -> dict:
    """Every mutant of one module; returns its record (verdicts, counts, timings)."""
    WORK.mkdir(parents=True, exist_ok=True)
    source = (ROOT / module["path"]).read_text()
    mutants = list_mutants(source, *_scope(module))
    started = time.monotonic()
    trace = WORK / f"{name}.lines.json"
    code, clean_s = _finish(
        _start(module, -1, WORK / f"{name}.clean.log", trace),
        started,
        module.get("clean_limit_s", 900),
    )
    if code != 0:
        raise SystemExit(
            f"{name}: the tests fail without any mutant (exit {code}); see "
            f"{WORK / f'{name}.clean.log'}"
        )
    covered = set(json.loads(trace.read_text()))
    limit_s = 3 * clean_s + 10
    previous = {}
    if again and (WORK / f"{name}.json").is_file():
        previous = {
            m["name"]: m for m in json.loads((WORK / f"{name}.json").read_text())["verdicts"]
        }
    todo: list[Mutant] = []
    verdicts: dict[int, dict] = {}
    for mutant in mutants:
        old = previous.get(mutant.name)
        if mutant.name in equivalents:
            verdicts[mutant.index] = {"status": "equivalent", "seconds": 0.0}
        elif mutant.line not in covered and mutant.statement_line not in covered:
            verdicts[mutant.index] = {"status": "survived", "uncovered": True, "seconds": 0.0}
        elif old and old["status"] in ("killed", "timeout"):
            verdicts[mutant.index] = {**old, "seconds": 0.0}
        else:
            todo.append(mutant)
    if sample:
        todo = todo[:: max(1, len(todo) // sample)][:sample]
    print(
        f"{name}: {len(mutants)} mutants, {len(todo)} to run, clean run {clean_s:.1f} s, "
        f"limit {limit_s:.0f} s each",
        flush=True,
    )
    running: dict[int, tuple[Mutant, float]] = {}
    queue = list(todo)
    while queue or running:
        while queue and len(running) < jobs:
            mutant = queue.pop(0)
            running[_start(module, mutant.index, Path(os.devnull))] = (mutant, time.monotonic())
        time.sleep(0.02)
        for pid, (mutant, t0) in list(running.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            if not done and time.monotonic() - t0 <= limit_s:
                continue
            if not done:  # past the limit: the child and the tests' own children
                os.killpg(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            running.pop(pid)
            code = os.waitstatus_to_exitcode(status) if done else None
            verdicts[mutant.index] = {
                "status": _verdict(code),
                "code": code,
                "seconds": round(time.monotonic() - t0, 2),
            }
            if code == 0:
                print(f"  survived: {mutant.name}", flush=True)
    # the checkout is shared: a file broken by someone else mid-run fails every mutant, which
    # would pass for a perfect score. The clean tests must still pass at the end.
    code, _ = _finish(_start(module, -1, WORK / f"{name}.clean.log"), time.monotonic(), limit_s)
    if code != 0:
        raise SystemExit(
            f"{name}: the tests failed without any mutant at the end of the run "
            f"(exit {code}; see {WORK / f'{name}.clean.log'}): no score kept"
        )
    record = _record(
        name, module, mutants, verdicts, equivalents, source, time.monotonic() - started, clean_s
    )
    if sample:
        ran = [verdicts[m.index]["seconds"] for m in todo]
        record["sample_mean_s"] = sum(ran) / max(1, len(ran))
    return record


def _record(name, module, mutants, verdicts, equivalents, source, wall_s, clean_s) -> dict:
    listed = [
        {"name": m.name, "line": m.line, **verdicts[m.index]}
        for m in mutants
        if m.index in verdicts
    ]
    count = {
        s: sum(v["status"] == s for v in listed)
        for s in ("killed", "timeout", "survived", "equivalent")
    }
    names = {m.name for m in mutants}
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "module": name,
        "path": module["path"],
        "tests": module["tests"],
        "functions": module.get("functions", []),
        "mutants": len(mutants),
        **count,
        "uncovered": sum(bool(v.get("uncovered")) for v in listed),
        "score": (count["killed"] + count["timeout"]) / max(1, len(mutants) - count["equivalent"]),
        "wall_s": round(wall_s, 1),
        "clean_s": round(clean_s, 1),
        "source_sha1": hashlib.sha1(source.encode()).hexdigest()[:12],
        "commit": commit,
        "date": datetime.date.today().isoformat(),
        "survivors": [v["name"] for v in listed if v["status"] == "survived"],
        "stale_equivalents": sorted(set(equivalents) - names),
        "verdicts": listed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="names from tools/mutation.toml (all)")
    parser.add_argument("--jobs", type=int, default=1, help="mutants run at once (1)")
    parser.add_argument("--list", action="store_true", help="list modules and mutant counts")
    parser.add_argument("--all", action="store_true", help="the optional modules too")
    parser.add_argument("--sample", type=int, default=0, help="run only N mutants, keep no score")
    parser.add_argument(
        "--again",
        action="store_true",
        help="rerun only the last run's survivors (and mutants it did not have)",
    )
    args = parser.parse_args(argv)
    config = tomllib.loads(CONFIG.read_text())
    modules = config["module"]
    unknown = sorted(set(args.modules) - set(modules))
    if unknown:
        parser.error(f"modules: unknown {unknown}; expected names from {sorted(modules)}")
    chosen = args.modules or [n for n, m in modules.items() if args.all or not m.get("optional")]
    equivalents = tomllib.loads(EQUIVALENTS.read_text()) if EQUIVALENTS.is_file() else {}
    if args.list:
        for name in chosen:
            m = modules[name]
            count = len(list_mutants((ROOT / m["path"]).read_text(), *_scope(m)))
            print(f"{name:24s} {count:4d} mutants  {m['path']}  <- {' '.join(m['tests'])}")
        return 0
    _preload(config.get("preload", []))
    for name in chosen:
        record = run_module(
            name, modules[name], equivalents.get(name, {}), args.jobs, args.sample, args.again
        )
        summary = {
            k: record[k]
            for k in (
                "mutants",
                "killed",
                "timeout",
                "survived",
                "equivalent",
                "uncovered",
                "wall_s",
            )
        }
        print(f"{name}: score {record['score']:.1%} {summary}", flush=True)
        if args.sample:
            print(f"{name}: {record['sample_mean_s']:.2f} s a mutant on average", flush=True)
            continue
        (WORK / f"{name}.json").write_text(json.dumps(record, indent=1))
        write_report(name, record, equivalents)
    return 0


if __name__ == "__main__":
    sys.exit(main())
