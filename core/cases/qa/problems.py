"""Questions whose answers a program checks (outline 6.3.1), made in code: framework-free.

Two families, each with a worked *reasoning* the supervised warm-up imitates:

==========  =========================================  =================================
family      question (prompt)                          reasoning, then answer
==========  =========================================  =================================
arithmetic  ``"ann has 27 figs, gets 45. how many?"``  ``<t>7+5=12 2+4+1=7</t><a>72</a>``
            (two numbers 0..99; four templates)        column addition, carry written out
lookup      ``"ann:owl bob:cat cal:dog. bob?"``        ``<t>bob:cat</t><a>cat</a>``
            (a small fact table, then one key)         the row copied, then the value
==========  =========================================  =================================

Every question is left-padded with spaces to :data:`PROMPT_WIDTH` characters, so a batch
decodes without padding (``core/rlhf/mdp.rollout``).

**Held out.** A question's *problem* (the two numbers; the table and the key) has a stable
hash; one problem in :data:`HELD_OUT_EVERY` is held out and never drawn for training (neither
by the warm-up's corpus nor by RL's prompts), whatever its template. Held-out accuracy is
therefore accuracy on problems the model has never seen in any wording.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

FAMILIES = ("arithmetic", "lookup", "mixed")
"""Question families: ``mixed`` draws each question from one of the two at random."""

PROMPT_WIDTH = 36
"""Characters of every question (left-padded with spaces)."""

HELD_OUT_EVERY = 10
"""One problem in this many (by a stable hash) is held out of training."""

NAMES = ("ann", "bob", "cal", "dan", "eve", "fay", "gus", "hal")
VALUES = ("cat", "dog", "owl", "fox", "elk", "yak", "bee", "ant")
OBJECTS = ("figs", "pens", "cups", "hats")
ARITHMETIC_TEMPLATES = (
    "{p} has {a} {o}, gets {b}. how many?",
    "{a} {o} and {b} {o}. how many {o}?",
    "{p} has {a}, {q} has {b}. total?",
    "what is {a} plus {b}?",
)
TABLEROWS = 3  # rows of a lookup question's fact table

THINK, END_THINK, ANSWER, END_ANSWER = "<t>", "</t>", "<a>", "</a>"
"""The tags of a "reasoning, then answer" completion (DeepSeek-R1's <think>, <answer>)."""


@dataclass(frozen=True)
class Problem:
    """One question and its checked solution.

    :param family: ``"arithmetic"`` or ``"lookup"``.
    :param key: the problem without its wording (``"27+45"``, ``"ann:owl bob:cat cal:dog|bob"``):
        what the held-out split hashes.
    :param reasoning: the worked steps the warm-up imitates (between the think tags).
    :param answer: the only right answer, as it must appear between the answer tags.
    """

    family: str
    key: str
    reasoning: str
    answer: str

    def completion(self, stop: str = "\n") -> str:
        """The gold completion: ``<t>reasoning</t><a>answer</a>`` and the stop."""
        return f"{THINK}{self.reasoning}{END_THINK}{ANSWER}{self.answer}{END_ANSWER}{stop}"


def held_out(key: str) -> bool:
    """True for the problems kept out of training: crc32(key) mod HELD_OUT_EVERY == 0."""
    return zlib.crc32(key.encode()) % HELD_OUT_EVERY == 0


def column_addition(a: int, b: int) -> tuple[str, str]:
    """(reasoning, answer) of a + b, units then tens with the carry written out:

    ``27 + 45`` -> ``"7+5=12 2+4+1=7"``, ``"72"``; ``85 + 47`` -> ``"5+7=12 8+4+1=13"``, ``"132"``.
    """
    units = a % 10 + b % 10
    carry = units // 10
    tens = a // 10 + b // 10 + carry
    second = f"{a // 10}+{b // 10}" + (f"+{carry}" if carry else "") + f"={tens}"
    return f"{a % 10}+{b % 10}={units} {second}", str(a + b)


def careless_addition(a: int, b: int) -> tuple[str, str]:
    """(reasoning, answer) of a + b with the carry forgotten, the commonest slip of column
    addition: ``27 + 45`` -> ``"7+5=12 2+4=6"``, ``"62"``. Without a carry it is right."""
    units = a % 10 + b % 10
    tens = a // 10 + b // 10
    return f"{a % 10}+{b % 10}={units} {a // 10}+{b // 10}={tens}", str(tens * 10 + units % 10)


def careless_lookup(rows: Sequence[tuple[str, str]], name: str) -> tuple[str, str]:
    """(reasoning, answer) of a lookup that reads the first row whatever was asked."""
    first, value = rows[0]
    return f"{first}:{value}", value


def arithmetic_problem(a: int, b: int) -> Problem:
    """The problem a + b (0 <= a, b <= 99)."""
    reasoning, answer = column_addition(a, b)
    return Problem("arithmetic", f"{a}+{b}", reasoning, answer)


def lookup_problem(rows: Sequence[tuple[str, str]], name: str) -> Problem:
    """The value of ``name`` in the fact table ``rows`` ((name, value) pairs)."""
    table = dict(rows)
    key = " ".join(f"{n}:{v}" for n, v in rows) + f"|{name}"
    return Problem("lookup", key, f"{name}:{table[name]}", table[name])


def pad(text: str) -> str:
    """``text`` left-padded with spaces to :data:`PROMPT_WIDTH` characters."""
    if len(text) > PROMPT_WIDTH:
        raise ValueError(f"question: expected at most {PROMPT_WIDTH} characters, got "
                         f"{len(text)}: {text!r}")
    return text.rjust(PROMPT_WIDTH)


def _draw_arithmetic(rng: np.random.Generator) -> tuple[str, Problem]:
    a, b = (int(x) for x in rng.integers(0, 100, size=2))
    template = ARITHMETIC_TEMPLATES[int(rng.integers(len(ARITHMETIC_TEMPLATES)))]
    p, q = (NAMES[i] for i in rng.choice(len(NAMES), size=2, replace=False))
    o = OBJECTS[int(rng.integers(len(OBJECTS)))]
    return pad(template.format(p=p, q=q, a=a, b=b, o=o)), arithmetic_problem(a, b)


def _draw_lookup(rng: np.random.Generator) -> tuple[str, Problem]:
    names = [NAMES[i] for i in rng.choice(len(NAMES), size=TABLEROWS, replace=False)]
    values = [VALUES[i] for i in rng.choice(len(VALUES), size=TABLEROWS, replace=False)]
    rows = list(zip(names, values))
    name = names[int(rng.integers(TABLEROWS))]
    table = " ".join(f"{n}:{v}" for n, v in rows)
    return pad(f"{table}. {name}?"), lookup_problem(rows, name)


def draw(family: str, rng: np.random.Generator, split: str = "train") -> tuple[str, Problem]:
    """One question of ``family`` from ``split`` (``"train"``: never a held-out problem;
    ``"held_out"``: only held-out ones), drawn with ``rng``."""
    check_family(family)
    if split not in ("train", "held_out"):
        raise ValueError(f"split: expected 'train' or 'held_out', got {split!r}")
    while True:  # rejection: about 1 draw in 10 is held out
        kind = family if family != "mixed" else ("arithmetic", "lookup")[int(rng.integers(2))]
        question, problem = (_draw_arithmetic if kind == "arithmetic" else _draw_lookup)(rng)
        if held_out(problem.key) == (split == "held_out"):
            return question, problem


def questions(family: str, n: int, rng: np.random.Generator, split: str = "train") -> list[str]:
    """``n`` questions of ``family`` from ``split``."""
    return [draw(family, rng, split)[0] for _ in range(n)]


NUMBER = re.compile(r"\d+")
ROW = re.compile(r"([a-z]+):([a-z]+)")


def solve(question: str) -> Problem:
    """The problem a question asks, read back from its text (the reward's checker).

    :raises ValueError: naming ``question`` for an empty question or one of no known family.
    """
    text = question.strip()
    if not text:
        raise ValueError("question: expected a question, got an empty one "
                         f"({len(question)} characters of spaces)")
    if ":" in text:  # "ann:owl bob:cat cal:dog. bob?"
        table, _, asked = text.rpartition(". ")
        rows = ROW.findall(table)
        name = asked.rstrip("?")
        if rows and name in dict(rows):
            return lookup_problem(rows, name)
    else:
        numbers = NUMBER.findall(text)
        if len(numbers) == 2 and all(len(n) <= 2 for n in numbers):
            return arithmetic_problem(int(numbers[0]), int(numbers[1]))
    raise ValueError(
        f"question: expected an arithmetic question with two numbers 0..99 or a fact-table "
        f"lookup ('ann:owl bob:cat. bob?'), got {question!r}"
    )


def check_family(family: str) -> str:
    """``family`` if it is one of :data:`FAMILIES`; a ValueError naming it otherwise."""
    if family not in FAMILIES:
        raise ValueError(f"family: expected one of {list(FAMILIES)}, got {family!r}")
    return family
