"""The Chinese catalogues use the glossary's terms (docs/glossary.md), and the book links it.

For every row of the glossary marked ✓ under *checked*: a translated message whose English
uses the term (outside code and math) must use the glossary's Chinese for it, and no message
may use a variant listed under *not*, unless its English names the term that variant
translates (优势函数 is right where the English says "advantage function").
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import pytest

DOCS = Path(__file__).parent.parent / "docs"
GLOSSARY = DOCS / "glossary.md"
CATALOGUES = sorted((DOCS / "locale" / "zh_CN" / "LC_MESSAGES").rglob("*.po"))


class Term(NamedTuple):
    english: str
    chinese: str
    avoid: tuple[str, ...]
    checked: bool


def glossary_terms(text: str) -> list[Term]:
    """The rows of the glossary's table: English | 中文 | symbol | not | checked."""
    terms = []
    for line in text.splitlines():
        if not line.startswith("| ") or line.startswith("| English") or set(line) <= set("|- "):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        assert len(cells) == 5, f"a glossary row needs 5 cells: {line!r}"
        english, chinese, _, avoid, checked = cells
        terms.append(
            Term(
                english,
                chinese,
                tuple(v for v in re.split(r"[、,]\s*", avoid) if v),
                checked == "✓",
            )
        )
    return terms


TERMS = glossary_terms(GLOSSARY.read_text())


def english_pattern(term: str) -> re.Pattern:
    """The term as a whole phrase, any case, with an optional plural ending."""
    return re.compile(rf"(?<![\w-]){re.escape(term)}(?:s|es)?(?![\w-])", re.IGNORECASE)


def prose(message: str) -> str:
    """A message without what may stay English in Chinese: code, roles, math, and the titles
    of cited works (in quotes or in italics)."""
    message = re.sub(r"\{\w+\}`[^`]*`", " ", message)  # {doc}`...`, {math}`...`
    message = re.sub(r"`[^`]*`", " ", message)
    message = re.sub(r"\$\$?[^$]*\$\$?", " ", message)
    message = re.sub(r'"[^"]*"', " ", message)  # "A Paper's Title"
    return re.sub(r"(?<!\*)\*[^*]+\*(?!\*)", " ", message)  # *A Book's Title*


def translated_messages() -> list[tuple[str, str, str]]:
    """``(catalogue, msgid, msgstr)`` of every translated, non-fuzzy message (a message kept
    as it is, an equation or a citation, is not a translation)."""
    from babel.messages.pofile import read_po

    messages = []
    for path in CATALOGUES:
        with path.open("rb") as handle:
            for message in read_po(handle):
                if (
                    message.id
                    and message.string
                    and not message.fuzzy
                    and message.string != message.id
                ):
                    messages.append(
                        (path.relative_to(DOCS).as_posix(), str(message.id), str(message.string))
                    )
    return messages


MESSAGES = translated_messages()


def test_the_glossary_has_the_books_core_terms() -> None:
    assert 40 <= len(TERMS) <= 80, len(TERMS)
    english = [t.english for t in TERMS]
    assert len(set(english)) == len(english), "a term listed twice"
    for term in (
        "advantage",
        "advantage function",
        "actor-critic",
        "entropy bonus",
        "in-context learning",
        "transfer matrix",
    ):
        assert term in english, term
    assert all(t.chinese for t in TERMS)


@pytest.mark.parametrize("term", [t for t in TERMS if t.checked], ids=lambda t: t.english)
def test_catalogues_translate_the_term_as_the_glossary_does(term: Term) -> None:
    pattern = english_pattern(term.english)
    wrong = [
        f"{where}: {msgid[:70]!r} -> {msgstr[:70]!r}"
        for where, msgid, msgstr in MESSAGES
        if pattern.search(prose(msgid))
        and term.chinese not in msgstr
        and not where.endswith("/glossary.po")
    ]
    assert not wrong, f"{term.english!r} should read {term.chinese!r}:\n" + "\n".join(wrong)


@pytest.mark.parametrize("term", [t for t in TERMS if t.avoid], ids=lambda t: t.english)
def test_catalogues_never_use_a_variant_the_glossary_rules_out(term: Term) -> None:
    for variant in term.avoid:
        # right where the English names a term that the variant does translate
        allowed = [english_pattern(t.english) for t in TERMS if variant in t.chinese]
        wrong = [
            f"{where}: {msgid[:70]!r} -> {msgstr[:70]!r}"
            for where, msgid, msgstr in MESSAGES
            if variant in msgstr
            and not where.endswith("/glossary.po")
            and not any(p.search(msgid) for p in allowed)
        ]
        assert not wrong, (
            f"{variant!r} is ruled out for {term.english!r} (use "
            f"{term.chinese!r}):\n" + "\n".join(wrong)
        )


def test_the_glossary_is_linked_from_the_books_index() -> None:
    index = (DOCS / "index.md").read_text()
    assert re.search(r"\{doc\}`[^`]*glossary>?`", index), "the index page does not link it"
    assert re.search(r"^glossary$", index, re.MULTILINE), "the glossary is in no toctree"


def test_a_wrong_translation_would_be_caught() -> None:
    """The checks see what they should: a message of each kind, made up here."""
    advantage = next(t for t in TERMS if t.english == "advantage")
    assert english_pattern("advantage").search("the advantages A_t")
    assert not english_pattern("advantage").search("the advantage-weighted loss")
    assert not english_pattern("reward").search(prose("run `--reward learned`"))
    assert not english_pattern("reward model").search(prose('"Scaling Laws for Reward Model"'))
    assert "优势函数" in advantage.avoid
