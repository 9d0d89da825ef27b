"""Verifiable rewards of question answering (outline 6.3.1) in float64 NumPy: the oracle.

A completion c is the generated text up to and including the stop character s (without it
when the length limit came first); write c = x s or c = x. With the answer tags <a>, </a> and
the reasoning tags <t>, </t>:

    spans(x)   = the non-overlapping strings between an <a> and the next </a> in x
    r_exact(c) = 1  if spans(x) = [y*]  (exactly one answer, equal to the right one, as text)
                 0  otherwise (no answer tag, two answers, 072 for 72, " 72" for 72, ...)
    r_format(c) = 1 if c = <t> R </t><a> Y </a> s, R without < or >, Y non-empty without < or >
                  0 otherwise (trailing text, no stop, a missing or a repeated tag, ...)
    r(c)       = r_exact(c) + w r_format(c)            (DeepSeek-R1's accuracy + format)

Written here with regular expressions, the most direct reading of the definitions;
``core/cases/qa/rewards.py`` computes the same numbers with a scanner and is tested against
this on every edge case and on random strings.
"""

from __future__ import annotations

import re

import numpy as np

_SPAN = re.compile(r"<a>(.*?)</a>", re.DOTALL)
_FORMAT = re.compile(r"<t>[^<>]*</t><a>[^<>]+</a>")


def exact_match(completion: str, answer: str, stop: str = "\n") -> float:
    """r_exact = 1[spans(x) == [answer]]: one answer span, equal to ``answer`` as text."""
    text = completion.split(stop, 1)[0]
    return float(_SPAN.findall(text) == [answer])


def format_reward(completion: str, stop: str = "\n") -> float:
    """r_format = 1[completion == <t>R</t><a>Y</a> + stop], R, Y free of tags, Y non-empty."""
    if not completion.endswith(stop) or stop in completion[: -len(stop)]:
        return 0.0
    return float(_FORMAT.fullmatch(completion[: -len(stop)]) is not None)


def qa_rewards(
    completions: list[str], answers: list[str], format_weight: float, stop: str = "\n"
) -> np.ndarray:
    """r = r_exact + w r_format of each completion: ``(N,)`` float64."""
    return np.array(
        [exact_match(c, a, stop) + format_weight * format_reward(c, stop)
         for c, a in zip(completions, answers)],
        dtype=np.float64,
    )
