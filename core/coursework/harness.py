"""The child process that runs a student's code: ``python -m duetrl.core.coursework.harness``.

It never sees a reference answer. The grader hands it a scratch folder holding ``job.json``
(the calls to make, no expected values) and ``inputs.npz``; it writes each call's outputs to
``out/<test id>.npz`` and one JSON line per event to the file descriptor it is given:

    {"event": "ready"}                                   the submission imported
    {"event": "start", "id": ...}                        a test begins
    {"event": "done", "id": ..., "status": "ok" | "error", "message": ..., "seconds": ...}
    {"event": "load_error", "message": ...}              the submission could not be imported

    {"event": "refused", "message": ...}                 the guard refused something

Before the submission is imported: the framework is loaded, the address space is capped
(``resource.RLIMIT_AS``: what the framework took plus ``memory_mb``), and the guard
(:mod:`duetrl.core.coursework.guard`: an audit hook, an import guard, the solution neutered)
puts the solution, the oracle, the grader and the hidden files out of reach.
Each test has its own time limit (``signal.setitimer``), never more than what is left of the
submission's budget (``budget_s``, shared by all its tests and its import); the grader's wall
clock backs both up.
"""

from __future__ import annotations

import builtins
import importlib.util
import json
import os
import re
import resource
import signal
import sys
import time
import traceback
from pathlib import Path

import numpy as np


class TestTimeout(BaseException):
    """Raised in the student's code when a test's time is up (not an Exception: a bare
    ``except Exception`` in the submission cannot swallow it)."""


def _on_alarm(signum, frame):
    raise TestTimeout()


def _vm_size_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _limit_memory(memory_mb: float) -> None:
    if memory_mb <= 0:
        return
    limit = int((_vm_size_mb() + memory_mb) * 2**20)
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def install_import_guard(submission: str, forbidden_prefixes: list[str],
                         forbidden_names: list[str]) -> None:
    """Friendlier messages for the submission's own import statements (the guarantee is
    :mod:`duetrl.core.coursework.guard`): the solution, its names, import tools."""
    original = builtins.__import__
    blocked_tools = ("importlib", "ctypes", "subprocess", "socket", "multiprocessing", "gc",
                     "inspect")
    names = set(forbidden_names)

    def guarded(name, globals=None, locals=None, fromlist=(), level=0):
        if globals is not None and globals.get("__file__") == submission and level == 0:
            full = [name] + [f"{name}.{item}" for item in (fromlist or ())]
            if any(f == p or f.startswith(p + ".") for f in full for p in forbidden_prefixes):
                raise ImportError(f"{name}: a submission may not import the solution")
            if name.startswith("duetrl") and names.intersection(fromlist or ()):
                raise ImportError(f"{name}: a submission may not import the solution's names")
            if name.split(".")[0] in blocked_tools:
                raise ImportError(f"{name}: not available to a submission")
        return original(name, globals, locals, fromlist, level)

    builtins.__import__ = guarded


_NUMBER = re.compile(r"-?\d+\.\d+(e[-+]?\d+)?")


def describe_error(error: BaseException, submission: str) -> str:
    """``Type: message (line N of your file, in f)`` with decimal numbers masked."""
    if isinstance(error, TestTimeout):
        return "time limit: your code did not finish in time (an infinite loop?)"
    if isinstance(error, MemoryError):
        return "memory limit: your code asked for more memory than the grader allows"
    message = _NUMBER.sub("…", str(error))[:240]
    where = ""
    frames = list(traceback.walk_tb(error.__traceback__))  # no source read (linecache)
    for frame, line in reversed(frames):
        if frame.f_code.co_filename == submission:
            where = f" (line {line} of your file, in {frame.f_code.co_name})"
            break
    return f"{type(error).__name__}: {message}{where}"


# ---- the calls -----------------------------------------------------------------------------


def _outputs(result) -> dict[str, np.ndarray]:
    from duetrl.core.tolerances import to_numpy

    if isinstance(result, tuple | list):
        return {str(i): to_numpy(r) for i, r in enumerate(result)}
    return {"0": to_numpy(result)}


