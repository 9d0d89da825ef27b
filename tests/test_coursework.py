"""The coursework tools: student copies, the grader (hidden cases, sandbox, integrity), the
Gradescope bundle. Each grading starts one child process that imports a framework, so the
cases below are chosen to need few of them (each grades every function of a submission)."""

from __future__ import annotations

import ast
import csv
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import test_coursework_submissions as subs

from duetrl.core.cli import main
from duetrl.core.coursework.grader import grade, grade_batch
from duetrl.core.coursework.integrity import detect_backend, integrity_problems
from duetrl.core.coursework.make import make_assignment, student_copy
from duetrl.core.coursework.reports import format_report, gradescope_results
from duetrl.core.coursework.specs import ASSIGNMENTS, get_assignment

SEED = 20261130  # the hidden seed of these tests (an instructor's would be secret)
UNIT_ASSIGNMENTS = [name for name, a in ASSIGNMENTS.items() if a.learning is None]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def by_name(report) -> dict:
    return {t.name: t for t in report.tests}


def failed(report) -> set[str]:
    return {t.name for t in report.tests if t.score < t.max_score}


# ---- student copies (no child process) -----------------------------------------------------


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("name", sorted(ASSIGNMENTS))
def test_student_copy_has_todos_and_no_solution(name, backend):
    assignment = get_assignment(name)
    text = student_copy(name, backend)
    tree = ast.parse(text)
    for todo in assignment.todo_names(backend):
        assert f'raise NotImplementedError("TODO: {todo}")' in text
    defined = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)}
    for todo in assignment.todo_names(backend):
        assert todo.split(".")[-1] in defined
    assert not integrity_problems(text, assignment, backend)  # a student copy is not a copy
    solution = student_copy(name, backend, solution=True)
    assert "raise NotImplementedError(\"TODO: " not in solution
    assert integrity_problems(solution, assignment, backend)  # the solution is one


def test_make_writes_statement_public_tests_and_refuses_to_overwrite(tmp_path, capsys):
    assert main(["assignments", "list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in ASSIGNMENTS)
    assert main(["assignments", "make", "attention", "--backend", "torch", "--out",
                 str(tmp_path / "hw")]) == 0
    readme = (tmp_path / "hw" / "README.md").read_text()
    assert "softmax(Q K^T / sqrt(d_k)) V" in readme and "1 = attend, 0 = masked" in readme
    public = (tmp_path / "hw" / "test_attention_public.py").read_text()
    assert "check_public_case('attention', 'torch'" in public
    assert main(["assignments", "make", "attention", "--backend", "torch", "--out",
                 str(tmp_path / "hw")]) == 2  # exists: no overwrite
    with pytest.raises(ValueError, match="backend: expected one of"):
        make_assignment("attention", "jax", tmp_path / "x")
    with pytest.raises(ValueError, match="assignment: expected one of"):
        get_assignment("nope")


def test_backend_is_read_from_imports():
    assert detect_backend("import torch\n") == "torch"
    assert detect_backend("import tensorflow as tf\n") == "tf"
    assert detect_backend("from keras import layers\n") == "tf"
    for source in ("import numpy\n", "import torch\nimport tensorflow\n"):
        with pytest.raises(ValueError, match="pass --backend"):
            detect_backend(source)


# ---- integrity: refused before any process starts ------------------------------------------

CHEATS = {
    "imports the solution module": "from duetrl.backends.torch.returns import compute_gae\n",
    "imports the package's re-export": "from duetrl.backends.torch import compute_returns\n",
    "imports the oracle": "from duetrl.core.reference.returns import gae\n",
    "reads a file": "import torch\nSECRET = open('/autograder/source/hidden.json').read()\n",
    "reaches for sys.modules": "import torch\nimport sys\nm = sys.modules\n",
}


@pytest.mark.parametrize("why", sorted(CHEATS))
def test_cheats_are_refused(tmp_path, why):
    path = write(tmp_path, "returns.py", CHEATS[why] + subs.TORCH_RETURNS)
    report = grade("returns", path, backend="torch", seed=SEED)
    assert report.score == 0 and report.max_score > 0
    assert report.error.startswith("not graded:")


def test_a_pasted_solution_is_detected_even_renamed(tmp_path):
    solution = student_copy("returns", "torch", solution=True)
    report = grade("returns", write(tmp_path, "returns.py", solution), seed=SEED)
    assert report.score == 0 and "copies the project's solution" in report.error
    # the comments stripped and the variables renamed: still the solution's code
    solution = student_copy("attention", "torch", solution=True)
    lines = [line.split("  #")[0] for line in solution.splitlines()]
    renamed = "\n".join(lines).replace("scores", "logits").replace("attention_weights", "w")
    problems = integrity_problems(renamed, get_assignment("attention"), "torch")
    assert "scaled_dot_product_attention copies the project's solution: its code is the " \
           "solution's with the variables renamed" in problems


def test_framework_shortcut_is_refused():
    source = subs.TORCH_ATTENTION.replace(
        "    weights = torch.softmax(logits, dim=-1)",
        "    weights = torch.nn.functional.scaled_dot_product_attention(q, k, v)")
    problems = integrity_problems(source, get_assignment("attention"), "torch")
    assert any("ready-made" in p for p in problems)


# ---- the reference solution scores full marks in both backends -----------------------------


@pytest.mark.parametrize("backend", ["torch", "tf"])
@pytest.mark.parametrize("name", UNIT_ASSIGNMENTS)
def test_reference_scores_full_marks(tmp_path, name, backend):
    path = write(tmp_path, get_assignment(name).student_file,
                 student_copy(name, backend, solution=True))
    report = grade(name, path, seed=SEED, integrity=False)
    assert report.backend == backend
    assert report.score == report.max_score, format_report(report)
    assert any(t.visibility == "hidden" for t in report.tests)


# ---- the done-when: a TensorFlow student and a PyTorch student, the same grade -------------


def fill_todos(text: str, bodies: dict[str, str]) -> str:
    for name, body in bodies.items():
        todo = f'    raise NotImplementedError("TODO: {name}")\n'
        assert todo in text
        text = text.replace(todo, body)
    return text


def test_tf_student_gets_the_grade_of_a_correct_torch_solution(tmp_path, capsys):
    hw1 = tmp_path / "hw1"
    assert main(["assignments", "make", "returns", "--backend", "tf", "--out", str(hw1)]) == 0
    student = hw1 / "returns.py"
    student.write_text(fill_todos(student.read_text(), subs.TF_RETURNS_BODIES))
    public = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "test_returns_public.py"], cwd=hw1, capture_output=True, text=True,
                            timeout=300)
    assert public.returncode == 0, public.stdout[-2000:]
    assert "3 passed" in public.stdout
    capsys.readouterr()
    assert main(["grade", "returns", "--submission", str(student), "--seed", str(SEED),
                 "--format", "json"]) == 0
    tf_report = json.loads(capsys.readouterr().out)
    torch_report = grade("returns", write(tmp_path, "torch/returns.py", subs.TORCH_RETURNS),
                         seed=SEED)
    assert tf_report["backend"] == "tf" and torch_report.backend == "torch"
    assert tf_report["score"] == torch_report.score == torch_report.max_score
    assert [t["name"] for t in tf_report["tests"]] == [t.name for t in torch_report.tests]


