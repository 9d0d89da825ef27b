"""The ``kg`` assignment (outline 6.3.3): the walk's action mask and the masked log-softmax,
graded against the float64 oracle.

The reference solution's full marks in both frameworks and the guard's cheat-and-hang check run
for every assignment in ``test_coursework.py`` and ``test_grader_guard.py``. Here: the statement
and the student's copy; the hidden cases of any seed tell every diagnosed bug apart from the
right answer and from each other; a right submission written apart from the solution gets full
marks in torch and in tf; and each typical bug -- the stay missing, the answer edge not masked
in training, padding left open, ... -- graded in this process (the grader's own ``run_call``
and ``case_verdict``), loses the right points with a hint that names what the answer matches.
"""

from __future__ import annotations

import pytest
from coursework_harness import Harness

from duetrl.core.coursework.cases import build_cases
from duetrl.core.coursework.compare import compare_arrays
from duetrl.core.coursework.integrity import integrity_problems
from duetrl.core.coursework.make import make_assignment
from duetrl.core.coursework.public import public_case_names
from duetrl.core.coursework.specs import get_assignment

SEED = 20261130
KG = Harness("kg", SEED)


def test_statement_renders_and_the_student_copy_is_clean(tmp_path):
    markdown_it = pytest.importorskip("markdown_it")
    written = make_assignment("kg", "tf", tmp_path / "hw")
    readme = (tmp_path / "hw" / "README.md").read_text()
    html = markdown_it.MarkdownIt("commonmark").enable("table").render(readme)
    assert html.count("<h1>") == 1 and html.count("<table>") == 1 and html.count("<tr>") == 3
    for equation in (
        "m_k = [r_k != &lt;pad&gt;]  and not ( training and e_t = e_q and r_k = "
        "r_q and e_k = answer )",
        "log pi_k = s_k - log sum_{j: m_j = 1} exp(s_j)   where m_k = 1, else 0",
    ):
        assert equation in html, equation
    student = (tmp_path / "hw" / "kg.py").read_text()
    assignment = get_assignment("kg")
    assert not integrity_problems(student, assignment, "tf")
    for todo in assignment.todo_names("tf"):
        assert f'raise NotImplementedError("TODO: {todo}")' in student
    assert "class KGWalker" not in student and "PAD_RELATION" in student
    assert len(written) == 3


@pytest.mark.parametrize("seed", [0, 1, SEED])
def test_every_diagnosis_is_told_apart_from_the_answer_and_the_other_bugs(seed):
    cases = build_cases(get_assignment("kg"), seed)
    hidden = [c for c in cases if c.visibility == "hidden"]
    assert [len(c.diagnoses) for c in hidden] == [6, 3, 4, 4]  # every bug shows in each case
    for case in cases:
        assert case.diagnoses, case.name
        for i, (mistake, what) in enumerate(case.diagnoses):
            assert not compare_arrays(mistake["0"], case.expected["0"], case.atol), what
            for other, other_what in case.diagnoses[i + 1 :]:
                assert not compare_arrays(mistake["0"], other["0"], case.atol), (what, other_what)


# ---- right submissions, written apart from the solution, and their mutants -------------------

TORCH_KG = """
import torch


def action_mask(candidate_relations, candidate_entities, current_entities, query_entities,
                query_relations, answers, training):
    allowed = candidate_relations != 0
    if training:
        here = (current_entities == query_entities).unsqueeze(1)
        hit = (candidate_relations == query_relations.unsqueeze(1)) & \\
            (candidate_entities == answers.unsqueeze(1))
        allowed = allowed & ~(here & hit)
    return allowed


def masked_log_softmax(scores, mask):
    filled = scores.masked_fill(mask == 0, -1e9)
    return torch.log_softmax(filled, dim=-1) * mask
"""

TF_KG = """
import tensorflow as tf


def action_mask(candidate_relations, candidate_entities, current_entities, query_entities,
                query_relations, answers, training):
    allowed = tf.not_equal(candidate_relations, 0)
    if training:
        here = tf.expand_dims(tf.equal(current_entities, query_entities), 1)
        hit = tf.logical_and(tf.equal(candidate_relations, query_relations[:, None]),
                             tf.equal(candidate_entities, answers[:, None]))
        allowed = tf.logical_and(allowed, tf.logical_not(tf.logical_and(here, hit)))
    return tf.cast(allowed, tf.float64)


def masked_log_softmax(scores, mask):
    filled = tf.where(mask > 0, scores, tf.cast(-1e9, scores.dtype) * tf.ones_like(scores))
    return tf.nn.log_softmax(filled) * mask
"""

