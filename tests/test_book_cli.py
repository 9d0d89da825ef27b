"""The CLI reference pages of the Chinese book are Chinese (docs/_ext/duetrl_cli_help.py).

Cheap: no Sphinx, no browser; the pages' Markdown is generated as the book's build does it."""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXT = REPO / "docs" / "_ext"
UPDATE = "python docs/build.py --update-cli-catalogue, then translate the empty msgstr"


def load(name: str):
    """A module of docs/_ext, imported as Sphinx does (the folder on the path: the reference
    generator imports duetrl_cli_help by name)."""
    if str(EXT) not in sys.path:
        sys.path.insert(0, str(EXT))
    return importlib.import_module(name)


cli_help = load("duetrl_cli_help")
reference = load("duetrl_reference")


@pytest.fixture(scope="module")
def messages() -> list[str]:
    from duetrl.core.cli import build_parser

    return cli_help.parser_messages(build_parser())


@pytest.fixture(scope="module")
def zh_pages() -> dict[str, str]:
    return reference.cli_pages("zh_CN")


def flat(text: str) -> str:
    """Whitespace runs as one space (argparse wraps help over several lines)."""
    return re.sub(r"\s+", " ", text)


def test_every_help_string_of_the_cli_has_a_chinese_translation(messages) -> None:
    table = cli_help.read_catalogue(cli_help.catalogue_path("zh_CN"))
    missing = [m for m in messages if m not in table]
    assert not missing, (f"{len(missing)} CLI help strings have no Chinese in "
                         f"docs/locale/zh_CN/cli_help.po ({UPDATE}): {missing[:10]}")
    for message in messages:  # placeholders and flags survive translation
        for token in re.findall(r"%\(\w+\)s|%%|--[a-z][\w-]*", message):
            assert token in table[message], (message, table[message], token)


def test_no_cli_page_of_the_chinese_book_is_left_in_english(messages, zh_pages) -> None:
    assert set(zh_pages) == set(reference.cli_pages("en"))  # the same pages, one per command
    english = [m for m in messages if len(m.split()) >= 3]  # "GAE lambda" reads the same
    assert len(english) > 300
    for name, page in zh_pages.items():
        text = flat(page)
        left = [m for m in english if flat(m) in text]
        assert not left, f"generated/cli/{name} (zh_CN) still shows English help: {left[:5]}"
        assert "用法：" in page and "usage:" not in page, name
        assert "显示此帮助信息并退出" in page and "show this help" not in page, name
    # a command's own description and an option's help, with its default value kept
    assert "在 CartPole-v1 上并排运行 PyTorch 与 TensorFlow 的 PPO" in zh_pages["index"]
    assert "Adam 步长（默认：0.01）" in flat(zh_pages["train"])


def test_the_english_pages_and_argparse_are_left_as_they_were(zh_pages) -> None:
    en = reference.cli_pages("en")
    assert "usage: duetrl" in en["index"] and "show this help message and exit" in en["index"]
    assert not re.search(r"[\u4e00-\u9fff]", "".join(en.values()))
    assert argparse._("options") == "options"  # the translation is undone after the pages


def test_a_default_value_is_kept_and_a_missing_translation_is_reported() -> None:
    table = {"Adam step size": "Adam 步长"}
    assert cli_help.translated("Adam step size (default: 0.004)", table) == \
        "Adam 步长（默认：0.004）"
    assert cli_help.translated("Adam step size", table) == "Adam 步长"
    assert cli_help.translated("an unknown string (default: 1)", table) is None
    parser = argparse.ArgumentParser(description="Adam step size")
    parser.add_argument("--x", help="not in the table (default: 3)")
    missing = cli_help.translate_parser(parser, table)
    assert "not in the table (default: 3)" in missing and "Adam step size" not in missing
    assert "options" in missing  # argparse's own words too, when the table lacks them
    assert parser.description == "Adam 步长"
