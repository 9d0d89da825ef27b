"""The ``lm-agent`` assignment (outline 3.2.3, 3.2.5): GLAM's action scoring and the Decision
Transformer's return-to-go tokens, graded against the float64 oracle.

The reference solution's full marks in both frameworks and the guard's cheat-and-hang check run
for every assignment in ``test_coursework.py`` and ``test_grader_guard.py`` (a child process
each). Here: the new backend functions against their oracle in both frameworks; the statement;
and the typical one-character bugs, each graded in this process (the grader's own
``run_call`` and ``case_verdict``, no child: milliseconds each), each losing the right points
with a hint that names what the answer matches.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from coursework_harness import Harness

from duetrl.core.agents.dt_data import ReturnBuckets, return_to_go
from duetrl.core.backend import load_backend
from duetrl.core.coursework.integrity import integrity_problems
from duetrl.core.coursework.make import make_assignment
from duetrl.core.coursework.public import check_public_case, public_case_names
from duetrl.core.coursework.specs import get_assignment
from duetrl.core.reference import decision_transformer as oracle

SEED = 20261130
LM_AGENT = Harness("lm-agent", SEED)

# ---- the new backend functions against the oracle, and the oracle against dt_data -----------


@pytest.mark.parametrize("name", ["torch", "tf"])
def test_returns_to_go_and_tokens_match_the_oracle(name):
    backend = load_backend(name)
    module = importlib.import_module(f"duetrl.backends.{name}.decision_transformer")
    rng = np.random.default_rng(1)
    rewards, dones = rng.normal(size=(3, 11)), (rng.random((3, 11)) < 0.3).astype(float)
    for dtype, atol in (("float64", 1e-12), ("float32", 1e-5)):
        got = backend.to_numpy(module.returns_to_go(backend.as_tensor(rewards.astype(dtype)),
                                                    backend.as_tensor(dones.astype(dtype)), 0.9))
        assert got.dtype == dtype
        np.testing.assert_allclose(got, oracle.returns_to_go(rewards, dones, 0.9), atol=atol)
    returns = np.array([-3.0, -2, -1, 0, 1, 2, 3, 5, 6, 7.5, 0.3, 4.9])  # ties at -1, 1, 3, 5
    for low, high, num in ((-2.0, 6.0, 5), (0.0, 1.0, 2), (1.0, 1.0, 4)):
        got = backend.to_numpy(module.return_tokens(backend.as_tensor(returns), low, high, num))
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, oracle.return_tokens(returns, low, high, num))
    with pytest.raises(ValueError, match="num_buckets, low, high"):
        module.return_tokens(backend.as_tensor(returns), 2.0, 1.0, 5)


def test_the_oracle_is_what_dt_data_computes():
    rng = np.random.default_rng(2)
    for length in (1, 2, 9):
        rewards = rng.normal(size=length)
        dones = np.zeros(length)
        dones[-1] = 1.0
        np.testing.assert_array_equal(oracle.returns_to_go(rewards, dones, 1.0),
                                      return_to_go(rewards))
    # closed form, two episodes end to end: R_t = sum_{k=t}^{end} gamma^(k-t) r_k
    rewards, dones, gamma = np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.array([0, 1, 0, 0, 1.0]), 0.5
    np.testing.assert_allclose(oracle.returns_to_go(rewards, dones, gamma),
                               [1 + 0.5 * 2, 2, 3 + 0.5 * 4 + 0.25 * 5, 4 + 0.5 * 5, 5])
    buckets = ReturnBuckets(-2.0, 6.0, 5)
    returns = np.linspace(-4, 8, 49)  # every 0.25: the ties (x.5 buckets) among them
    np.testing.assert_array_equal(oracle.return_tokens(returns, -2.0, 6.0, 5),
                                  buckets.token(returns))
    assert oracle.return_tokens(np.array([-1.0, 1.0, 3.0, 5.0]), -2.0, 6.0, 5).tolist() == \
        [0, 2, 2, 4]  # halfway: to the even bucket
    np.testing.assert_array_equal(oracle.return_tokens(returns, 3.0, 3.0, 4),
                                  ReturnBuckets(3.0, 3.0, 4).token(returns))


# ---- the statement and the student's folder -------------------------------------------------


def test_statement_renders_and_the_student_copy_is_clean(tmp_path):
    markdown_it = pytest.importorskip("markdown_it")
    written = make_assignment("lm-agent", "tf", tmp_path / "hw")
    readme = (tmp_path / "hw" / "README.md").read_text()
    html = markdown_it.MarkdownIt("commonmark").enable("table").render(readme)
    assert html.count("<h1>") == 1 and html.count("<h2>") >= 2
    assert html.count("<table>") == 1 and html.count("<tr>") == 5  # the header + 4 arrays
    blocks = html.count("<pre><code>")
    assert blocks >= 3  # the equations, as code blocks
    for equation in ("score_k = sum_{i=1}^{L_k} log p_LM(a_k,i | p, a_k,&lt;i)",
                     "R_t = sum_{k=t}^{end of t's episode} gamma^(k-t) r_k",
                     "bucket(R) = round((R - low) / (high - low) * (num_buckets - 1))"):
        assert equation in html, equation
    student = (tmp_path / "hw" / "lm_agent.py").read_text()
    assignment = get_assignment("lm-agent")
    assert not integrity_problems(student, assignment, "tf")
    for todo in assignment.todo_names("tf"):
        assert f'raise NotImplementedError("TODO: {todo}")' in student
    assert "if int(num_buckets) < 2" in student  # the argument check is kept (markers)
    assert "class LMAgentLearner" not in student and len(written) == 3


# ---- a right torch submission and its one-character mutants ---------------------------------

TORCH_LM_AGENT = '''
import torch

from duetrl.core.constants import MASK_FILL_VALUE


def command_scores(token_logp, mask):
    return (mask * token_logp).sum(-1)


def admissible_log_probs(scores, admissible):
    masked = scores.masked_fill(admissible == 0, MASK_FILL_VALUE)
    return torch.log_softmax(masked, -1) * admissible


def agent_outputs(model, value_head, tokens, mask, admissible, prompt_last):
    S, K = admissible.shape
    h = model.hidden_states(tokens[:, :-1])
    logp = torch.log_softmax(h @ model.wte.weight.T, -1)
    picked = logp.gather(-1, tokens[:, 1:].unsqueeze(-1)).squeeze(-1)
    scores = command_scores(picked, mask).view(S, K)
    first_rows = h.view(S, K, h.shape[1], h.shape[2])[:, 0]
    v = value_head(first_rows)[torch.arange(S), prompt_last]
    return admissible_log_probs(scores, admissible), v


def returns_to_go(rewards, dones, gamma):
    out = torch.empty_like(rewards)
    running = torch.zeros_like(rewards[..., 0])
    for t in reversed(range(rewards.shape[-1])):
        running = rewards[..., t] + gamma * (1 - dones[..., t]) * running
        out[..., t] = running
    return out


def return_tokens(returns, low, high, num_buckets):
    if high == low:
        return torch.zeros(returns.shape, dtype=torch.int64)
    x = (returns - low) / (high - low) * (num_buckets - 1)
    return x.round().clamp(0, num_buckets - 1).long()
'''

P_SCORES, P_POLICY, P_AGENT, P_RTG, P_TOKENS = public_case_names("lm-agent")
SCORES, SCORES_32 = "scores: commands of different lengths, padded", "scores: float32 in, float32 out"
POLICY = "policy: states with empty places"
AGENT, AGENT_PAD = ("agent_outputs: commands of different lengths",
                    "agent_outputs: padding with arbitrary ids")
RTG, RTG_1, RTG_ONE, RTG_32 = ("returns-to-go: episodes end to end",
                               "returns-to-go: gamma = 1 (the Decision Transformer's)",
                               "returns-to-go: one-step episodes",
                               "returns-to-go: float32 in, float32 out")
TIES, RANGE, SAME, TOKENS_32 = ("return tokens: returns on the bucket boundaries",
                                "return tokens: returns in and outside the range",
                                "return tokens: every return the same (high == low)",
                                "return tokens: float32 returns, int64 ids")
PART_A = {P_SCORES, P_POLICY, P_AGENT, SCORES, SCORES_32, POLICY, AGENT, AGENT_PAD}
PART_B = {P_RTG, P_TOKENS, RTG, RTG_1, RTG_ONE, RTG_32, TIES, RANGE, SAME, TOKENS_32}

# (why, the edit, tests that must fail, what their message must say, tests that must pass)
MUTANTS = [
    ("mean instead of sum", ("(mask * token_logp).sum(-1)",
                             "(mask * token_logp).sum(-1) / mask.sum(-1)"),
     {P_SCORES, SCORES, SCORES_32, AGENT}, "a mean over the command's tokens",
     PART_B | {POLICY}),
    ("padding not masked", ("(mask * token_logp).sum(-1)", "token_logp.sum(-1)"),
     {P_SCORES, SCORES, AGENT, AGENT_PAD}, "a sum over every column: prompt and padding",
     PART_B | {POLICY}),
    ("the LM's probabilities, not a softmax over the commands",
     ("torch.log_softmax(masked, -1) * admissible", "scores * admissible"),
     {P_POLICY, POLICY, AGENT}, "normalised over the vocabulary only", PART_B | {SCORES}),
    ("the empty places of the grid not masked",
     ("masked = scores.masked_fill(admissible == 0, MASK_FILL_VALUE)", "masked = scores"),
     {P_POLICY, POLICY}, "the empty places of the grid took probability", PART_B | {SCORES}),
    ("off by one: the logits of column t score token t",
     ("tokens[:, 1:].unsqueeze(-1)", "tokens[:, :-1].unsqueeze(-1)"),
     {P_AGENT, AGENT, AGENT_PAD}, "the distribution of token t is the GPT's output at column t "
     "- 1", PART_B | {SCORES, POLICY}),
    ("the value read one column late", ("[torch.arange(S), prompt_last]",
                                        "[torch.arange(S), prompt_last + 1]"),
     {P_AGENT, AGENT, AGENT_PAD}, "V(s) read one column after", PART_B | {SCORES, POLICY}),
    ("return-to-go computed forwards", ("reversed(range(rewards.shape[-1]))",
                                        "range(rewards.shape[-1])"),
     {P_RTG, RTG, RTG_1, RTG_32}, "run forwards in time", PART_A | {RTG_ONE, TIES, RANGE}),
    ("gamma ignored", ("gamma * (1 - dones", "(1 - dones"),
     {P_RTG, RTG, RTG_32}, "gamma ignored", PART_A | {RTG_1, RTG_ONE, TIES}),
    ("the sum runs past an episode's end", ("gamma * (1 - dones[..., t])", "gamma"),
     {RTG, RTG_1, RTG_ONE, RTG_32}, "start again where done_t = 1", PART_A | {P_RTG, TIES}),
    ("bucket boundary with >= (ties up)", ("x.round()", "(x + 0.5).floor()"),
     {TIES}, "ties rounded up", PART_A | {P_TOKENS, RANGE, SAME, TOKENS_32, RTG}),
    ("bucket boundary with < (ties down)", ("x.round()", "(x - 0.5).ceil()"),
     {TIES}, "ties rounded down", PART_A | {P_TOKENS, RANGE, SAME, TOKENS_32, RTG}),
    ("no clipping", (".clamp(0, num_buckets - 1)", ""),
     {TIES, RANGE}, "no clipping", PART_A | {P_TOKENS, SAME, RTG}),
]


def grade_here(source: str, tmp_path: Path, backend: str = "torch") -> dict[str, tuple]:
    """Every case of the assignment on ``source``, in this process (the shared harness of the
    coursework tests). ``{case name: (score, max, message, visibility)}``."""
    return LM_AGENT.grade(source, tmp_path, backend)


def test_a_right_torch_submission_scores_full_marks_and_passes_its_public_tests(tmp_path):
    results = grade_here(TORCH_LM_AGENT, tmp_path)
    assert set(results) == PART_A | PART_B
    assert all(score == points for score, points, _, _ in results.values()), results
    assert not integrity_problems(TORCH_LM_AGENT, get_assignment("lm-agent"), "torch")
    for index in range(5):  # what the student's test_lm_agent_public.py runs at home
        assert check_public_case("lm-agent", "torch", tmp_path / "lm_agent.py", index) == \
            (True, "passed")


@pytest.mark.parametrize("why,edit,must_fail,says,must_pass", MUTANTS,
                         ids=[m[0] for m in MUTANTS])
def test_each_typical_bug_loses_the_right_points_with_a_useful_hint(tmp_path, why, edit,
                                                                    must_fail, says, must_pass):
    assert TORCH_LM_AGENT.count(edit[0]) == 1, edit[0]
    results = grade_here(TORCH_LM_AGENT.replace(edit[0], edit[1]), tmp_path)
    failed = {name for name, (score, points, _, _) in results.items() if score < points}
    assert must_fail <= failed, (why, failed)
    assert not must_pass & failed, (why, must_pass & failed)
    score = sum(r[0] for r in results.values())
    assert 0 < score < sum(r[1] for r in results.values())
    for name in must_fail:
        _, _, message, visibility = results[name]
        assert "; it matches " in message and says in message and "Hint: " in message, message
        if visibility == "hidden":  # the size of the error, never a hidden value
            assert "max abs error" in message and " at index " not in message, message
