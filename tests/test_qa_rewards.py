"""Question answering with verifiable rewards (core/cases/qa): the questions, the held-out split,
the exact-match and format rewards against their float64 oracle, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from duetrl.core.cases.qa import problems, rewards
from duetrl.core.cases.qa.tasks import ALPHABET, QA_TASKS, careless_solution, make_qa_task
from duetrl.core.reference import qa_rewards as oracle
from duetrl.core.rlhf.settings import RLHFSettings

Q = problems.pad("what is 27 plus 45?")
GOLD = "<t>7+5=12 2+4+1=7</t><a>72</a>\n"

# (completion, r_exact, r_format): the edge cases a mutant of either reward would survive
EDGE_CASES = [
    (GOLD, 1, 1),
    ("<t></t><a>72</a>\n", 1, 1),  # no reasoning is still the format
    ("<t>7+5=12 2+4+1=7</t>72\n", 0, 0),  # the right answer, no answer tag
    ("<t>x</t><a>72</a><a>72</a>\n", 0, 0),  # two answers (even equal) are none
    ("<t>x</t><a>62</a><a>72</a>\n", 0, 0),
    ("<t>x</t><a>72</a> so 72\n", 1, 0),  # trailing text: right, not the format
    ("<t>x</t><a>72</a>", 1, 0),  # no stop: cut by the length limit
    ("<t>x</t><a>072</a>\n", 0, 1),  # a right number in the wrong form
    ("<t>x</t><a> 72</a>\n", 0, 1),
    ("<t>x</t><a>62</a>\n", 0, 1),  # wrong, well formed
    ("<a>72</a>\n", 1, 0),  # no reasoning tags
    ("<t>x<a>72</a></t><a>72</a>\n", 0, 0),  # an answer inside the reasoning
    ("<t>x</t><a>72\n", 0, 0),  # unclosed answer
    ("<t>x</t><a></a>\n", 0, 0),  # empty answer
    ("<t>x</t></t><a>72</a>\n", 1, 0),  # a repeated tag
    ("\n", 0, 0),
    ("", 0, 0),
]


@pytest.mark.parametrize("completion, exact, form", EDGE_CASES)
def test_exact_match_and_format_on_the_edge_cases(completion, exact, form):
    assert rewards.exact_match(completion, "72") == exact == oracle.exact_match(completion, "72")
    assert rewards.format_reward(completion) == form == oracle.format_reward(completion)
    reward = rewards.qa_rewards([Q], [completion], format_weight=0.5)
    assert reward.dtype == np.float64 and reward.tolist() == [exact + 0.5 * form]


def test_the_rewards_equal_the_oracle_on_random_strings():
    rng = np.random.default_rng(0)
    pieces = ["<t>", "</t>", "<a>", "</a>", "72", "7", "2", "x", " ", "<", ">", "/", "\n"]
    completions = ["".join(rng.choice(pieces, size=rng.integers(0, 9))) for _ in range(3000)]
    completions += [GOLD[:i] + GOLD[i + 1 :] for i in range(len(GOLD))]  # one character off
    mine = rewards.qa_rewards([Q] * len(completions), completions, format_weight=0.3)
    ref = oracle.qa_rewards(completions, ["72"] * len(completions), 0.3)
    np.testing.assert_array_equal(mine, ref)
    assert 0 < (ref == 1.3).sum() < len(ref) and (ref == 0.3).any() and (ref == 1.0).any()


def test_questions_solve_back_and_the_held_out_problems_never_train():
    rng = np.random.default_rng(1)
    for family in ("arithmetic", "lookup"):
        for _ in range(200):
            question, problem = problems.draw(family, rng)
            assert len(question) == problems.PROMPT_WIDTH and problems.solve(question) == problem
            assert not problems.held_out(problem.key)
        held = [problems.draw(family, rng, "held_out")[1] for _ in range(50)]
        assert all(problems.held_out(p.key) for p in held)
    corpus = QA_TASKS["qa-mixed"].corpus(500)  # the warm-up's documents
    assert not any(problems.held_out(problems.solve(d.split("<t>")[0]).key) for d in corpus)
    assert problems.column_addition(85, 47) == ("5+7=12 8+4+1=13", "132")
    assert problems.column_addition(3, 4) == ("3+4=7 0+0=0", "7")
    assert careless_solution(problems.pad("what is 85 plus 47?")) == ("5+7=12 8+4=12", "122")
    lookup = problems.pad("ann:owl bob:cat cal:dog. bob?")
    assert problems.solve(lookup).answer == "cat" and careless_solution(lookup)[1] == "owl"


def test_the_warm_up_corpus_mixes_gold_and_careless_demonstrations():
    docs = make_qa_task("arithmetic", careless=0.5, name="qa-test-careless").corpus(400)
    right = [rewards.exact_match(d.partition("?")[2], problems.solve(d.partition("?")[0] + "?")
                                 .answer) for d in docs]
    assert 0.6 < np.mean(right) < 0.9  # carries are about half the problems, slipped half
    assert all(rewards.format_reward(d.partition("?")[2]) == 1.0 for d in docs)
    direct = QA_TASKS["qa-arithmetic-direct"].corpus(5)
    assert all("<t></t><a>" in d for d in direct)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="question: expected a question, got an empty one"):
        rewards.qa_rewards(["   "], [GOLD])
    with pytest.raises(ValueError, match="question: expected an arithmetic question"):
        problems.solve("what is the capital of france?")
    with pytest.raises(ValueError, match=r"completions: completion 0 .* outside the task's "
                                         r"vocabulary: \['Ω'\]"):
        rewards.qa_rewards([Q], ["<t>Ω</t><a>72</a>\n"], alphabet=ALPHABET)
    with pytest.raises(ValueError, match="completions: expected one per question"):
        rewards.qa_rewards([Q, Q], [GOLD])
    with pytest.raises(ValueError, match="format_weight"):
        rewards.qa_rewards([Q], [GOLD], format_weight=float("nan"))
    with pytest.raises(ValueError, match="family: expected one of"):
        make_qa_task("poetry")
    nan_task = make_qa_task("arithmetic", reward_fn=lambda q, c: [float("nan")] * len(c),
                            name="qa-test-nan")
    with pytest.raises(ValueError, match="reward_fn: rewards must be finite, got nan"):
        nan_task.rewards([Q], [GOLD])


def test_the_qa_tasks_are_known_to_the_rl_settings():
    assert RLHFSettings(task="qa-arithmetic", algo="grpo").task == "qa-arithmetic"
    assert set(QA_TASKS) >= {"qa-arithmetic", "qa-lookup", "qa-mixed", "qa-lookup-direct"}
    with pytest.raises(ValueError, match="task: expected one of .*qa-arithmetic"):
        RLHFSettings(task="qa-poetry")


# ---- hand cases from mutation testing of the oracle (MUTATION.md) --------------------------


def test_the_oracle_reads_nothing_after_the_stop() -> None:
    """An answer after the stop is not part of the completion: one span before it counts."""
    assert oracle.exact_match("<t>x</t><a>72</a>\n<a>72</a>", "72") == 1.0


def test_the_oracle_refuses_a_stop_inside_the_reasoning() -> None:
    """The stop ends the completion: a completion with one inside its reasoning is two lines,
    not the format, although <t>[^<>]*</t> would match a newline there."""
    assert oracle.format_reward("<t>a\nb</t><a>72</a>\n") == 0.0
    assert oracle.format_reward("<t>a b</t><a>72</a>\n") == 1.0


def test_the_oracle_rewards_are_float64_whatever_the_weight() -> None:
    """A float32 format weight (read from a float32 config) still gives float64 rewards:
    1 + 0.25 x 1 and 0 + 0.25 x 0."""
    got = oracle.qa_rewards(["<t>x</t><a>72</a>\n", "72\n"], ["72", "72"], np.float32(0.25))
    assert got.dtype == np.float64 and got.tolist() == [1.25, 0.0]
