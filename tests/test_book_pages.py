"""What the book's pages offer beyond their text (docs/_ext/duetrl_book.py, duetrl_pdf.py):
torch / tf tabs, notebooks in the page's language, the PDF's page assembly. Cheap: no Sphinx
build, no browser (tests/test_book.py checks the built site in Chromium)."""

from __future__ import annotations

import ast
import functools
import importlib
import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace

from docutils import nodes
from docutils.frontend import get_default_settings
from docutils.parsers.rst import Parser
from docutils.utils import new_document

REPO = Path(__file__).resolve().parent.parent
EXT = REPO / "docs" / "_ext"
if str(EXT) not in sys.path:
    sys.path.insert(0, str(EXT))
book = importlib.import_module("duetrl_book")
pdf = importlib.import_module("duetrl_pdf")
APP = SimpleNamespace(config=SimpleNamespace(language="en"))


def cell(tag: str | None, text: str) -> nodes.container:
    classes = ["cell"] + ([f"tag_{tag}"] if tag else [])
    node = nodes.container(classes=classes)
    node += nodes.literal_block(text, text)
    return node


def document(*children: nodes.Node) -> nodes.document:
    doc = new_document("test", get_default_settings(Parser))
    section = nodes.section()
    for child in children:
        section += child
    doc += section
    return doc


def test_a_torch_cell_and_its_tf_twin_become_one_tab_set() -> None:
    doc = document(cell(None, "setup"), cell("torch", "torch code"), cell("tf", "tf code"),
                   nodes.paragraph(text="prose"), cell("tf", "a lone tf cell"),
                   cell("torch", "a torch cell followed by prose"), nodes.paragraph(text="x"))
    assert book.group_framework_tabs(APP, doc) == 1
    section = doc[0]
    assert [c.tagname for c in section.children] == [
        "container", "container", "paragraph", "container", "container", "paragraph"]
    tabs = section[1]
    assert "duetrl-tabs" in tabs["classes"]
    assert [p.astext() for p in tabs.findall(nodes.literal_block)] == ["torch code", "tf code"]
    assert all("duetrl-tab-panel" in p["classes"] for p in tabs.children[1:])
    bar = tabs[0].astext()
    assert 'data-framework="torch"' in bar and 'data-framework="tf"' in bar
    assert "duetrl-tabs" not in section[3]["classes"]  # no twin: stays a plain cell
    assert "duetrl-tab-panel" not in section[4]["classes"]


def test_the_tab_order_is_torch_then_tf() -> None:
    doc = document(cell("tf", "tf first"), cell("torch", "then torch"))
    assert book.group_framework_tabs(APP, doc) == 0


def test_markdown_is_translated_block_by_block_and_code_is_kept() -> None:
    table = {"A heading": "一个标题", "First paragraph over two lines.": "第一段。",
             "an item": "一项"}
    source = ("## A heading\n\nFirst paragraph\nover two lines.\n\n- an item\n- another\n\n"
              "```python\nFirst paragraph over two lines.\n```\n\n$$x = 1$$")
    text, done, seen = book.translate_markdown(source, table)
    assert text.split("\n")[:4] == ["## 一个标题", "", "第一段。", ""]
    assert "- 一项\n- another" in text
    assert "```python\nFirst paragraph over two lines.\n```" in text  # code is not prose
    assert "$$x = 1$$" in text
    assert (done, seen) == (3, 4)


def test_the_chinese_notebook_of_a_tutorial_has_chinese_markdown_and_the_same_code(
        tmp_path: Path) -> None:
    stem = "ch05_2_reinforce_torch_vs_tf"
    source = REPO / "tutorials" / f"{stem}.py"
    table = book.read_translations(REPO / "docs" / "locale" / "zh_CN" / "LC_MESSAGES"
                                   / "tutorials" / f"{stem}.po")
    ipynb, script, done, seen = book.write_notebooks(source, tmp_path / "zh", table)
    assert done >= 0.9 * seen > 10
    notebook = json.loads(ipynb.read_text(encoding="utf-8"))
    markdown = "".join("".join(c["source"]) for c in notebook["cells"]
                       if c["cell_type"] == "markdown")
    assert "并排" in markdown and "REINFORCE in TensorFlow and PyTorch" not in markdown
    english, *_ = book.write_notebooks(source, tmp_path / "en", {})
    code = [json.loads(path.read_text(encoding="utf-8"))["cells"] for path in (ipynb, english)]
    assert [c["source"] for c in code[0] if c["cell_type"] == "code"] == \
        [c["source"] for c in code[1] if c["cell_type"] == "code"]
    assert not any(c.get("outputs") for c in code[0])  # not executed: the reader runs it
    assert script.read_text(encoding="utf-8").count("# %%") == len(notebook["cells"])


