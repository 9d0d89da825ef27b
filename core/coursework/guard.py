"""The guard of the submission's process: the solution out of reach at run time, whatever the route.

Installed by the harness (:mod:`duetrl.core.coursework.harness`) after the framework and every
module the calls need have loaded, and before the submission is imported. A scan of names
(:mod:`duetrl.core.coursework.integrity`) is only the friendly first message; this is the
guarantee. What holds an answer ("protected"):

* the float64 oracle, ``duetrl.core.reference`` (except the host-side helpers the framework's
  own training loop calls: the initial weights), the grader (``duetrl.core.coursework``), and the
  assignment's solution modules (``duetrl.backends.<b>.<module>`` for its ``forbidden_modules``);
* any function of the project named in the assignment's ``forbidden_names`` (a ready-made
  version of what the student writes, wherever it lives).

What the guard does, in this order:

1. **Neuters** what is already loaded: every function and method of a protected module (and
   every forbidden-named function of the project) gets a body that raises ``PermissionError``
   (``func.__code__`` replaced), so no route to the object (``sys.modules``, a package's
   re-export, ``__globals__``, ``__subclasses__``, a frame, ``gc``) reaches working code.
2. **Hides** the protected modules: ``sys.modules`` and the parent packages hold a stub whose
   every attribute is refused; ``__main__`` (the harness) is replaced by an empty module.
3. **Refuses imports**: a ``sys.meta_path`` finder refuses the protected modules and any
   ``duetrl`` module the grader did not load; the audit hook refuses the ``import`` event of
   the same names, whatever removed the finder.
4. **An audit hook** (PEP 578; it cannot be removed) refuses: ``open`` of a protected file
   (the solution's and the oracle's sources and their ``.pyc``, the grader's, the hidden
   folders: by resolved path, whatever name was computed), ``compile``/``exec`` of code that
   claims a protected file, listing a hidden folder, ``gc`` object hunting, ``ctypes``, and
   (as before) starting programs, sockets and writing outside the sandbox.

Every refusal is reported on the grader's channel the moment it happens (``{"event":
"refused"}``): the grader fails the running test at 0 with the refusal's message even if the
submission catches the ``PermissionError``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import json
import linecache
import os
import sys
import types

RUNTIME_NEEDS = ("duetrl.core.reference.policy", "duetrl.core.reference.functional",
                 "duetrl.core.reference.dqn")
"""Oracle modules the framework's own code calls at run time (the seeded initial weights of
``core/rl/train.py``): hidden from the submission's imports, left working (no answer there)."""

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_MUTATING_EVENTS = {"os.remove", "os.rename", "os.rmdir", "shutil.rmtree", "os.replace",
                    "os.truncate", "os.chmod", "os.chown", "os.link", "os.symlink", "os.mkdir",
                    "os.utime"}
_PROGRAM_EVENTS = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
                   "os.fork", "os.forkpty", "pty.spawn", "socket.connect", "socket.bind",
                   "os.startfile", "os.kill", "os.killpg"}
_HUNTING_EVENTS = {"gc.get_objects", "gc.get_referrers", "gc.get_referents",
                   "sys._current_frames", "sys.setprofile", "sys.settrace"}
REFUSED_EVENT = "duetrl.coursework.refused"
"""The audit event a neutered function raises when called (the hook reports and refuses it)."""
_LISTING_EVENTS = {"os.listdir", "os.scandir", "glob.glob", "os.walk"}


def matches(name: str, prefixes) -> bool:
    """``name`` is one of ``prefixes`` or a submodule of one."""
    return any(name == p or name.startswith(p + ".") for p in prefixes)


class Refused(types.ModuleType):
    """What ``sys.modules`` holds in place of a protected module: every attribute is refused."""

    def __getattr__(self, attribute):
        if attribute.startswith("__") and attribute.endswith("__"):
            raise AttributeError(attribute)  # quiet: libraries walk sys.modules (inspect)
        message = f"the grader does not let a submission use {self.__name__} (it holds the " \
                  "solution)"
        sys.audit(REFUSED_EVENT, message)  # the hook reports it to the grader, and raises
        raise PermissionError(message)


