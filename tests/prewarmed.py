"""Run a Python script as ``python script.py`` would, in a fresh process that starts with PyTorch
and TensorFlow already imported: the tests' stand-in for ``subprocess.run([sys.executable, ...])``.

Importing both frameworks costs ~9 s of CPU per interpreter; the tutorials and the book's
snippets are 90+ scripts, each run in its own interpreter so that nothing one leaves behind
(a seed, a graph, a figure) reaches the next. Here one *zygote* process per test process
imports torch, then TensorFlow (the order ``duetrl.core.backend`` keeps) and matplotlib, and
``fork()`` s one child per script: the child gets its own memory, folder, environment and
standard streams, runs the script as ``__main__`` and exits with the status Python would
give. What differs from a fresh interpreter: the preloaded modules are already in
``sys.modules`` and read their environment variables when the zygote started (a script that
sets ``TF_CPP_MIN_LOG_LEVEL`` itself sees no change). ``tools/mutate.py`` forks the same way.

Protocol (the zygote's stdin and stdout, one JSON line each way): a request ``{argv, cwd, env,
stdout, stderr}`` (output file paths); the zygote answers ``{"pid": ...}`` when the child has
started and ``{"status": ...}`` when it has ended.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ZYGOTE = r"""
import atexit, json, os, runpy, sys, traceback
os.environ.setdefault("OMP_NUM_THREADS", "1")  # two test workers on two cores
import torch
import tensorflow
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot

def child(request):
    os.setsid()  # its own process group: a time-out kills what it started too
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    for fd, path, mode in ((0, os.devnull, os.O_RDONLY),
                           (1, request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                           (2, request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
        os.dup2(os.open(path, mode), fd)
    argv = request["argv"]
    status = 0
    try:
        if argv[0] == "-c":
            sys.argv = ["-c", *argv[2:]]
            sys.path.insert(0, "")
            exec(compile(argv[1], "<string>", "exec"), {"__name__": "__main__"})
        elif argv[0] == "-m":
            sys.argv = argv[1:]
            sys.path.insert(0, os.getcwd())
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = list(argv)
            sys.path.insert(0, os.path.dirname(os.path.abspath(argv[0])))
            runpy.run_path(argv[0], run_name="__main__")
    except SystemExit as stop:
        if stop.code is None:
            status = 0
        elif isinstance(stop.code, int):
            status = stop.code
        else:
            print(stop.code, file=sys.stderr)
            status = 1
    except BaseException:
        traceback.print_exc()
        status = 1
    try:
        atexit._run_exitfuncs()  # what a normal interpreter exit runs (Ray's shutdown...)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)

for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        try:
            child(request)
        finally:
            os._exit(70)
    print(json.dumps({"pid": pid}), flush=True)
    _, wait_status = os.waitpid(pid, 0)
    print(json.dumps({"status": os.waitstatus_to_exitcode(wait_status)}), flush=True)
"""

_zygote: subprocess.Popen | None = None


def _start_zygote() -> subprocess.Popen:
    global _zygote
    if _zygote is None or _zygote.poll() is not None:
        env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "2",
               "MPLBACKEND": "Agg"}
        _zygote = subprocess.Popen([sys.executable, "-c", ZYGOTE], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, text=True, env=env, bufsize=1)
    return _zygote


def _answer(zygote: subprocess.Popen, timeout: float | None) -> dict | None:
    """The zygote's next JSON line, or None when ``timeout`` seconds pass first."""
    ready, _, _ = select.select([zygote.stdout], [], [], timeout)
    if not ready:
        return None
    line = zygote.stdout.readline()
    if not line:
        raise RuntimeError("the prewarmed interpreter (tests/prewarmed.py) died")
    return json.loads(line)


def run_python(argv: list[str], *, cwd: str | Path, env: dict[str, str],
               timeout: float) -> subprocess.CompletedProcess:
    """``subprocess.run([sys.executable, *argv], cwd=cwd, env=env, capture_output=True,
    text=True, timeout=timeout)``, run in a forked child of the prewarmed zygote.

    ``argv``: a script and its arguments, ``["-c", code, ...]`` or ``["-m", module, ...]``.
    Raises ``subprocess.TimeoutExpired`` (after killing the child's process group) as
    ``subprocess.run`` does.
    """
    try:
        return _run(_start_zygote(), argv, cwd, env, timeout)
    except BaseException:
        _stop_zygote()  # a request cut short (Ctrl-C, a broken pipe) leaves its answers unread
        raise


def _stop_zygote() -> None:
    global _zygote
    if _zygote is not None:
        _zygote.kill()
        _zygote.wait()
        _zygote = None


def _run(zygote: subprocess.Popen, argv: list[str], cwd: str | Path, env: dict[str, str],
         timeout: float) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="prewarmed-") as scratch:
        out, err = Path(scratch) / "stdout", Path(scratch) / "stderr"
        request = {"argv": [str(a) for a in argv], "cwd": str(cwd), "env": dict(env),
                   "stdout": str(out), "stderr": str(err)}
        zygote.stdin.write(json.dumps(request) + "\n")
        zygote.stdin.flush()
        pid = _answer(zygote, None)["pid"]  # the zygote's imports happen before this answer
        ended = _answer(zygote, timeout)
        if ended is None:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _answer(zygote, None)
            raise subprocess.TimeoutExpired([sys.executable, *argv], timeout,
                                            out.read_bytes(), err.read_bytes())
        return subprocess.CompletedProcess(
            [sys.executable, *argv], ended["status"],
            out.read_text(errors="replace"), err.read_text(errors="replace"))
