"""The book's chapter pages cannot rot: every ```python snippet runs, every {doc} link resolves,
and the Chinese catalogue of each page translates every paragraph the page has now.

The pages are ``docs/chapters/*.md`` (MyST Markdown). A snippet runs in a fresh process (forked from one with
both frameworks imported: tests/prewarmed.py), in
an empty folder, in quick mode, with the Hugging Face libraries told to stay offline: a snippet
may use only what is installed and must download nothing. A ``{doc}`` link must name a page the
build will have: a tutorial file, a chapter page, or a reference page that D2's extension
writes from the code (``generated/api/core.<module>``, ``generated/api/backends.<file>``,
``generated/rosetta/<file>``, ``generated/cli/<command>``). The translations are gettext
catalogues, ``docs/locale/zh_CN/LC_MESSAGES/chapters/<page>.po`` (``docs/build.py
--update-catalogues --only chapters/`` merges a changed page into them).
"""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path

import pytest
from prewarmed import run_python

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
PAGES = sorted((DOCS / "chapters").glob("*.md"))

PYTHON_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
DOC_ROLE = re.compile(r"\{doc\}`([^`]+)`")
LINK_TARGET = re.compile(r"<([^<>]+)>\s*$")  # {doc}`text <target>`
CATALOGUES = DOCS / "locale" / "zh_CN" / "LC_MESSAGES" / "chapters"
CJK = re.compile(r"[\u4e00-\u9fff]")
READING_LIST = DOCS / "chapters" / "ch07_3_reading_list.md"
SURNAME = r"(?:van |de )?[A-Z][\w-]+"
# "Kaplan et al., 2020", "Sutton and Barto, 2018", "Shannon (1948)", "Schulman et al., 2016; 2017"
CITATION = re.compile(rf"({SURNAME})(?:\s+et\s+al\.|\s+and\s+{SURNAME})?(?:,\s|\s\()(\d{{4}})"
                      r"((?:;\s\d{4})*)")
LISTED = re.compile(rf"\*\*({SURNAME})[^*]*?\((\d{{4}})\)\*\*")  # **Vaswani et al. (2017)**


def python_snippets(markdown: str) -> list[str]:
    """The bodies of the page's ```python fences (not ```bash, not ```{math}), in order."""
    return PYTHON_FENCE.findall(markdown)


def doc_targets(markdown: str, docname: str) -> list[str]:
    """Absolute docnames (no leading slash) of the page's ``{doc}`` links.

    ``{doc}`/tutorials/x``` and ``{doc}`text </tutorials/x>``` are absolute; a target without
    a leading slash is relative to the folder of ``docname`` (as Sphinx reads it).
    """
    targets = []
    for body in DOC_ROLE.findall(markdown):
        match = LINK_TARGET.search(body)
        target = (match.group(1) if match else body).strip()
        if target.startswith("/"):
            targets.append(target[1:])
        else:
            targets.append(posixpath.normpath(posixpath.join(posixpath.dirname(docname), target)))
    return targets


def translatable_blocks(markdown: str) -> list[str]:
    """The page's headings, paragraphs, list items and table cells as gettext sees them (lines
    joined by a space, heading marks and list dashes dropped, a table's |---| row skipped);
    fenced blocks (code, maths) left out."""
    blocks: list[str] = []
    current: list[str] = []

    def flush() -> None:
        if current:
            blocks.append(" ".join(current))
            current.clear()

    in_fence = False
    for line in markdown.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            flush()
            in_fence = not in_fence
        elif in_fence:
            continue
        elif not stripped:
            flush()
        elif stripped.startswith("#"):
            flush()
            blocks.append(stripped.lstrip("#").strip())
        elif stripped.startswith("|"):
            flush()
            if set(stripped) - set("|-: "):  # not the |---|---| line under the header
                blocks.extend(c.strip() for c in stripped.strip("|").split("|") if c.strip())
        elif stripped.startswith("- "):
            flush()
            current.append(stripped[2:])
        else:
            current.append(stripped)
    flush()
    return blocks


