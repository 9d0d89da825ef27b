"""The verifiable rewards of question answering (outline 6.3.1), in batches, with checks.

With x the completion's text before the stop character s, and the tags of
``core/cases/qa/problems.py`` (<t> reasoning </t>, <a> answer </a>):

    r_exact(c)  = 1[the answers between <a> and </a> in x are exactly [y*]]
    r_format(c) = 1[c = <t> R </t><a> Y </a> s, R and Y free of < and >, Y non-empty]
    r(c)        = r_exact(c) + w r_format(c)                      (w = ``format_weight``)

as DeepSeek-R1 (2025) pays accuracy plus format. The exact match compares text: ``072`` or
`` 72`` is not ``72``, two answers are none, a missing ``</a>`` is no answer. The format asks
for the whole shape and nothing after it. The float64 oracle, written with regular
expressions, is ``core/reference/qa_rewards.py``; this file reads the text with a scanner
(``str.find``), and the two are tested equal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from duetrl.core.cases.qa.problems import ANSWER, END_ANSWER, END_THINK, THINK, solve
from duetrl.core.rlhf.tasks import STOP, check_rewards

FORMAT_WEIGHT = 0.5
"""w: the format reward's weight beside the exact match's 1."""


def answer_spans(text: str) -> list[str]:
    """The strings between each ``<a>`` and the next ``</a>``, left to right, not nested."""
    spans, start = [], 0
    while (open_at := text.find(ANSWER, start)) >= 0:
        close_at = text.find(END_ANSWER, open_at + len(ANSWER))
        if close_at < 0:
            break  # an unclosed tag holds no answer
        spans.append(text[open_at + len(ANSWER) : close_at])
        start = close_at + len(END_ANSWER)
    return spans


def extract_answer(completion: str, stop: str = STOP) -> str | None:
    """The one answer of ``completion`` (text before the stop), or None when it has no
    answer span or more than one."""
    spans = answer_spans(completion.split(stop, 1)[0])
    return spans[0] if len(spans) == 1 else None


def exact_match(completion: str, answer: str, stop: str = STOP) -> float:
    """r_exact = 1 when the completion's one answer is ``answer``, character for character."""
    return float(extract_answer(completion, stop) == answer)


def _free_of_tags(text: str) -> bool:
    return "<" not in text and ">" not in text


def format_reward(completion: str, stop: str = STOP) -> float:
    """r_format = 1 for ``<t>R</t><a>Y</a>`` + the stop, R and Y tag-free, Y non-empty."""
    body, found, rest = completion.partition(stop)
    if not found or rest or not body.startswith(THINK) or not body.endswith(END_ANSWER):
        return 0.0
    reasoning, middle, answer = body[len(THINK) : -len(END_ANSWER)].partition(END_THINK + ANSWER)
    ok = bool(middle) and bool(answer) and _free_of_tags(reasoning) and _free_of_tags(answer)
    return float(ok)


def check_completions(completions: Sequence[str], alphabet: str, expected: int) -> list[str]:
    """``completions`` as a list, each a string in ``alphabet``; a ValueError naming
    ``completions`` otherwise (a completion of another vocabulary cannot be the policy's)."""
    completions = list(completions)
    if len(completions) != expected:
        raise ValueError(f"completions: expected one per question ({expected}), got "
                         f"{len(completions)}")
    allowed = set(alphabet)
    for i, c in enumerate(completions):
        if not isinstance(c, str):
            raise ValueError(f"completions: expected strings, got {type(c).__name__} at {i}")
        foreign = sorted(set(c) - allowed)
        if foreign:
            raise ValueError(
                f"completions: completion {i} ({c!r}) has characters outside the task's "
                f"vocabulary: {foreign}; the policy can only write {alphabet!r}"
            )
    return completions


def qa_rewards(
    questions: Sequence[str],
    completions: Sequence[str],
    format_weight: float = FORMAT_WEIGHT,
    alphabet: str | None = None,
    stop: str = STOP,
) -> np.ndarray:
    """r = r_exact + w r_format per completion: ``(N,)`` float64.

    :param questions: the N questions (each read back by ``problems.solve``).
    :param completions: the N completions (text up to and including the stop).
    :param format_weight: w >= 0.
    :param alphabet: when given, every completion must be written in it.
    :raises ValueError: naming ``question`` for an empty or unknown question, ``completions``
        for a wrong count or a foreign character, ``format_weight`` for a negative weight.
    """
    if not (format_weight >= 0 and np.isfinite(format_weight)):
        raise ValueError(f"format_weight: expected a finite float >= 0, got {format_weight!r}")
    if alphabet is not None:
        completions = check_completions(completions, alphabet, len(questions))
    elif len(completions) != len(questions):
        raise ValueError(f"completions: expected one per question ({len(questions)}), got "
                         f"{len(completions)}")
    answers = [solve(q).answer for q in questions]
    return np.array([exact_match(c, a, stop) + format_weight * format_reward(c, stop)
                     for c, a in zip(completions, answers)], dtype=np.float64)


def checked_rewards(
    reward_fn: Callable[[Sequence[str], Sequence[str]], object],
    questions: Sequence[str],
    completions: Sequence[str],
) -> np.ndarray:
    """``reward_fn(questions, completions)`` checked: one finite float per completion, else a
    ValueError naming ``reward_fn`` (a custom reward that returns NaN stops here, not in
    the optimiser)."""
    return check_rewards(reward_fn(questions, completions), len(completions), "reward_fn")