# ---- typical wrong solutions lose the right points -----------------------------------------

WRONG = [
    ("attention", subs.ATTENTION_NO_SQRT, "no sqrt(d_k)",
     {"attention: small, no mask", "attention: causal mask", "attention: batched heads, no mask",
      "multi-head attention: no mask"}, set()),
    ("attention", subs.ATTENTION_MASK_REVERSED, "mask polarity reversed",
     {"attention: causal mask", "attention: padding mask broadcast over queries",
      "multi-head attention: with a mask"},
     {"attention: small, no mask", "attention: batched heads, no mask",
      "multi-head attention: no mask"}),
    ("returns", subs.RETURNS_OFF_BY_ONE, "returns off by one",
     {"returns: three rewards of 1, gamma 0.5, termination at the end",
      "returns: random episodes, no critic", "returns: gamma = 0"},
     {"gae: random episodes", "gae: the published vector (gamma 1, lambda 0.95)"}),
    ("returns", subs.RETURNS_TRUNCATION_AS_TERMINATION, "truncation treated as termination",
     {"returns: bootstrapping at truncations", "returns: truncation at the last step"},
     {"returns: three rewards of 1, gamma 0.5, termination at the end",
      "returns: termination at step 0", "gae: random episodes"}),
    ("reinforce", subs.REINFORCE_SIGN_AND_NO_BASELINE, "sign error and no baseline",
     {"reinforce: loss (public seed)", "reinforce: loss", "reinforce: one update",
      "reinforce with baseline: prepare"},
     {"reinforce: prepare", "reinforce: prepare without standardisation"}),
    ("ppo-clip", subs.PPO_CLIP_WRONG_SIDE, "clip on the wrong side",
     {"ppo: random batch", "ppo: published vector A=+1, ratio 1.3"}, set()),
    ("ppo-clip", subs.PPO_HARD_CODED, "hard-coded public answers",
     {"ppo: random batch", "ppo: masked batch", "ppo: another clip epsilon",
      "ppo: gradient with respect to log_probs"},
     {"ppo: published vector A=+1, ratio 1.3", "ppo: published vector A=-1, ratio 0.7",
      "ppo: published vector A=-1, ratio 1.3"}),
]


@pytest.mark.parametrize("name,source,why,must_fail,must_pass", WRONG,
                         ids=[w[2] for w in WRONG])