def test_the_pdf_page_rebases_each_pages_links_on_its_own_folder(tmp_path: Path) -> None:
    pages = {
        "index": '<head><link href="_static/x.css"></head><article class="bd-article">'
                 '<img src="_images/a.png"><a href="tutorials/t.html#s">t</a></article>',
        "tutorials/t": '<head></head><article class="bd-article" role="main">'
                       '<img src="../_images/b.png"><a href="#top">top</a></article>',
    }
    for name, text in pages.items():
        (tmp_path / f"{name}.html").parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f"{name}.html").write_text(text, encoding="utf-8")
    page = pdf.print_page(tmp_path, list(pages), "zh_CN").read_text(encoding="utf-8")
    assert 'href="../_static/x.css"' in page and 'src="../_images/a.png"' in page
    assert 'href="../tutorials/t.html#s"' in page and 'src="../_images/b.png"' in page
    assert 'href="#top"' in page and '<html lang="zh-CN"' in page
    assert page.count('class="duetrl-print-page"') == 2


def test_every_tagged_framework_cell_has_its_twin_beside_it() -> None:
    """A cell tagged ``torch`` must be followed by one tagged ``tf`` (and a ``tf`` cell be
    preceded by a ``torch`` one): a lone tag is an authoring slip the page would not show as
    tabs. Tutorial 5.2 prints its repaired listing as such a pair."""
    import jupytext

    pairs = {}
    for path in sorted((REPO / "tutorials").glob("*.py")):
        cells = jupytext.read(path).cells
        tags = [set(c.metadata.get("tags", [])) & set(book.TAB_LABELS) for c in cells]
        for index, tag in enumerate(tags):
            twin = tags[index + 1] if index + 1 < len(tags) else set()
            before = tags[index - 1] if index else set()
            if tag == {"torch"}:
                assert twin == {"tf"} and cells[index + 1].cell_type == "code", \
                    f"{path.name}, cell {index}: tagged torch, no tf cell right after it"
                pairs[path.stem] = pairs.get(path.stem, 0) + 1
            elif tag == {"tf"}:
                assert before == {"torch"}, f"{path.name}, cell {index}: tf with no torch twin"
            else:
                assert not tag, f"{path.name}, cell {index}: tagged both torch and tf"
    assert pairs.get("ch05_2_reinforce_torch_vs_tf", 0) >= 1, pairs


def test_the_search_index_holds_prose_and_code_not_tex_or_outputs() -> None:
    """Issue 23 item 6: TeX commands (frac, mathrm) were words of the index, and training logs
    too. Marked ``no-search``, Sphinx's own word collector (the one its index uses) skips them."""
    from sphinx.search import IndexBuilder
    from sphinx.search.en import SearchEnglish

    prose = nodes.paragraph()
    prose += [nodes.Text("The Bellman equation "), nodes.math(r"\frac{a}{b}", r"\frac{a}{b}")]
    display = nodes.math_block(r"\mathrm{KL}(p \| q)", r"\mathrm{KL}(p \| q)")
    code = cell(None, "returns = compute_returns(rewards)")
    output = nodes.container(classes=["cell_output"])
    output += nodes.literal_block("update 10 mean_reward 0.649", "update 10 mean_reward 0.649")
    code += output
    doc = document(prose, display, code)
    collect = functools.partial(IndexBuilder._word_collector,
                                SimpleNamespace(lang=SearchEnglish({})))
    assert {"frac", "mathrm", "mean_reward"} <= set(collect(doc).words)  # as Sphinx had it
    assert book.search_prose_only(APP, doc) == 3  # two equations, one output
    words = set(collect(doc).words)
    assert {"Bellman", "equation", "returns", "compute_returns", "rewards"} <= words
    assert not words & {"frac", "mathrm", "KL", "update", "mean_reward"}, words
    assert book.search_prose_only(APP, doc) == 0  # marked once


SHOWS_CODE = re.compile(r"\b(?:inspect\.getsource|getsource|show)\(")
FRAMEWORK_NAMES = {"torch": re.compile(r"torch"), "tf": re.compile(r"(?<![A-Za-z])tf(?![A-Za-z])")}
BACKENDS_LOOP = re.compile(r"\bin backends\.(?:items|values)\(\)")


def frameworks_shown(source: str) -> set[str]:
    """The frameworks whose code a cell shows: an exercise's answer in one framework (a function
    ``<name>_torch`` or ``<name>_tf``), or a statement that prints source (``inspect.getsource``,
    a tutorial's ``show``) naming them (``torch_dqn``, ``backends["tf"]``,
    ``backends/torch/...``); a statement that loops over ``backends`` prints both."""
    shown: set[str] = set()
    for statement in ast.parse(source).body:
        if isinstance(statement, ast.FunctionDef):
            shown |= {name for name in FRAMEWORK_NAMES if statement.name.endswith(f"_{name}")}
            continue
        text = ast.get_source_segment(source, statement) or ""
        if not SHOWS_CODE.search(text):
            continue
        if BACKENDS_LOOP.search(text):
            return set(FRAMEWORK_NAMES)
        shown |= {name for name, pattern in FRAMEWORK_NAMES.items() if pattern.search(text)}
    return shown