def _args(call: dict, arrays: dict, backend) -> list:
    return [backend.as_tensor(arrays[a["array"]]) if isinstance(a, dict) else a
            for a in call["args"]]


def _prefixed(arrays: dict, prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


def run_call(call: dict, arrays: dict, module, backend) -> dict[str, np.ndarray]:
    """Run one call of the job; returns named NumPy outputs."""
    from duetrl.core.tolerances import to_numpy

    kind = call["kind"]
    if kind == "call":
        return _outputs(getattr(module, call["function"])(*_args(call, arrays, backend)))
    if kind == "grad":
        function = getattr(module, call["function"])
        positions = [i for i, a in enumerate(call["args"]) if isinstance(a, dict)]

        def loss_fn(*tensors):
            args = list(call["args"])
            for i, tensor in zip(positions, tensors):
                args[i] = tensor
            return function(*args)

        inputs = [arrays[call["args"][i]["array"]] for i in positions]
        loss, _, grads = backend.loss_and_gradients(backend.ValueNet(1, 1, "float64"), loss_fn,
                                                    *inputs)
        return {"0": np.asarray(loss), "grad": grads[0] if grads[0] is not None else np.nan}
    if kind == "mha":
        layer = module.MultiHeadAttention(call["d_model"], call["num_heads"], dtype="float64")
        backend.import_params(layer, _prefixed(arrays, "param:"))
        return _outputs(layer(*_args(call, arrays, backend)))
    if kind == "lm_policy":  # a float64 GPT and value head with the case's weights
        from duetrl.core.interfaces.gpt_config import GPTConfig

        config = GPTConfig(**call["config"])
        model = backend.GPT(config, dtype="float64")
        backend.import_params(model, _prefixed(arrays, "gpt:"))
        head = backend.ValueHead(config.n_embd, dtype="float64")
        backend.import_params(head, _prefixed(arrays, "head:"))
        return _outputs(module.agent_outputs(model, head, *_args(call, arrays, backend)))
    if kind == "gpt":  # module.function(model, *args) on a float64 GPT with the case's weights
        from duetrl.core.interfaces.gpt_config import GPTConfig

        model = backend.GPT(GPTConfig(**call["config"]), dtype="float64")
        backend.import_params(model, _prefixed(arrays, "gpt:"))
        return _outputs(getattr(module, call["function"])(model, *_args(call, arrays, backend)))
    if kind == "agent":
        from duetrl.core.interfaces.rl_settings import make_settings

        settings = make_settings(call["algorithm"], **call["settings"])
        agent = backend.Agent(call["algorithm"], call["state_dim"], call["action_dim"], False,
                              settings, "float64")
        agent.algorithm_module = module  # the framework's agent, the student's functions
        backend.import_params(agent, _prefixed(arrays, "param:"))
        rollout = {**_prefixed(arrays, "rollout:"), "learning_rate": call["learning_rate"]}
        op = call["op"]
        if op in ("prepare", "prepare_with_baseline"):
            tensors, _ = agent.to_tensors(rollout)
            batch = getattr(module, op)(agent, tensors)
            keys = ("advantages", "returns") if op == "prepare_with_baseline" else ("advantages",)
            return {k: to_numpy(batch[k]) for k in keys}
        if op == "compute_loss":
            batch = {k: agent.as_tensor(v) for k, v in _prefixed(arrays, "batch:").items()}
            loss, _ = module.compute_loss(agent, batch)
            return {"loss": to_numpy(loss)}
        module.update(agent, rollout)
        return {f"param:{k}": v for k, v in backend.export_params(agent).items()}
    if kind == "learn":
        from duetrl.core.interfaces.rl_settings import make_settings
        from duetrl.core.rl.train import PolicyGradientTrainer

        settings = make_settings(call["algorithm"], **call["settings"])
        trainer = PolicyGradientTrainer(call["algorithm"], call["env_id"], backend.NAME,
                                        settings, seed=call["seed"],
                                        total_steps=call["budget_steps"])
        trainer.agent.algorithm_module = module
        start = time.perf_counter()
        while trainer.env_steps < call["budget_steps"] and not trainer.solved(call["target"]):
            trainer.step()
        trainer.close()
        return {**{f"param:{k}": v for k, v in trainer.params().items()},
                "env_steps": np.asarray(trainer.env_steps),
                "mean_return": np.asarray(trainer.mean_return()),
                "seconds": np.asarray(time.perf_counter() - start)}
    raise ValueError(f"call kind: unknown {kind!r}")


BUDGET_SPENT = ("not run: your code used up the submission's time budget ({budget:g} s for all "
                "its tests; a test ran out of time earlier)")
"""The message of a test not run because the tests before it used the whole budget."""


def main(argv: list[str]) -> int:
    scratch, channel_fd = Path(argv[0]), int(argv[1])
    channel = os.fdopen(channel_fd, "w", buffering=1)

    def send(**event) -> None:
        channel.write(json.dumps(event) + "\n")
        channel.flush()

    job = json.loads((scratch / "job.json").read_text())
    with np.load(scratch / "inputs.npz", allow_pickle=False) as data:
        inputs = {k: data[k] for k in data.files}
    from duetrl.core.backend import load_backend

    backend = load_backend(job["backend"])
    backend.set_num_threads(1)
    import gymnasium  # noqa: F401  (everything the calls need, before the doors close)

    import duetrl.core.envs  # noqa: F401
    import duetrl.core.rl.train  # noqa: F401
    from duetrl.core.coursework import guard
    from duetrl.core.tolerances import to_numpy  # noqa: F401

    out_dir = scratch / "out"
    out_dir.mkdir(exist_ok=True)
    submission = job["submission"]
    budget = float(job.get("budget_s") or float("inf"))
    spent = 0.0
    _limit_memory(job["memory_mb"])
    guard.install(protected=job["protected_modules"], forbidden_names=job["forbidden_names"],
                  read_blocked=job["read_blocked"], protected_files=job["protected_files"],
                  write_blocked=job["write_blocked"], channel_fd=channel_fd)
    del guard
    install_import_guard(submission, job["forbidden_modules"], job["forbidden_names"])
    signal.signal(signal.SIGALRM, _on_alarm)
    start = time.perf_counter()
    try:
        signal.setitimer(signal.ITIMER_REAL, max(min(job["load_timeout_s"], budget), 0.01))
        spec = importlib.util.spec_from_file_location(job["module_name"], submission)
        module = importlib.util.module_from_spec(spec)
        sys.modules[job["module_name"]] = module
        spec.loader.exec_module(module)
        signal.setitimer(signal.ITIMER_REAL, 0)
    except BaseException as error:  # noqa: BLE001  (anything the submission raises on import)
        signal.setitimer(signal.ITIMER_REAL, 0)
        send(event="load_error", message=describe_error(error, submission))
        return 0
    spent += time.perf_counter() - start
    send(event="ready")
    for test in job["tests"]:
        test_id = test["id"]
        left = budget - spent
        if left <= 0:
            send(event="done", id=test_id, status="error", seconds=0.0,
                 message=BUDGET_SPENT.format(budget=budget))
            continue
        arrays = {k.split("|", 1)[1]: v for k, v in inputs.items()
                  if k.startswith(test_id + "|")}
        limit = min(float(test["timeout_s"]), left)
        send(event="start", id=test_id, limit_s=limit)
        start = time.perf_counter()
        try:
            signal.setitimer(signal.ITIMER_REAL, limit)
            outputs = run_call(test["call"], arrays, module, backend)
            signal.setitimer(signal.ITIMER_REAL, 0)
            np.savez(out_dir / f"{test_id}.npz", **outputs)
            status, message = "ok", ""
        except BaseException as error:  # noqa: BLE001  (a failed test, never a crash)
            signal.setitimer(signal.ITIMER_REAL, 0)
            if isinstance(error, KeyboardInterrupt):
                raise
            status, message = "error", describe_error(error, submission)
            if isinstance(error, TestTimeout) and limit < float(test["timeout_s"]):
                message += f" (the submission's time budget of {budget:g} s ran out)"
        seconds = time.perf_counter() - start
        spent += seconds
        send(event="done", id=test_id, status=status, message=message, seconds=seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