def test_wrong_solutions_lose_the_right_points(tmp_path, name, source, why, must_fail,
                                               must_pass):
    report = grade(name, write(tmp_path, get_assignment(name).student_file, source), seed=SEED)
    assert not report.error, report.error
    tests = by_name(report)
    assert must_fail <= failed(report), format_report(report)
    assert not must_pass & failed(report), format_report(report)
    assert 0 < report.score < report.max_score or not must_pass
    for test in tests.values():
        if test.visibility == "hidden" and test.score < test.max_score:
            assert "got" not in test.output and "index" not in test.output  # no hidden inputs


# ---- crashing, hanging, NaN, memory: graded, not fatal -------------------------------------


def test_misbehaving_submission_is_graded_not_fatal(tmp_path):
    path = write(tmp_path, "returns.py", subs.RETURNS_MISBEHAVING)
    report = grade("returns", path, seed=SEED, time_limit_s=4, integrity=False)
    tests = by_name(report)
    assert "time limit" in tests["returns: gamma = 0"].output
    assert "crashed" in tests["returns: gamma = 1"].output
    assert "memory" in tests["returns: float32 in, float32 out"].output
    assert "NaN" in tests["gae: lambda = 0 (one-step TD errors)"].output
    # after the crash a fresh process graded the rest; prints and warnings cost nothing
    for name in ("returns: random episodes, no critic", "gae: random episodes",
                 "gae: lambda = 1 and truncations"):
        assert tests[name].score == tests[name].max_score, tests[name].output


def test_sandbox_blocks_hidden_tests_and_results(tmp_path):
    hidden = write(tmp_path, "source/hidden.json", json.dumps({"seed": SEED}))
    results = write(tmp_path, "results/results.json", "{}")
    source = subs.TORCH_RETURNS.replace(
        "    T = rewards.shape[0]\n    term = terminations",
        f"    open({str(hidden)!r}).read()\n    T = rewards.shape[0]\n    term = terminations",
        1).replace(
        "    deltas = rewards",
        f"    open({str(results)!r}, 'w').write('100')\n    deltas = rewards", 1)
    report = grade("returns", write(tmp_path, "s/returns.py", source), hidden=hidden,
                   integrity=False, write_blocked=[str(results.parent)])
    assert report.score == 0
    assert all("refused: the grader does not let a submission" in t.output
               for t in report.tests), format_report(report)
    assert results.read_text() == "{}"


# ---- learning threshold (a small environment here; CartPole-v1 in the assignment) ----------


def test_learning_threshold_on_hidden_seeds(tmp_path):
    spec = dataclasses.replace(get_assignment("reinforce-cartpole").learning,
                               env_id="duetrl/Identity-v0", target=10.0, budget_steps=12_000,
                               time_limit_s=120.0)
    report = grade("reinforce-cartpole", write(tmp_path, "reinforce.py", subs.TORCH_REINFORCE),
                   seed=SEED, learning=spec)
    assert len(report.tests) == 2 and all(t.visibility == "hidden" for t in report.tests)
    assert report.score == report.max_score, format_report(report)
    assert all("greedy return" in t.output for t in report.tests)


# ---- Gradescope and batches ----------------------------------------------------------------


def test_gradescope_bundle_runs_locally(tmp_path):
    root = tmp_path / "autograder"
    assert main(["assignments", "autograder", "ppo-clip", "--out", str(root / "source")]) == 0
    for name in ("setup.sh", "run_autograder", "hidden.json"):
        assert (root / "source" / name).exists()
    assert os.access(root / "source" / "run_autograder", os.X_OK)
    write(root, "submission/ppo.py", subs.TORCH_PPO)
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "DUETRL_PYTHON": sys.executable}
    subprocess.run(["bash", str(root / "source" / "run_autograder")], env=env, check=True,
                   timeout=300)
    results = json.loads((root / "results" / "results.json").read_text())
    assert results["score"] == sum(t["max_score"] for t in results["tests"]) > 0
    for test in results["tests"]:
        assert set(test) >= {"name", "score", "max_score", "output", "visibility"}
        assert test["visibility"] in ("visible", "hidden", "after_due_date", "after_published")
        assert isinstance(test["score"], float) and isinstance(test["max_score"], float)
    assert {t["visibility"] for t in results["tests"]} == {"visible", "after_due_date"}


def test_batch_writes_one_row_per_student(tmp_path):
    folder = tmp_path / "submissions"
    write(folder, "alice.py", subs.TORCH_PPO)
    write(folder, "bob/ppo.py", "from duetrl.backends.torch.ppo import ppo_clip_loss\n")
    write(folder, "carol.py", "def ppo_clip_loss(:\n")
    reports = grade_batch("ppo-clip", folder, tmp_path / "grades.csv", seed=SEED)
    rows = {r["student"]: r for r in csv.DictReader(open(tmp_path / "grades.csv"))}
    assert set(rows) == {"alice", "bob", "carol"} and len(reports) == 3
    assert rows["alice"]["score"] == rows["alice"]["max_score"] != "0"
    assert rows["bob"]["score"] == "0" and "solution" in rows["bob"]["error"]
    assert rows["carol"]["score"] == "0" and rows["carol"]["error"]
    assert gradescope_results(reports[0])["score"] == float(rows["alice"]["score"])
