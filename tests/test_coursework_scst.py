"""The ``scst`` assignment (outline 6.3.2): the self-critical advantage, the SCST loss and a
GPT's token log-probabilities, graded against the float64 oracle.

The reference solution's full marks in both frameworks and the guard's cheat-and-hang check run
for every assignment in ``test_coursework.py`` and ``test_grader_guard.py`` (a child process
each). Here: the statement and the student's copy; the hidden cases of any seed tell every
diagnosed bug apart from the right answer and from each other; a right submission written apart
from the solution gets full marks; and each typical one-character bug, graded in this process
(the grader's own ``run_call`` and ``case_verdict``, no child: milliseconds each), loses the
right points with a hint that names what the answer matches.
"""

from __future__ import annotations

import pytest
from coursework_harness import Harness

from duetrl.core.coursework.integrity import integrity_problems
from duetrl.core.coursework.make import make_assignment, student_copy
from duetrl.core.coursework.public import public_case_names
from duetrl.core.coursework.specs import get_assignment

SEED = 20261130
SCST = Harness("scst", SEED)

# ---- the statement and the student's folder -------------------------------------------------


def test_statement_renders_and_the_student_copy_is_clean(tmp_path):
    markdown_it = pytest.importorskip("markdown_it")
    written = make_assignment("scst", "torch", tmp_path / "hw")
    readme = (tmp_path / "hw" / "README.md").read_text()
    html = markdown_it.MarkdownIt("commonmark").enable("table").render(readme)
    assert html.count("<h1>") == 1 and html.count("<table>") == 1
    assert html.count("<tr>") == 5  # the header + the 4 functions
    assert html.count("<pre><code>") >= 3  # the equations, as code blocks
    for equation in ("A_ij = r(y_ij) - r(y^_i)",
                     "L(theta) = -1/N sum_ij A_ij sum_t m_ijt log pi_theta(y_ijt | x_i, "
                     "y_ij,&lt;t)",
                     "dL / d log pi(y_ijt) = -A_ij m_ijt / N",
                     "logp[:, t] = log softmax(model(tokens[:, :-1]))[:, t, tokens[:, t+1]]"):
        assert equation in html, equation
    student = (tmp_path / "hw" / "translation.py").read_text()
    assignment = get_assignment("scst")
    assert not integrity_problems(student, assignment, "torch")
    for todo in assignment.todo_names("torch"):
        assert f'raise NotImplementedError("TODO: {todo}")' in student
    assert "def _per_source(" in student and "class SCSTLearner" not in student
    # the solution module's import of the graded token_log_probs is left out; the extras
    # bring the import they need (F for F.log_softmax), beside the module's torch imports
    assert "torch.rlhf import" not in student and "objectives import" not in student
    assert "from torch import Tensor\nimport torch.nn.functional as F\n" in student
    assert "import torch.nn.functional" not in student_copy("scst", "tf")
    assert len(written) == 3


# ---- every hidden case, whatever its seed, tells each bug apart -----------------------------


@pytest.mark.parametrize("seed", [0, 1, SEED])
def test_every_diagnosis_is_told_apart_from_the_answer_and_the_other_bugs(seed):
    cases = SCST.assert_diagnoses_told_apart(seed)
    assert sum(c.visibility == "hidden" for c in cases) == 7


# ---- a right torch submission, written apart from the solution, and its mutants -------------

TORCH_SCST = '''
import torch


def scst_advantages(sample_rewards, greedy_rewards):
    k = sample_rewards.shape[0] // greedy_rewards.shape[0]
    baseline = greedy_rewards.unsqueeze(1).expand(-1, k).reshape(-1)
    return sample_rewards - baseline


def scst_loss(logp, sample_rewards, greedy_rewards, mask):
    adv = scst_advantages(sample_rewards, greedy_rewards)
    per_sample = (logp * mask).sum(dim=-1)
    return -(adv * per_sample).sum() / logp.shape[0]


def gather_log_probs(logits, tokens):
    return torch.log_softmax(logits, dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def token_log_probs(model, tokens):
    tokens = torch.as_tensor(tokens)
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    return gather_log_probs(model(inputs), targets)
'''

FILLED = {
    "scst_advantages": "    return sample_rewards - torch.repeat_interleave(greedy_rewards, k)\n",
    "scst_loss": "    advantages = scst_advantages(sample_rewards, greedy_rewards)\n"
                 "    return -torch.mean(advantages * torch.sum(logp * mask, dim=1))\n",
    "gather_log_probs": "    logp = F.log_softmax(logits, dim=-1)\n"
                        "    return torch.gather(logp, -1, tokens[..., None])[..., 0]\n",
    "token_log_probs": "    tokens = torch.as_tensor(tokens)\n"
                       "    return gather_log_probs(model(tokens[:, :-1]), tokens[:, 1:])\n",
}

