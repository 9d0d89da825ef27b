"""The ``recommender`` assignment (outline 6.2.2): the student writes the top-K off-policy
correction (lambda_K, the capped importance weight, the weight of each method, the corrected
loss with its stop-gradient), graded against the float64 oracle.

The reference solution's full marks in both frameworks and the guard's checks run for every
assignment in ``test_coursework.py`` and ``test_grader_guard.py``. Here: the statement and the
student's copy; the hidden cases of any seed tell every diagnosed bug apart from the right
answer and from each other; right submissions written apart from the solution, in torch and in
tf, get full marks; and each typical bug (K (1 - pi)^K, the cap missing, beta instead of pi,
the weight left in the graph, ...) loses the right points with a hint naming what it matches.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from duetrl.core.backend import load_backend
from duetrl.core.coursework.cases import build_cases
from duetrl.core.coursework.compare import case_verdict, compare_arrays
from duetrl.core.coursework.harness import describe_error, run_call
from duetrl.core.coursework.integrity import integrity_problems
from duetrl.core.coursework.make import make_assignment, student_copy
from duetrl.core.coursework.public import check_public_case, public_case_names
from duetrl.core.coursework.specs import get_assignment

SEED = 20261206


def test_statement_renders_and_the_student_copy_is_clean(tmp_path):
    markdown_it = pytest.importorskip("markdown_it")
    make_assignment("recommender", "torch", tmp_path / "hw")
    readme = (tmp_path / "hw" / "README.md").read_text()
    html = markdown_it.MarkdownIt("commonmark").enable("table").render(readme)
    assert html.count("<h1>") == 1 and html.count("<table>") == 1 and html.count("<tr>") == 5
    assert "lambda_n = K (1 - pi(a_n | s_n))^(K - 1)" in html
    student = (tmp_path / "hw" / "recommender.py").read_text()
    assignment = get_assignment("recommender")
    assert not integrity_problems(student, assignment, "torch")
    for todo in assignment.todo_names("torch"):
        assert f'raise NotImplementedError("TODO: {todo}")' in student
    assert "check_events(mask, actions=actions" in student  # the checks stay in the copy
    assert "tf.stop_gradient" not in student_copy("recommender", "tf").split("def top_k")[1]


@pytest.mark.parametrize("seed", [0, 1, SEED])
def test_every_diagnosis_is_told_apart_from_the_answer_and_the_other_bugs(seed):
    cases = build_cases(get_assignment("recommender"), seed)
    assert sum(c.visibility == "hidden" for c in cases) == 9
    for case in cases:
        assert case.diagnoses, case.name
        for i, (mistake, what) in enumerate(case.diagnoses):
            assert all(v.shape == case.expected[k].shape for k, v in mistake.items()), what
            assert any(
                not compare_arrays(v, case.expected[k], case.atol) for k, v in mistake.items()
            ), (case.name, what)
            for other, other_what in case.diagnoses[i + 1 :]:
                assert any(
                    not compare_arrays(mistake[k], other[k], case.atol)
                    for k in mistake
                    if k in other
                ), (case.name, what, other_what)


TORCH = """
import torch


def top_k_multiplier(pi, k):
    return k * torch.pow(1.0 - pi, k - 1)


def importance_weights(pi, beta, cap):
    return torch.clamp(pi / beta, max=cap)


def event_weights(pi, beta, method, cap, k):
    pi, beta = pi.detach(), beta.detach()
    if method == "reinforce":
        return torch.ones_like(pi)
    w = importance_weights(pi, beta, cap)
    if method == "top_k":
        return top_k_multiplier(pi, k) * w
    return w


def corrected_loss(logits, actions, rewards, beta, mask, method="top_k", cap=10.0, k=2):
    logp = torch.log_softmax(logits, dim=-1).gather(-1, actions.unsqueeze(-1)).squeeze(-1)
    f = event_weights(logp.exp(), beta, method, cap, k)
    return -(mask * f * rewards * logp).sum() / mask.sum()
"""

TF = """
import tensorflow as tf


def top_k_multiplier(pi, k):
    return k * (1.0 - pi) ** (k - 1)


def importance_weights(pi, beta, cap):
    return tf.minimum(pi / beta, cap)


def event_weights(pi, beta, method, cap, k):
    pi, beta = tf.stop_gradient(pi), tf.stop_gradient(beta)
    if method == "reinforce":
        return tf.ones_like(pi)
    w = importance_weights(pi, beta, cap)
    return top_k_multiplier(pi, k) * w if method == "top_k" else w


def corrected_loss(logits, actions, rewards, beta, mask, method="top_k", cap=10.0, k=2):
    logp = tf.gather(tf.nn.log_softmax(logits, axis=-1), actions[..., None], batch_dims=2)[..., 0]
    f = event_weights(tf.exp(logp), beta, method, cap, k)
    return -tf.reduce_sum(mask * f * rewards * logp) / tf.reduce_sum(mask)
