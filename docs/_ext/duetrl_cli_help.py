"""The CLI reference pages in the reader's language: argparse help through a catalogue.

The CLI pages (``generated/cli/``) print each command's ``--help``. The strings of that help
(descriptions, option help, group titles, and argparse's own words such as "usage:" and
"show this help message and exit") are English in the code; for another language they come
from ``docs/locale/<language>/cli_help.po``, a gettext catalogue outside Sphinx's
``LC_MESSAGES`` (Sphinx translates pages, this translates a parser):

    python docs/build.py --update-cli-catalogue    # add new help strings, keep translations

A help string with no translation stays English on the Chinese page, and
``tests/test_book_cli.py`` fails naming it.
"""

from __future__ import annotations

import argparse
import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent

ARGPARSE_WORDS = (
    "usage: ",
    "positional arguments",
    "options",
    "show this help message and exit",
    "show program's version number and exit",
)
"""argparse's own words (``argparse._``, gettext): Python 3.11+ spells these."""


DEFAULT_SUFFIX = re.compile(r"^(?P<text>.*?)\s*\(default: (?P<value>.*)\)$", re.DOTALL)
"""The CLI's help ends with ``(default: <value>)`` (core/cli/flags.py): the catalogue holds the
text before it once, whatever the value; the page says ``（默认：<value>）``."""

DEFAULT_WORDS = {"zh_CN": "（默认：{value}）"}
"""How the ``(default: ...)`` suffix reads in each language."""


def message_of(text: str) -> str:
    """The catalogue's message for a help string: without its ``(default: ...)`` suffix."""
    match = DEFAULT_SUFFIX.match(text)
    return match["text"] if match else text


def translated(text: str, table: dict[str, str], language: str = "zh_CN") -> str | None:
    """``text`` in the catalogue's language (its default value kept as it is), or ``None``
    when the catalogue has no translation of it."""
    match = DEFAULT_SUFFIX.match(text)
    if match is None:
        return table.get(text)
    if match["text"] not in table:
        return None
    return table[match["text"]] + DEFAULT_WORDS[language].format(value=match["value"])


def catalogue_path(language: str) -> Path:
    """``docs/locale/<language>/cli_help.po``."""
    return DOCS / "locale" / language / "cli_help.po"


def sub_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parser's sub-commands' parsers (aliases once), in definition order."""
    found: list[argparse.ArgumentParser] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                if all(sub is not seen for seen in found):
                    found.append(sub)
    return found


def _strings(parser: argparse.ArgumentParser) -> Iterator[tuple[object, str, str]]:
    """``(owner, attribute, text)`` of every translatable string of ``parser`` and its
    sub-commands (the owner is a parser, an action or an argument group)."""
    for attribute in ("description", "epilog"):
        if getattr(parser, attribute):
            yield parser, attribute, getattr(parser, attribute)
    for group in parser._action_groups:
        for attribute in ("title", "description"):
            if getattr(group, attribute, None):
                yield group, attribute, getattr(group, attribute)
    for action in parser._actions:
        if action.help and action.help is not argparse.SUPPRESS:
            yield action, "help", action.help
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                if choice.help:
                    yield choice, "help", choice.help
    for sub in sub_parsers(parser):
        yield from _strings(sub)


def parser_messages(parser: argparse.ArgumentParser) -> list[str]:
    """Every string the help of ``parser`` (and of its sub-commands) shows, once, in order;
    argparse's own words first."""
    return list(dict.fromkeys([*ARGPARSE_WORDS,
                               *(message_of(text) for _, _, text in _strings(parser))]))


def read_catalogue(path: Path) -> dict[str, str]:
    """``{English: translation}`` of a catalogue's translated, not fuzzy, messages."""
    from babel.messages.pofile import read_po

    if not path.exists():
        return {}
    with path.open("rb") as file:
        catalogue = read_po(file)
    return {m.id: m.string for m in catalogue
            if m.id and m.string and not m.fuzzy and isinstance(m.id, str)}


def translate_parser(parser: argparse.ArgumentParser, table: dict[str, str],
                     language: str = "zh_CN") -> list[str]:
    """Replace the strings of ``parser`` (and its sub-commands) by their translations, in
    place; returns the strings that have none (left as they are)."""
    missing = []
    done = set(table.values())  # argparse's own words, translated as the parser was built
    for owner, attribute, text in list(_strings(parser)):
        if text in done:
            continue
        words = translated(text, table, language)
        if words is None:
            missing.append(text)
        else:
            setattr(owner, attribute, words)
    return list(dict.fromkeys(missing))


@contextlib.contextmanager
def argparse_words(table: dict[str, str]) -> Iterator[None]:
    """While open, argparse's own words ("usage: ", "options"...) come from ``table``: build
    the parser and format its help inside it."""
    previous = argparse._

    def translated(message: str) -> str:
        return table.get(message, previous(message))

    argparse._ = translated
    try:
        yield
    finally:
        argparse._ = previous


def update_catalogue(parser: argparse.ArgumentParser, language: str = "zh_CN",
                     known: dict[str, str] | None = None) -> Path:
    """Write ``cli_help.po`` with every message of ``parser``: translations kept (``known``
    adds more), new strings with an empty ``msgstr``, strings the CLI no longer has dropped."""
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import write_po

    path = catalogue_path(language)
    known = {**read_catalogue(path), **(known or {})}
    catalogue = Catalog(locale=language, project="duetrl CLI help", fuzzy=False)
    for message in parser_messages(parser):
        catalogue.add(message, known.get(message, ""))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as file:
        write_po(file, catalogue, width=0, omit_header=False)
    return path