P_ADV, P_LOSS, P_GATHER, P_TOKENS = public_case_names("scst")
ADV, ADV_32 = "advantages: several sources and samples", "advantages: float32 in, float32 out"
LOSS, GRAD, LOSS_32 = ("loss: samples of different lengths, padded",
                       "loss: its gradient with respect to the log-probs",
                       "loss: float32 in, float32 out")
GATHER = "gather_log_probs: batches of logits"
TOKENS = "token_log_probs: a GPT on sequences of several lengths"
ADVANTAGE = {P_ADV, ADV, ADV_32}
LOSSES = {P_LOSS, LOSS, GRAD, LOSS_32}
LOG_PROBS = {P_GATHER, GATHER, P_TOKENS, TOKENS}

BASELINE = "baseline = greedy_rewards.unsqueeze(1).expand(-1, k).reshape(-1)"
SUM = "(logp * mask).sum(dim=-1)"
LOG_SOFTMAX = "torch.log_softmax(logits, dim=-1)"
# (why, the edit, tests that must fail, what their message must say, tests that must pass)
MUTANTS = [
    ("advantage's sign flipped", ("sample_rewards - baseline", "baseline - sample_rewards"),
     ADVANTAGE | LOSSES, "sign flipped", LOG_PROBS),
    ("baseline from the sampled rewards",
     (BASELINE, "baseline = sample_rewards.view(-1, k).mean(1).repeat_interleave(k)"),
     ADVANTAGE | LOSSES, "a baseline from the sampled rewards", LOG_PROBS),
    ("greedy rewards tiled, not repeated", (BASELINE, "baseline = greedy_rewards.repeat(k)"),
     ADVANTAGE | LOSSES, "tiled", LOG_PROBS),
    ("no baseline", ("sample_rewards - baseline", "sample_rewards + 0 * baseline"),
     ADVANTAGE | LOSSES, "no baseline", LOG_PROBS),
    ("loss's sign flipped", ("return -(adv", "return (adv"), LOSSES, "sign flipped",
     ADVANTAGE | LOG_PROBS),
    ("padding counted", (SUM, "logp.sum(dim=-1)"), LOSSES, "padding counted",
     ADVANTAGE | LOG_PROBS),
    ("a mean over each sample's tokens", (SUM, SUM + " / mask.sum(dim=-1)"), LOSSES,
     "a mean over each sample's tokens", ADVANTAGE | LOG_PROBS),
    ("a mean over the batch's real tokens", ("/ logp.shape[0]", "/ mask.sum()"), LOSSES,
     "a mean over all the real tokens", ADVANTAGE | LOG_PROBS),
    ("a mean over all positions", ("/ logp.shape[0]", "/ logp.numel()"), LOSSES,
     "a mean over all N x T positions", ADVANTAGE | LOG_PROBS),
    ("no 1/N", (" / logp.shape[0]", ""), LOSSES, "no 1/N", ADVANTAGE | LOG_PROBS),
    ("off by one: column t scores token t", ("tokens[:, :-1], tokens[:, 1:]",
                                             "tokens[:, :-1], tokens[:, :-1]"),
     {P_TOKENS, TOKENS}, "off by one", ADVANTAGE | LOSSES | {P_GATHER, GATHER}),
    ("the model sees the token it predicts", ("model(inputs), targets",
                                              "model(tokens)[:, 1:], targets"),
     {P_TOKENS, TOKENS}, "the model saw the token it predicts",
     ADVANTAGE | LOSSES | {P_GATHER, GATHER}),
    ("raw logits", (LOG_SOFTMAX, "logits"), LOG_PROBS, "the logits themselves",
     ADVANTAGE | LOSSES),
    ("log-softmax over the time axis", (LOG_SOFTMAX, "torch.log_softmax(logits, dim=1)"),
     {P_GATHER, GATHER}, "over the time axis", ADVANTAGE | LOSSES),
]


def test_a_right_torch_submission_scores_full_marks_and_passes_its_public_tests(tmp_path):
    results = SCST.assert_full_marks(TORCH_SCST, tmp_path)
    assert set(results) == ADVANTAGE | LOSSES | LOG_PROBS
    # the student's own copy filled in as the statement says (the solution's code, its
    # comments aside, is no copy: the shape checks and k stay in the copy, outside the TODO)
    SCST.assert_filled_copy_scores_full_marks(FILLED, tmp_path)
    # the rewards are data (sacrebleu's, on the host): a detached advantage is as right
    detached = TORCH_SCST.replace("return sample_rewards - baseline",
                                  "return (sample_rewards - baseline).detach()")
    assert all(s == p for s, p, _, _ in SCST.grade(detached, tmp_path).values())


@pytest.mark.parametrize("why,edit,must_fail,says,must_pass", MUTANTS,
                         ids=[m[0] for m in MUTANTS])
def test_each_typical_bug_loses_the_right_points_with_a_useful_hint(tmp_path, why, edit,
                                                                    must_fail, says, must_pass):
    SCST.assert_bug_loses_its_points(TORCH_SCST, edit, must_fail, says, must_pass, tmp_path)