def test_frameworks_shown_reads_the_printing_statements() -> None:
    assert frameworks_shown('print(inspect.getsource(torch_ppo.f))\nx = tf.constant(1)') == {
        "torch"}
    assert frameworks_shown("for n, b in backends.items():\n    print(getsource(b.loss))") == {
        "torch", "tf"}
    assert frameworks_shown('show(backends["tf"].optim.Adam.apply_gradients, "g =")') == {"tf"}
    assert frameworks_shown("import torch\nimport tensorflow as tf\nprint(1)") == set()
    answers = "def loss_torch(x):\n    return x\n\n\ndef loss_tf(x):\n    return x\n"
    assert frameworks_shown(answers) == {"torch", "tf"}
    assert frameworks_shown(answers.split("\n\n\n")[1]) == {"tf"}


def test_every_cell_that_prints_both_frameworks_code_is_a_tab_pair() -> None:
    """Issue 23 item 6: where a tutorial prints the PyTorch and the TensorFlow code of the same
    thing, or asks for an exercise's answer in both, the two are twin cells tagged ``torch`` and
    ``tf`` (the page shows them as tabs), not one cell holding both, and each tab holds its own
    framework's code only."""
    import jupytext

    both, pairs = [], {}
    for path in sorted((REPO / "tutorials").glob("*.py")):
        for index, code in enumerate(jupytext.read(path).cells):
            if code.cell_type != "code":
                continue
            shown = frameworks_shown(code.source)
            tags = set(code.metadata.get("tags", [])) & set(book.TAB_LABELS)
            if tags:
                assert shown <= tags, f"{path.name}, cell {index}: tagged {tags}, prints {shown}"
                pairs[path.stem] = pairs.get(path.stem, 0) + ("torch" in tags)
            elif len(shown) == 2:
                both.append(f"{path.name}, cell {index}")
    assert not both, f"cells holding both frameworks' code in one: {both}"
    assert {"ch01_2_three_families_of_rl": 4, "ch04_1_optimising_the_pretraining_loss": 2,
            "ch05_2_reinforce_torch_vs_tf": 2}.items() <= pairs.items(), pairs


CODE_COLUMNS = 100
"""The tutorials' code is written to 100 columns (ruff's line length): at a 1280-px window the
article holds about 110 columns of code (_static/duetrl.css), so a longer line wraps mid-
expression on the page, and on a phone scrolls sideways."""


def test_the_exercises_code_fits_the_column() -> None:
    """The exercises' code (the lines a student edits, ``# your code here``, and the checks
    around them) was written past the column in one line per answer: 60 lines of 101-178
    characters wrapped mid-expression at 1280 px (issue 23 item 4)."""
    import jupytext

    long = []
    for path in sorted((REPO / "tutorials").glob("*.py")):
        exercises = False
        for index, code in enumerate(jupytext.read(path).cells):
            exercises = exercises or (code.cell_type == "markdown"
                                      and "## Exercises" in code.source)
            if not exercises or code.cell_type != "code":
                continue
            long += [f"{path.stem}, cell {index}: {len(line)} columns: {line.strip()[:60]}"
                     for line in code.source.splitlines() if len(line) > CODE_COLUMNS]
    assert not long, "\n".join(long)


def test_nodes_of_a_nested_parse_do_not_drag_its_document_into_the_doctree() -> None:
    """A node made by a nested parse (autodoc's docstrings inside a MyST page) points at that
    parse's document, whose settings hold Sphinx's environment: every API page's pickled
    doctree carried a copy of it (1.5 MB each). Re-pointed at its page's document, it does not."""
    import pickle

    nested = new_document("nested", get_default_settings(Parser))
    nested.settings.env = {"domain data": "x" * 100_000}  # stands for the environment
    item = nodes.list_item()
    item += nodes.paragraph("", "", nodes.Text("Per update u: play the episodes"))
    for node in item.findall():
        node.document = nested  # what the nested parse leaves behind
    doc = document(nodes.enumerated_list("", item))
    assert len(pickle.dumps(doc)) > 100_000
    assert book.adopt_stray_nodes(APP, doc) == 3  # list item, paragraph, text
    assert all(node.document is doc for node in doc.findall())
    assert len(pickle.dumps(doc)) < 10_000
    assert book.adopt_stray_nodes(APP, doc) == 0
