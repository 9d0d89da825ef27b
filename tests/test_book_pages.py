"""What the book's pages offer beyond their text (docs/_ext/duetrl_book.py, duetrl_pdf.py):
torch / tf tabs, notebooks in the page's language, the PDF's page assembly. Cheap: no Sphinx
build, no browser (tests/test_book.py checks the built site in Chromium)."""

from __future__ import annotations

import importlib
import json
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