def doc_roles(text: str) -> list[str]:
    """The targets of the ``{doc}`` roles of a text, in order (a translation keeps them)."""
    return [(LINK_TARGET.search(body) or re.match(r"(.*)", body)).group(1).strip()
            for body in DOC_ROLE.findall(text)]


def citations(markdown: str) -> set[tuple[str, str]]:
    """(first author's surname, year) of every citation in the page's prose."""
    prose = re.sub(r"^```.*?^```", "", markdown, flags=re.MULTILINE | re.DOTALL)
    found = set()
    for surname, year, more_years in CITATION.findall(prose):
        found |= {(surname, y) for y in [year, *re.findall(r"\d{4}", more_years)]}
    return found


def cli_commands() -> set[str]:
    """The top-level commands of ``duetrl`` (one reference page each)."""
    import argparse

    from duetrl.core.cli import build_parser

    names: set[str] = set()
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            names.update(action.choices)
    return names


def mirrored_file(name: str) -> bool:
    return all((REPO / "backends" / side / f"{name}.py").is_file() for side in ("torch", "tf"))


def target_exists(docname: str) -> bool:
    """Whether the book will have a page ``docname`` (see the module docstring)."""
    folder, _, name = docname.rpartition("/")
    if folder == "tutorials":
        return (REPO / "tutorials" / f"{name}.py").is_file()
    if folder == "generated/api":
        if name == "index":
            return True
        if name.startswith("backends."):
            return mirrored_file(name.removeprefix("backends."))
        if name == "core" or name.startswith("core."):
            path = REPO.joinpath(*name.split("."))
            return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()
        return False
    if folder == "generated/rosetta":
        return name == "index" or mirrored_file(name)
    if folder == "generated/cli":
        return name == "index" or name in cli_commands()
    return (DOCS / f"{docname}.md").is_file()


# ---------------------------------------------------------------------------- the helpers


def test_python_snippets_takes_only_python_fences() -> None:
    page = ("text\n```python\nx = 1\n```\n\n```bash\nls\n```\n"
            "```{math}\na\n```\n```python\ny = 2\nz = 3\n```\n")
    assert python_snippets(page) == ["x = 1\n", "y = 2\nz = 3\n"]


def test_doc_targets_absolute_titled_and_relative() -> None:
    page = ("{doc}`/tutorials/a` and {doc}`the b page </chapters/b>`, "
            "{doc}`ch07_tools` and {doc}`up <../tutorials/c>`")
    assert doc_targets(page, "chapters/ch01_background") == [
        "tutorials/a", "chapters/b", "chapters/ch07_tools", "tutorials/c"]


@pytest.mark.parametrize("docname, exists", [
    ("tutorials/ch03_1_ppo", True),
    ("tutorials/ch03_1_no_such_tutorial", False),
    ("chapters/ch01_background", True),
    ("chapters/ch99_nothing", False),
    ("generated/api/core.rl.dqn", True),
    ("generated/api/core.envs", True),  # a package: its __init__.py
    ("generated/api/core.rl.no_such_module", False),
    ("generated/api/backends.dqn", True),
    ("generated/api/backends.no_such_file", False),
    ("generated/api/torch.dqn", False),
    ("generated/rosetta/gpt", True),
    ("generated/cli/index", True),
    ("generated/cli/train", True),
    ("generated/cli/no-such-command", False),
])
def test_target_exists_knows_real_pages_from_missing_ones(docname: str, exists: bool) -> None:
    assert target_exists(docname) is exists


def test_translatable_blocks_joins_lines_and_skips_fences() -> None:
    page = ("# 1 Title（标题）\n\nA paragraph\non two lines.\n\n- item one\n  continued\n"
            "- item two\n\n```python\nx = 1\n```\n\n```{math}\na = b\n```\nLast.\n")
    assert translatable_blocks(page) == ["1 Title（标题）", "A paragraph on two lines.",
                                         "item one continued", "item two", "Last."]


def test_doc_roles_reads_titled_and_bare_links() -> None:
    assert doc_roles("{doc}`/tutorials/a`, {doc}`阅读清单 </chapters/b>`") == [
        "/tutorials/a", "/chapters/b"]