FILLED = {  # the copy's own imports: PAD_RELATION, MASK_FILL_VALUE, F
    "action_mask": "    keep = candidate_relations != PAD_RELATION\n"
    "    if training:\n"
    "        at_query = current_entities[:, None] == query_entities[:, None]\n"
    "        edge = (candidate_relations == query_relations[:, None]) & (\n"
    "            candidate_entities == answers[:, None])\n"
    "        keep = keep & ~(at_query & edge)\n"
    "    return keep\n",
    "masked_log_softmax": "    filled = torch.where(mask > 0, scores, MASK_FILL_VALUE)\n"
    "    return F.log_softmax(filled, dim=-1) * mask\n",
}

P_MASK, P_SOFTMAX = public_case_names("kg")
MASK_TRAIN = "action_mask: walkers at and away from the query's entity, training"
MASK_TEST = "action_mask: the same kind of walkers at test time"
SOFTMAX, SOFTMAX_32 = (
    "masked_log_softmax: rows with one and with several open places",
    "masked_log_softmax: float32 in, float32 out",
)
MASKS = {P_MASK, MASK_TRAIN, MASK_TEST}
SOFTMAXES = {P_SOFTMAX, SOFTMAX, SOFTMAX_32}
OPEN = "allowed = candidate_relations != 0"
HERE_HIT = "allowed = allowed & ~(here & hit)"
# (why, the edit, tests that must fail, what their message must say, tests that must pass)
MUTANTS = [
    (
        "the stay action missing",
        (OPEN, "allowed = candidate_relations > 1"),
        MASKS,
        "the stay (NO_OP, the current entity) closed",
        SOFTMAXES,
    ),
    (
        "the answer edge not masked in training",
        (HERE_HIT, "allowed = allowed"),
        {P_MASK, MASK_TRAIN},
        "the answer edge left open in training",
        SOFTMAXES | {MASK_TEST},
    ),
    (
        "padding left open",
        (OPEN, "allowed = candidate_relations >= 0"),
        MASKS,
        "padding left open",
        SOFTMAXES,
    ),
    (
        "the answer edge masked wherever the walker stands",
        (HERE_HIT, "allowed = allowed & ~hit"),
        {MASK_TRAIN},
        "closed wherever the walker stands",
        SOFTMAXES | {P_MASK, MASK_TEST},
    ),
    (
        "masked at test time too",
        ("    if training:\n", "    if True:\n"),
        {MASK_TEST},
        "closed at test time too",
        SOFTMAXES | {P_MASK, MASK_TRAIN},
    ),
    (
        "a softmax over all places",
        ("log_softmax(filled", "log_softmax(scores"),
        SOFTMAXES,
        "a softmax over all K places",
        MASKS,
    ),
    (
        "the closed places left at -1e9",
        ("dim=-1) * mask", "dim=-1)"),
        SOFTMAXES,
        "the closed places left at -1e9",
        MASKS,
    ),
    (
        "the wrong axis",
        ("dim=-1) * mask", "dim=0) * mask"),
        SOFTMAXES,
        "over the walkers (axis 0)",
        MASKS,
    ),
]


@pytest.mark.parametrize("backend,source", [("torch", TORCH_KG), ("tf", TF_KG)])
def test_a_right_submission_scores_full_marks_and_passes_its_public_tests(
    tmp_path, backend, source
):
    results = KG.assert_full_marks(source, tmp_path, backend)
    assert set(results) == MASKS | SOFTMAXES


def test_the_students_copy_filled_as_the_statement_says_scores_full_marks(tmp_path):
    KG.assert_filled_copy_scores_full_marks(FILLED, tmp_path)


@pytest.mark.parametrize("why,edit,must_fail,says,must_pass", MUTANTS, ids=[m[0] for m in MUTANTS])
def test_each_typical_bug_loses_the_right_points_with_a_useful_hint(
    tmp_path, why, edit, must_fail, says, must_pass
):
    KG.assert_bug_loses_its_points(TORCH_KG, edit, must_fail, says, must_pass, tmp_path)
