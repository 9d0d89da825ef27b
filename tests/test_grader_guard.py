"""The grader's guard (issue 25): the solution out of reach in the submission's process, whatever
the route, and one time budget per submission. Each cheat below is graded for real (a child
process each); most are graded with the static checks off, to reach the run-time guard."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import test_coursework_submissions as subs

from duetrl.core.coursework.grader import grade
from duetrl.core.coursework.reports import format_report
from duetrl.core.coursework.specs import ASSIGNMENTS, get_assignment

SEED = 20261130
REFUSED = "refused: the grader does not let a submission"

# ---- the two cheats of the issue: nothing but allowed imports, names computed --------------

# 1. __import__ reached through __builtins__, a computed module name, the oracle called
BUILTINS_IMPORT = '''
def _oracle():
    table = __builtins__ if isinstance(__builtins__, dict) else __builtins__.__dict__
    return table["__imp" + "ort__"]("duetrl.core.refer" + "ence.returns", fromlist=["gae"])


def compute_returns(rewards, terminations, truncations, gamma, next_values=None):
    nv = None if next_values is None else np.asarray(next_values)
    out = _oracle().discounted_returns(np.asarray(rewards), np.asarray(terminations),
                                       np.asarray(truncations), gamma, nv)
    return AS_TENSOR(out)
'''

# 2. the oracle's source read through an allowed module's __file__, run with exec(compile())
SOURCE_EXEC = '''
def compute_gae(rewards, values, next_values, terminations, truncations, gamma, lam):
    table = __builtins__ if isinstance(__builtins__, dict) else __builtins__.__dict__
    folder = constants.__file__.rsplit("/", 1)[0]
    source = table["op" + "en"](folder + "/refer" + "ence/returns.py").read()
    scope = {"__name__": "oracle"}
    table["ex" + "ec"](table["comp" + "ile"](source, "oracle.py", "exec"), scope)
    adv, ret = scope["gae"](*[np.asarray(x) for x in (rewards, values, next_values,
                                                      terminations, truncations)], gamma, lam)
    return AS_TENSOR(adv), AS_TENSOR(ret)
'''

HEADERS = {
    "torch": "import numpy as np\nimport torch\n\nfrom duetrl.core import constants\n\n"
             "AS_TENSOR = torch.as_tensor\n",
    "tf": "import numpy as np\nimport tensorflow as tf\n\nfrom duetrl.core import constants\n\n"
          "AS_TENSOR = tf.convert_to_tensor\n",
}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def outputs(report, prefix: str) -> list[str]:
    return [t.output for t in report.tests if t.name.startswith(prefix)]


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_the_two_cheats_of_the_issue_get_zero(tmp_path, backend):
    source = HEADERS[backend] + BUILTINS_IMPORT + SOURCE_EXEC
    report = grade("returns", write(tmp_path, "returns.py", source), seed=SEED)
    assert not report.error, report.error  # the static checks let them through: the guard
    assert report.score == 0, format_report(report)
    for text in outputs(report, "returns:"):
        assert REFUSED + " import duetrl.core.reference.returns" in text, text
    for text in outputs(report, "gae:"):
        assert REFUSED + " open" in text and "reference/returns.py" in text, text


# ---- routes of our own: each a compute_returns and a compute_gae ----------------------------

ROUTES = {
    "spec_from_file_location on the oracle's path": '''
import torch
importlib = __import__("importlib.util")  # past the friendlier check of import statements
from duetrl.core import constants

def _load():
    path = constants.__file__.replace("constants.py", "reference/returns.py")
    spec = importlib.util.spec_from_file_location("oracle", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
''',
    "sys.modules and a package's re-export": '''
import sys
import torch
''',
    "__import__ through getattr(__builtins__) and the solution's file as a module": '''
import types
import torch
''',
    "runpy and pickle": '''
import runpy
import pickle
import torch
''',
    "gc and ctypes": '''
import torch
gc, ctypes = __import__("gc"), __import__("ctypes")
''',
    "frames and the harness's namespace": '''
import sys
import torch
''',
}

BODIES = {
    "spec_from_file_location on the oracle's path": (
        "    return torch.as_tensor(_load().discounted_returns(rewards.numpy(), "
        "terminations.numpy(), truncations.numpy(), gamma))\n",
        "    import linecache\n"
        "    path = constants.__file__.replace('constants.py', 'reference/returns.py')\n"
        "    scope = {}\n"
        "    exec(''.join(linecache.getlines(path)), scope)\n"
        "    return scope['gae'](rewards, values, next_values, terminations, truncations, "
        "gamma, lam)\n",
        "open /", "open /"),
    "sys.modules and a package's re-export": (
        "    solution = sys.modules['duetrl.backends.torch.ret' + 'urns']\n"
        "    return solution.compute_returns(rewards, terminations, truncations, gamma, "
        "next_values)\n",
        "    package = sys.modules['duetrl.backends.torch']\n"
        "    return getattr(package, 'compute_' + 'gae')(rewards, values, next_values, "
        "terminations, truncations, gamma, lam)\n",
        "use duetrl.backends.torch.returns", "run compute_gae"),
    "__import__ through getattr(__builtins__) and the solution's file as a module": (
        "    imp = getattr(__builtins__, '__imp' + 'ort__', None) or __builtins__['__import__']\n"
        "    ref = imp('duetrl.core.reference', fromlist=['returns'])\n"
        "    return torch.as_tensor(ref.returns.discounted_returns(rewards.numpy(), "
        "terminations.numpy(), truncations.numpy(), gamma))\n",
        "    import duetrl.backends.torch.policy as allowed\n"
        "    path = allowed.__file__.replace('policy.py', 'returns.py')\n"
        "    module = types.ModuleType('copy')\n"
        "    exec(__import__('pathlib').Path(path).read_text(), module.__dict__)\n"
        "    return module.compute_gae(rewards, values, next_values, terminations, "
        "truncations, gamma, lam)\n",
        "use duetrl.core.reference", "open"),
    "runpy and pickle": (
        "    import duetrl.core.interfaces as allowed\n"
        "    path = allowed.__file__.replace('interfaces/__init__.py', 'reference/returns.py')\n"
        "    scope = runpy.run_path(path)\n"
        "    return torch.as_tensor(scope['discounted_returns'](rewards.numpy(), "
        "terminations.numpy(), truncations.numpy(), gamma))\n",
        "    gae = pickle.loads(b'cduetrl.core.reference.returns\\ngae\\n.')\n"
        "    return gae(rewards, values, next_values, terminations, truncations, gamma, lam)\n",
        "open", "duetrl.core.reference.returns"),
    "gc and ctypes": (
        "    found = [f for f in gc.get_objects() if getattr(f, '__name__', '') == "
        "'discounted_returns']\n"
        "    return torch.as_tensor(found[0](rewards.numpy(), terminations.numpy(), "
        "truncations.numpy(), gamma))\n",
        "    ctypes.pythonapi.PyRun_SimpleString(b'import duetrl.core.reference.returns')\n"
        "    raise RuntimeError('ctypes was not refused')\n",
        "call gc.get_objects", "run ctypes"),
    "frames and the harness's namespace": (
        "    frame = sys._getframe()\n"
        "    while frame is not None and 'backend' not in frame.f_locals:\n"
        "        frame = frame.f_back\n"
        "    return frame.f_locals['backend'].compute_returns(rewards, terminations, "
        "truncations, gamma, next_values)\n",
        "    grader = sys.modules['duetrl.core.coursework']\n"
        "    return grader.cases\n",
        "run compute_returns", "duetrl.core.coursework"),
}


def route_source(why: str) -> str:
    returns_body, gae_body, _, _ = BODIES[why]
    return (ROUTES[why] + "\n\ndef compute_returns(rewards, terminations, truncations, gamma, "
            "next_values=None):\n" + returns_body + "\n\ndef compute_gae(rewards, values, "
            "next_values, terminations, truncations, gamma, lam):\n" + gae_body)


@pytest.mark.parametrize("why", sorted(ROUTES))
def test_cheating_routes_are_refused_at_run_time(tmp_path, why):
    _, _, returns_says, gae_says = BODIES[why]
    report = grade("returns", write(tmp_path, "returns.py", route_source(why)), seed=SEED,
                   integrity=False)
    assert report.score == 0, format_report(report)
    for prefix, says in (("returns:", returns_says), ("gae:", gae_says)):
        for text in outputs(report, prefix):  # the guard's refusal, or the friendlier check
            assert says in text and text.startswith(("refused:", "ImportError: " + says)), (
                prefix, text)


def test_hidden_files_stay_closed_whatever_the_path(tmp_path):
    hidden = write(tmp_path, "source/hidden.json", json.dumps({"seed": SEED}))
    parts = str(hidden).split("/")
    source = f'''
import glob
import torch
PARTS = {parts!r}


def compute_returns(rewards, terminations, truncations, gamma, next_values=None):
    path = "/".join(PARTS)
    with __builtins__["open"](path) if isinstance(__builtins__, dict) else open(path) as f:
        f.read()


def compute_gae(rewards, values, next_values, terminations, truncations, gamma, lam):
    glob.glob("/".join(PARTS[:-1]) + "/*")
'''
    report = grade("returns", write(tmp_path, "s/returns.py", source), hidden=hidden,
                   integrity=False)
    assert report.score == 0
    assert all(t.output.startswith(REFUSED + " open") for t in report.tests
               if t.name.startswith("returns:")), format_report(report)
    assert all(t.output.startswith(REFUSED + " list") for t in report.tests
               if t.name.startswith("gae:")), format_report(report)
    assert str(SEED) not in format_report(report)


# ---- a right submission still gets full marks, lazy imports included -----------------------

LAZY = {
    "torch": subs.TORCH_RETURNS.replace(
        "    T = rewards.shape[0]\n    term = terminations.to(rewards.dtype)\n    ended",
        "    import torch.distributions  # noqa\n    import numpy.polynomial  # noqa\n"
        "    import fractions  # noqa\n    from duetrl.core.constants import MASK_FILL_VALUE  # noqa\n"
        "    T = rewards.shape[0]\n    term = terminations.to(rewards.dtype)\n    ended", 1),
    "tf": "import tensorflow as tf\n\n\ndef compute_returns(rewards, terminations, truncations, "
          "gamma, next_values=None):\n    import numpy.polynomial  # noqa\n"
          "    import fractions  # noqa\n"
          + subs.TF_RETURNS_BODIES["compute_returns"]
          + "\n\n@tf.function\ndef _gae(rewards, values, next_values, terminations, truncations,"
          " gamma, lam):\n" + subs.TF_RETURNS_BODIES["compute_gae"]
          + "\n\ndef compute_gae(rewards, values, next_values, terminations, truncations, gamma,"
          " lam):\n    return _gae(rewards, values, next_values, terminations, truncations, "
          "gamma, lam)\n",
}


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_a_right_submission_with_lazy_imports_gets_full_marks(tmp_path, backend):
    report = grade("returns", write(tmp_path, "returns.py", LAZY[backend]), seed=SEED,
                   backend=backend)
    assert not report.error, report.error
    assert report.score == report.max_score, format_report(report)


# ---- every assignment, now and later: a cheat and a hang, within the budget ----------------


def trap_submission(name: str, backend: str) -> str:
    """A submission of ``name`` whose every graded function first reaches for the solution,
    then never returns."""
    assignment = get_assignment(name)
    solution = f"duetrl.backends.{backend}.{assignment.module}"
    lines = ["import torch" if backend == "torch" else "import tensorflow as tf", "",
             "CALLS = []", "", "", "def _trap():", "    CALLS.append(1)",
             "    if len(CALLS) == 1:",
             f"        getattr(__import__({solution!r}, fromlist=['x']), 'anything')",
             "    while True:", "        pass", ""]
    classes: dict[str, list[str]] = {}
    for todo in assignment.todo_names(backend):
        owner, _, method = todo.rpartition(".")
        if owner:
            classes.setdefault(owner, []).append(method)
        else:
            lines += ["", f"def {todo}(*args, **kwargs):", "    return _trap()", ""]
    for owner, methods in classes.items():
        lines += ["", f"class {owner}:", "    def __init__(self, *args, **kwargs):",
                  "        _trap()", ""]
        lines += [f"    def {m}(self, *args, **kwargs):\n        return _trap()\n"
                  for m in methods]
    return "\n".join(lines)


@pytest.mark.parametrize("name", sorted(ASSIGNMENTS))
def test_every_assignment_refuses_a_cheat_and_bounds_a_hang(tmp_path, name):
    limit = 2.0 if get_assignment(name).learning else 0.5
    path = write(tmp_path, get_assignment(name).student_file, trap_submission(name, "torch"))
    start = time.perf_counter()
    report = grade(name, path, seed=SEED, integrity=False, time_limit_s=limit)
    seconds = time.perf_counter() - start
    texts = [t.output for t in report.tests]
    assert report.score == 0, format_report(report)
    assert texts[0].startswith(REFUSED + " use duetrl.backends.torch."), texts[0]
    for text in texts[1:]:
        assert text.startswith(("time limit", "not run: your code used up")), text
    if len(texts) > 3:
        assert any(t.startswith("not run: your code used up") for t in texts), texts
    # the tests share a budget of 2 * limit: startup + ~2 s, not one limit per test
    assert seconds < 45, seconds