def test_citations_reads_the_forms_the_pages_use() -> None:
    text = ("as (Kaplan et al., 2020) and (Sutton\nand Barto, 2018); Shannon (1948) and "
            "(Schulman et al., 2016; 2017), (van Hasselt et al., 2016); not 1.5 billion, 2017")
    assert citations(text) == {("Kaplan", "2020"), ("Sutton", "2018"), ("Shannon", "1948"),
                               ("Schulman", "2016"), ("Schulman", "2017"),
                               ("van Hasselt", "2016")}


# ---------------------------------------------------------------------------- the pages


def test_the_chapter_pages_are_there_with_their_snippets() -> None:
    names = {page.stem for page in PAGES}
    assert {"ch01_background", "ch07_tools", "ch07_3_reading_list", "ch08_trends"} <= names
    counts = {page.stem: len(python_snippets(page.read_text())) for page in PAGES}
    assert counts["ch01_background"] >= 2 and counts["ch07_tools"] >= 5, counts


@pytest.mark.parametrize("page", PAGES, ids=[page.stem for page in PAGES])
def test_every_doc_link_of_a_chapter_page_resolves(page: Path) -> None:
    targets = doc_targets(page.read_text(), f"chapters/{page.stem}")
    assert targets, f"{page.name} links to nothing"
    missing = sorted({t for t in targets if not target_exists(t)})
    assert not missing, f"{page.name} links to pages the book will not have: {missing}"


CITING_PAGES = [page for page in PAGES if page != READING_LIST]


@pytest.mark.parametrize("page", CITING_PAGES, ids=[page.stem for page in CITING_PAGES])
def test_every_citation_of_a_chapter_page_is_in_the_reading_list(page: Path) -> None:
    listed = set(LISTED.findall(READING_LIST.read_text()))
    assert len(listed) > 50, "the reading list's entries were not found"
    missing = sorted(citations(page.read_text()) - listed)
    assert not missing, f"{page.name} cites papers the reading list lacks: {missing}"


SNIPPETS = [(page, index, code) for page in PAGES
            for index, code in enumerate(python_snippets(page.read_text()), start=1)]


@pytest.mark.parametrize("page, index, code", SNIPPETS,
                         ids=[f"{page.stem}-{index}" for page, index, _ in SNIPPETS])
def test_every_python_snippet_runs(page: Path, index: int, code: str, tmp_path: Path) -> None:
    env = {**os.environ, "DUETRL_QUICK": "1", "DUETRL_FIGURES": str(tmp_path),
           "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    script = tmp_path / f"{page.stem}_{index}.py"
    script.write_text(code)
    result = run_python([str(script)], cwd=tmp_path, env=env, timeout=600)
    output = f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    assert result.returncode == 0, f"snippet {index} of {page.name} failed:\n{output}"
    assert result.stdout.strip(), f"snippet {index} of {page.name} printed nothing"


@pytest.mark.parametrize("page", PAGES, ids=[page.stem for page in PAGES])
def test_chinese_catalogue_translates_every_paragraph_of_the_page(page: Path) -> None:
    from babel.messages.pofile import read_po

    path = CATALOGUES / f"{page.stem}.po"
    assert path.is_file(), f"no Chinese catalogue {path}; run docs/build.py --update-catalogues"
    with path.open("rb") as handle:
        catalogue = {m.id: m for m in read_po(handle) if m.id}
    blocks = translatable_blocks(page.read_text())
    missing = [b[:60] for b in blocks if b not in catalogue]
    assert not missing, f"{path.name} lacks text the page has now (update it): {missing}"
    for block in blocks:
        message = catalogue[block]
        assert message.string and "fuzzy" not in message.flags, f"untranslated: {block[:60]!r}"
        assert doc_roles(message.string) == doc_roles(block), f"links differ: {block[:60]!r}"
        if message.string != block:  # names and citations may stay as they are
            # a table cell of names may change only its brackets to Chinese ones: MRR（torch）
            typeset = re.compile(r"[\u3000-\u303f\uff00-\uffef]")
            assert CJK.search(message.string) or typeset.search(message.string), (
                f"not Chinese: {message.string[:60]!r}")
