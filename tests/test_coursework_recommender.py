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

import pytest
from coursework_harness import Harness

from duetrl.core.coursework.integrity import integrity_problems
from duetrl.core.coursework.make import make_assignment, student_copy
from duetrl.core.coursework.public import public_case_names
from duetrl.core.coursework.specs import get_assignment

SEED = 20261206
RECOMMENDER = Harness("recommender", SEED)


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
    cases = RECOMMENDER.assert_diagnoses_told_apart(seed)
    assert sum(c.visibility == "hidden" for c in cases) == 9


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


@pytest.mark.parametrize("backend,source", [("torch", TORCH), ("tf", TF)])
def test_right_submissions_score_full_marks_and_pass_their_public_tests(tmp_path, backend, source):
    assert len(RECOMMENDER.assert_full_marks(source, tmp_path, backend)) == 13


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
    # a wrong weight inside the loss makes the loss wrong with no diagnosis of its own: the
    # loss cases are told what they match only for the loss's own bugs
    loss_bug = why in ("the weight left in the graph", "the mask ignored")
    RECOMMENDER.assert_bug_loses_its_points(
        TORCH,
        edit,
        must_fail,
        says,
        must_pass,
        tmp_path,
        hinted=must_fail if loss_bug else must_fail - LOSSES,
    )
