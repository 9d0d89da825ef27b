"""The question-answering tasks (outline 6.3.1) as text tasks of ``core/rlhf``.

``qa-<family>`` (family: arithmetic, lookup, mixed) is a :class:`~duetrl.core.rlhf.tasks.TextTask`
whose prompts are training questions (never a held-out problem), whose corpus is the gold
"reasoning, then answer" completion (the supervised warm-up's data), and whose reward is
``r_exact + w r_format`` (``core/cases/qa/rewards.py``). ``qa-<family>-direct`` is the same
without the reasoning: its gold completions are ``<t></t><a>72</a>``, the ablation that
shows what the scratchpad is worth. Importing this module registers all six with
``core/rlhf/tasks.register_task``, so ``RLHFSettings(task="qa-arithmetic")`` and ``RLHFRun``
know them.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence

import numpy as np

from duetrl.core.cases.qa.problems import (
    FAMILIES,
    NUMBER,
    PROMPT_WIDTH,
    ROW,
    careless_addition,
    careless_lookup,
    check_family,
    draw,
    solve,
)
from duetrl.core.cases.qa.rewards import FORMAT_WEIGHT, exact_match, qa_rewards
from duetrl.core.rlhf.tasks import STOP, TextTask, get_task, register_task

ALPHABET = string.ascii_lowercase + string.digits + " .,?:+=<>/" + STOP
"""Every character a question or a completion may hold (47 tokens)."""

MAX_COMPLETION = 36
"""The longest completion, in tokens: the longest gold one is 33 (``<t>5+7=12 8+4+1=13</t>
<a>132</a>`` and the stop), plus room to write too much."""


CARELESS = 0.5
"""The share of careless demonstrations in the warm-up corpus of the registered tasks."""


def careless_solution(question: str) -> tuple[str, str]:
    """(reasoning, answer) the careless demonstrator writes for ``question``."""
    problem = solve(question)
    if problem.family == "arithmetic":
        a, b = (int(n) for n in NUMBER.findall(question))
        return careless_addition(a, b)
    table, _, _ = question.strip().rpartition(". ")
    return careless_lookup(ROW.findall(table), problem.reasoning.split(":")[0])


def task_name(family: str, scratchpad: bool = True) -> str:
    """``qa-<family>``, or ``qa-<family>-direct`` without the reasoning."""
    return f"qa-{check_family(family)}" + ("" if scratchpad else "-direct")


def make_qa_task(
    family: str,
    scratchpad: bool = True,
    format_weight: float = FORMAT_WEIGHT,
    reward_fn: Callable[[Sequence[str], Sequence[str]], object] | None = None,
    name: str | None = None,
    careless: float = CARELESS,
) -> TextTask:
    """A question-answering task of ``family``.

    :param scratchpad: the warm-up corpus writes the reasoning (else ``<t></t>``).
    :param format_weight: w of r = r_exact + w r_format.
    :param reward_fn: replaces that reward (``reward_fn(questions, completions) -> (N,)``);
        ``TextTask.rewards`` checks what it returns (a NaN is a ValueError naming
        ``reward_fn``).
    :param name: the task's name (default :func:`task_name`; give another one for a custom
        reward, so the registered task of that name is not shadowed).
    :param careless: the share of the warm-up's demonstrations written by a careless
        demonstrator (it forgets the carry; it reads the first row of the table): the
        supervised model learns these slips with the rest, RL is paid only for right answers.
    """
    check_family(family)
    if not 0.0 <= careless <= 1.0:
        raise ValueError(f"careless: expected a share in [0, 1], got {careless!r}")

    def prompts(n: int, rng: np.random.Generator) -> list[str]:
        return [draw(family, rng)[0] for _ in range(n)]

    def completion(question: str, rng: np.random.Generator) -> str:
        problem = solve(question)
        reasoning, answer = problem.reasoning, problem.answer
        if rng.uniform() < careless:  # the slip, worked through consistently
            reasoning, answer = careless_solution(question)
        return f"<t>{reasoning if scratchpad else ''}</t><a>{answer}</a>{STOP}"

    def rewards(questions: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        return qa_rewards(questions, completions, format_weight, ALPHABET)

    def success(questions: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        return np.array([exact_match(c, solve(q).answer) == 1.0
                         for q, c in zip(questions, completions)])

    what = {"arithmetic": "add two numbers in a word problem",
            "lookup": "read one value from a small fact table", "mixed": "both"}[family]
    return TextTask(
        name=name or task_name(family, scratchpad),
        description=f"{what}; '<t>reasoning</t><a>answer</a>' (reward: exact match + "
                    f"{format_weight:g} x format)" + ("" if scratchpad else ", no reasoning"),
        alphabet=ALPHABET,
        prompt_fn=prompts,
        completion_fn=completion,
        reward_fn=reward_fn if reward_fn is not None else rewards,
        success_fn=success,
        prompt_length=PROMPT_WIDTH,
        max_completion=MAX_COMPLETION,
    )


QA_TASKS = {t.name: register_task(t)
            for family in FAMILIES for t in (make_qa_task(family), make_qa_task(family, False))}
"""The registered tasks by name: qa-arithmetic, qa-arithmetic-direct, qa-lookup, ..."""


def qa_task(name: str | TextTask) -> TextTask:
    """The QA task ``name`` (a TextTask passes through); ValueError naming ``task`` otherwise."""
    task = get_task(name)
    if isinstance(name, str) and name not in QA_TASKS:
        raise ValueError(f"task: expected a question-answering task, one of {list(QA_TASKS)}, "
                         f"got {name!r}")
    return task