"""


def grade_here(source: str, tmp_path: Path, backend: str = "torch") -> dict[str, tuple]:
    """Every case on ``source``, in this process (the grader's calls and verdicts without its
    child process): ``{case name: (score, max, message, visibility)}``."""
    path = tmp_path / "recommender.py"
    path.write_text(source)
    module_name = f"student_recommender_{abs(hash(source))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    results = {}
    for case in build_cases(get_assignment("recommender"), SEED):
        try:
            outputs, status, message = (
                run_call(case.call, case.arrays, module, load_backend(backend)),
                "ok",
                "",
            )
        except Exception as error:  # noqa: BLE001  (the student's code, whatever it raises)
            outputs, status, message = None, "error", describe_error(error, str(path))
        passed, message = case_verdict(case, status, message, outputs)
        results[case.name] = (case.points if passed else 0.0, case.points, message, case.visibility)
    return results


@pytest.mark.parametrize("backend,source", [("torch", TORCH), ("tf", TF)])
def test_right_submissions_score_full_marks_and_pass_their_public_tests(tmp_path, backend, source):
    results = grade_here(source, tmp_path, backend)
    assert len(results) == 13
    assert all(score == points for score, points, _, _ in results.values()), results
    assert not integrity_problems(source, get_assignment("recommender"), backend)
    for index in range(len(public_case_names("recommender"))):
        assert check_public_case("recommender", backend, tmp_path / "recommender.py", index) == (
            True,
            "passed",
        )


P_MULT, P_WEIGHT, P_EVENT, P_LOSS = public_case_names("recommender")
MULT = {
    P_MULT,
    "top_k_multiplier: a batch of probabilities, K = 3..5",
    "top_k_multiplier: float32 in, float32 out",
}
K1 = "top_k_multiplier: K = 1 is plain REINFORCE"
WEIGHT = {P_WEIGHT, "importance_weights: some weights above the cap"}
TOP_K, OFF, PLAIN = (
    "event_weights: top_k",
    "event_weights: off_policy",
    "event_weights: reinforce",
)
LOSS, GRAD = (
    "corrected_loss: masked events",
    "corrected_loss: its gradient with respect to the logits",
)
LOSSES = {P_LOSS, LOSS, GRAD}
# (why, the edit, tests that must fail, what their message must say, tests that must pass)
MUTANTS = [
    (
        "the exponent K, not K - 1",
        ("torch.pow(1.0 - pi, k - 1)", "torch.pow(1.0 - pi, k)"),
        MULT | {K1, P_EVENT, TOP_K} | LOSSES,
        "the exponent is K - 1",
        WEIGHT | {OFF, PLAIN},
    ),
    (
        "the factor K missing",
        ("k * torch.pow(", "1 * torch.pow("),
        MULT | {P_EVENT, TOP_K} | LOSSES,
        "the factor K is missing",
        WEIGHT | {OFF, PLAIN, K1},
    ),
    (
        "lambda from beta",
        ("top_k_multiplier(pi, k) * w", "top_k_multiplier(beta, k) * w"),
        {P_EVENT, TOP_K} | LOSSES,
        "lambda computed from beta",
        MULT | WEIGHT | {OFF, PLAIN},
    ),
    (
        "the cap missing",
        ("torch.clamp(pi / beta, max=cap)", "pi / beta"),
        WEIGHT | {P_EVENT, TOP_K, OFF},
        "uncapped",
        MULT | {PLAIN},
    ),
    (
        "a floor, not a cap",
        ("max=cap", "min=cap"),
        WEIGHT | {P_EVENT, TOP_K, OFF},
        "not a floor",
        MULT | {PLAIN},
    ),
    (
        "the weight inverted",
        ("pi / beta, max", "beta / pi, max"),
        WEIGHT | {P_EVENT, TOP_K, OFF},
        "the importance weight is pi / beta",
        MULT | {PLAIN},
    ),
    (
        "the weight left in the graph",
        ("pi, beta = pi.detach(), beta.detach()", "pass"),
        {GRAD},
        "left in the graph",
        MULT | WEIGHT | {P_EVENT, TOP_K, OFF, PLAIN, P_LOSS, LOSS},
    ),
    (
        "the mask ignored",
        ("-(mask * f * rewards * logp).sum() / mask.sum()", "-(f * rewards * logp).mean()"),
        {LOSS},
        "the mask ignored",
        MULT | WEIGHT | {P_EVENT, TOP_K, OFF, PLAIN},
    ),
]


@pytest.mark.parametrize("why,edit,must_fail,says,must_pass", MUTANTS, ids=[m[0] for m in MUTANTS])
def test_each_typical_bug_loses_the_right_points_with_a_useful_hint(
    tmp_path, why, edit, must_fail, says, must_pass
):
    assert TORCH.count(edit[0]) == 1, edit[0]
    results = grade_here(TORCH.replace(edit[0], edit[1]), tmp_path)
    failed = {name for name, (score, points, _, _) in results.items() if score < points}
    assert must_fail <= failed, (why, failed)
    assert not must_pass & failed, (why, must_pass & failed)
    score = sum(r[0] for r in results.values())
    assert 0 < score < sum(r[1] for r in results.values())
    # a wrong weight inside the loss makes the loss wrong with no diagnosis of its own: the
    # loss cases are told what they match only for the loss's own bugs
    loss_bug = why in ("the weight left in the graph", "the mask ignored")
    for name in must_fail if loss_bug else must_fail - LOSSES:
        _, _, message, visibility = results[name]
        assert "; it matches " in message and says in message and "Hint: " in message, message
        if visibility == "hidden":  # the size of the error, never a hidden value
            assert "max abs error" in message and " at index " not in message, message