def _refusing_code(name: str, free_vars: int) -> types.CodeType:
    cells = [f"_c{i}" for i in range(free_vars)]
    message = f"the grader does not let a submission run {name} (the solution)"
    lines = ["def outer():"] + [f"    {c} = None" for c in cells] + [
        "    def refused(*args, **kwargs):"]
    if cells:
        lines.append(f"        ({', '.join(cells)},)")
    lines += ["        import sys",  # the audit hook reports it to the grader, and raises
              f"        sys.audit({REFUSED_EVENT!r}, {message!r})",
              f"        raise PermissionError({message!r})", "    return refused"]
    scope: dict = {}
    exec(compile("\n".join(lines), "<refused>", "exec"), scope)  # noqa: S102  (our own text)
    return scope["outer"]().__code__


def _neuter_function(function, done: set) -> None:
    if id(function) in done:
        return
    done.add(id(function))
    try:
        function.__code__ = _refusing_code(function.__qualname__,
                                           len(function.__code__.co_freevars))
    except (AttributeError, TypeError, ValueError):
        pass
    wrapped = getattr(function, "__wrapped__", None)
    if isinstance(wrapped, types.FunctionType):
        _neuter_function(wrapped, done)


def neuter(obj, done: set, depth: int = 0) -> None:
    """Replace the body of ``obj`` (a function, or every method of a class) with a refusal."""
    if depth > 3 or id(obj) in done:
        return
    if isinstance(obj, types.FunctionType):
        _neuter_function(obj, done)
        return
    if isinstance(obj, staticmethod | classmethod):
        neuter(obj.__func__, done, depth + 1)
        return
    if isinstance(obj, property):
        for accessor in (obj.fget, obj.fset, obj.fdel):
            if accessor is not None:
                neuter(accessor, done, depth + 1)
        return
    if isinstance(obj, type):
        done.add(id(obj))
        for value in list(vars(obj).values()):
            neuter(value, done, depth + 1)
        return
    inner = getattr(obj, "python_function", None) or getattr(obj, "__wrapped__", None)
    if isinstance(inner, types.FunctionType):  # tf.function, functools wrappers
        _neuter_function(inner, done)


def _defined_in(obj, prefixes) -> bool:
    try:
        module = obj.__module__
    except Exception:  # noqa: BLE001  (a foreign object's property)
        return False
    return isinstance(module, str) and matches(module, prefixes)


def _resolve(path) -> str | None:
    try:
        return os.path.realpath(os.fsdecode(path))
    except (TypeError, ValueError):
        return None


def _inside(real: str | None, roots) -> bool:
    return real is not None and any(
        real == r or real.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


class _ImportGuard(importlib.abc.MetaPathFinder):
    """First on ``sys.meta_path``: refuses protected modules and unloaded ``duetrl`` ones."""

    def __init__(self, refuse) -> None:
        self._refuse = refuse

    def find_spec(self, fullname, path=None, target=None):
        self._refuse(fullname)
        return None


def install(*, protected: list[str], forbidden_names: list[str], read_blocked: list[str],
            protected_files: list[str], write_blocked: list[str], channel_fd: int) -> None:
    """Install the guard; from here on the process runs untrusted code.

    :param protected: module prefixes that hold an answer (neutered, hidden, refused).
    :param forbidden_names: the project's functions of these names are neutered too.
    :param read_blocked: folders that may not be read or listed (hidden tests, results).
    :param protected_files: files and folders that may not be read (the solution's sources).
    :param write_blocked: folders that may not be changed.
    :param channel_fd: where each refusal is reported as a JSON line.
    """
    protected = list(protected)
    names = set(forbidden_names)
    done: set = set()
    hidden = [m for m in sorted(sys.modules) if matches(m, protected)]
    for name in hidden:  # 1. neuter what is loaded
        module = sys.modules.get(name)
        if module is None or matches(name, RUNTIME_NEEDS + (__package__,)):
            continue  # this guard and the harness keep working: they hold no answer
        for value in list(vars(module).values()):
            if _defined_in(value, [name]):
                neuter(value, done)
    for name, module in list(sys.modules.items()):
        if not name.startswith("duetrl") or module is None:
            continue
        for attribute, value in list(vars(module).items()):
            if attribute in names and _defined_in(value, ["duetrl"]):
                neuter(value, done)
    explicit = [p for p in protected if p not in sys.modules]  # loaded later by the framework's
    for name in hidden + explicit:  # 2. hide                   own code (Agent's algorithm)
        stub = Refused(name)
        sys.modules[name] = stub
        parent, _, child = name.rpartition(".")
        if parent in sys.modules and not isinstance(sys.modules[parent], Refused):
            try:
                setattr(sys.modules[parent], child, stub)
            except (AttributeError, TypeError):
                pass
    for name, module in list(sys.modules.items()):
        if name.startswith("duetrl") and not isinstance(module, Refused) and module is not None:
            for attribute, value in list(vars(module).items()):
                if isinstance(value, types.ModuleType) and matches(
                        getattr(value, "__name__", ""), protected):
                    setattr(module, attribute, sys.modules.get(value.__name__, Refused(
                        value.__name__)))
    sys.modules["__main__"] = types.ModuleType("__main__")
    linecache.clearcache()
    importlib.invalidate_caches()
    loaded = frozenset(m for m in sys.modules if m.startswith("duetrl"))

    read_roots = [r for r in (_resolve(p) for p in list(read_blocked) + list(protected_files))
                  if r]
    hidden_roots = [r for r in (_resolve(p) for p in read_blocked) if r]
    write_roots = [r for r in (_resolve(p) for p in write_blocked) if r] + read_roots
    write = os.write

    def refuse(message: str):
        try:
            write(channel_fd, (json.dumps({"event": "refused", "message": message})
                               + "\n").encode())
        except OSError:
            pass
        return PermissionError(message)

    def refuse_import(fullname: str) -> None:
        if matches(fullname, protected):
            raise refuse(f"refused: the grader does not let a submission import {fullname} "
                         "(it holds the solution)")
        if fullname.startswith("duetrl") and fullname not in loaded:
            raise refuse(f"refused: the grader does not let a submission import {fullname} "
                         "(only the modules the grader loaded)")

    def hook(event: str, args: tuple) -> None:
        if event == REFUSED_EVENT:
            raise refuse(f"refused: {args[0] if args else 'the solution'}")
        if event == "open":
            path, mode, flags = (tuple(args) + (None, None, None))[:3]
            if path is None or isinstance(path, int):
                return
            real = _resolve(path)
            if _inside(real, read_roots):
                raise refuse(f"refused: the grader does not let a submission open {path}")
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & _WRITE_FLAGS)
            if writing and _inside(real, write_roots):
                raise refuse(f"refused: the grader does not let a submission change {path}")
        elif event == "import":
            if args and isinstance(args[0], str):
                refuse_import(args[0])
        elif event == "compile":
            filename = args[1] if len(args) > 1 else None
            if isinstance(filename, str | bytes) and _inside(_resolve(filename), read_roots):
                raise refuse(f"refused: the grader does not let a submission compile "
                             f"{filename!s}")
        elif event == "exec":
            code = args[0] if args else None
            filename = getattr(code, "co_filename", None)
            if isinstance(filename, str) and _inside(_resolve(filename), read_roots):
                raise refuse(f"refused: the grader does not let a submission run code of "
                             f"{filename}")
        elif event in _LISTING_EVENTS:
            if args and isinstance(args[0], str | bytes | os.PathLike) and _inside(
                    _resolve(args[0]), hidden_roots):
                raise refuse(f"refused: the grader does not let a submission list {args[0]!s}")
        elif event in _MUTATING_EVENTS:
            if any(isinstance(a, str | bytes | os.PathLike) and _inside(_resolve(a), write_roots)
                   for a in args):
                raise refuse(f"refused: the grader does not let a submission change {args[0]}")
        elif event in _PROGRAM_EVENTS or event.startswith("ctypes."):
            raise refuse(f"refused: the grader does not let a submission run {event}")
        elif event in _HUNTING_EVENTS:
            raise refuse(f"refused: the grader does not let a submission call {event}")

    sys.meta_path.insert(0, _ImportGuard(refuse_import))
    sys.addaudithook(hook)

