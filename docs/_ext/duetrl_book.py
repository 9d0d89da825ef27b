"""What the book's pages offer beyond their text (issue 23): set up by duetrl_reference.

- ``_static/duetrl.js``: displayed equations scaled to the column; torch / tf tabs.
- **torch / tf tabs.** A tutorial author tags a code cell ``torch`` and the code cell right
  after it ``tf`` (jupytext: ``# %% tags=["torch"]`` and ``# %% tags=["tf"]``): the page shows
  the pair as one cell with a PyTorch and a TensorFlow tab (both run; both outputs are kept).
  A tagged cell with no twin beside it stays a plain cell.
- **Notebook download in the page's language.** Each tutorial page's download menu gives the
  tutorial as a Jupyter notebook (``.ipynb``, not executed: the reader runs it) and as the
  jupytext ``.py``, both written at build time into ``_downloads/notebooks/``; on the Chinese
  pages their Markdown cells are the page's Chinese, taken from the page's catalogue
  (``locale/zh_CN/LC_MESSAGES/tutorials/<stem>.po``); code stays as it is.
- **Doctrees without the build's environment.** Nodes parsed in a nested document (the
  API pages' docstrings: autodoc inside MyST) keep a reference to that document, whose
  settings hold Sphinx's whole environment; Sphinx clears it on the page's own document only,
  so every API page's pickled doctree carried a copy of the environment (1.5 MB each, 360 MB
  per language, unpickled again to write each page). The nodes are given their own page's
  document when it is read.
- **Search of the prose.** The search index leaves out the TeX of equations (``frac``,
  ``mathrm``, ``qquad`` were words of the index) and the executed cells' printed output
  (training logs): Sphinx skips a node with the ``no-search`` class. The snippets under each
  result (``_static/duetrl.js``) are the article's text, without the theme's buttons
  ("System Settings Light Dark"), the equations' raw TeX and the outputs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from docutils import nodes

if TYPE_CHECKING:
    from sphinx.application import Sphinx

DOWNLOADS = "_downloads/notebooks"
"""Folder of the per-page notebooks in each language's output."""

TAB_LABELS = {"torch": "PyTorch", "tf": "TensorFlow"}
"""The tags that pair two code cells, in tab order, and each tab's label."""

WORDS = {
    "en": {"ipynb": "Jupyter notebook of this page (not executed: run it yourself)",
           "py": "the same tutorial as a jupytext .py (cells marked # %%)",
           "tabs": "framework", "book": "the whole book (.pdf)"},
    "zh_CN": {"ipynb": "本页的 Jupyter 笔记本（未执行：请自己运行）",
              "py": "同一教程的 jupytext .py 文件（以 # %% 分隔单元）",
              "tabs": "框架", "book": "全书（.pdf）"},
}


def language_of(app: Sphinx) -> str:
    """``zh_CN`` on the Chinese build, ``en`` otherwise."""
    return "zh_CN" if (app.config.language or "").startswith("zh") else "en"


# ---------------------------------------------------------------------------- tabs


def _cell_tag(node: nodes.Node) -> str | None:
    """``torch`` or ``tf`` for a code cell tagged so (myst-nb writes a tag as ``tag_<tag>``)."""
    if not isinstance(node, nodes.container) or "cell" not in node["classes"]:
        return None
    tags = [t for t in TAB_LABELS if f"tag_{t}" in node["classes"]]
    return tags[0] if len(tags) == 1 else None


def group_framework_tabs(app: Sphinx, doctree: nodes.document) -> int:
    """Wrap each torch-tagged cell and the tf-tagged cell right after it in one tab set.

    Returns the number of tab sets made (a doctree-read hook: the result is cached with the
    doctree, so both languages and every later build show the same pairs)."""
    made = 0
    for parent in list(doctree.findall(nodes.Element)):
        children = list(parent.children)
        index = 0
        while index < len(children) - 1:
            first, second = children[index], children[index + 1]
            if _cell_tag(first) == "torch" and _cell_tag(second) == "tf":
                tabs = nodes.container(classes=["duetrl-tabs"])
                buttons = "".join(
                    f'<button type="button" class="duetrl-tab" role="tab" '
                    f'data-framework="{tag}" aria-selected="{str(tag == "torch").lower()}">'
                    f"{label}</button>" for tag, label in TAB_LABELS.items())
                label = WORDS[language_of(app)]["tabs"]
                tabs += nodes.raw("", f'<div class="duetrl-tab-bar" role="tablist" '
                                      f'aria-label="{label}">{buttons}</div>', format="html")
                for cell in (first, second):
                    parent.remove(cell)
                    cell["classes"].append("duetrl-tab-panel")
                    tabs += cell
                parent.insert(index, tabs)
                children = list(parent.children)
                made += 1
            index += 1
    return made


# ---------------------------------------------------------------------------- doctrees


def adopt_stray_nodes(app: Sphinx, doctree: nodes.document) -> int:
    """Point every node at the document it is in (``node.document``), not at the temporary
    document a nested parse made: pickling the doctree would otherwise pickle that document's
    settings and with them the environment. Returns the number of nodes re-pointed."""
    adopted = 0
    for node in doctree.findall():
        stray = node.__dict__.get("_document")
        if stray is not None and stray is not doctree:
            node.document = doctree
            adopted += 1
    return adopted


# ---------------------------------------------------------------------------- search


NOT_PROSE = "no-search"
"""The class Sphinx's indexer skips (``sphinx.search.WordCollector``)."""


def _is_output(node: nodes.Node) -> bool:
    """A code cell's output (myst-nb: a container with the class ``cell_output``)."""
    return isinstance(node, nodes.container) and "cell_output" in node["classes"]


def search_prose_only(app: Sphinx, doctree: nodes.document) -> int:
    """Mark equations (inline and displayed) and cell outputs ``no-search``: the index then
    holds the page's prose and code, not TeX commands or training logs. Returns the number of
    nodes marked (a doctree-read hook: cached with the doctree)."""
    marked = 0
    for node in doctree.findall(lambda n: isinstance(n, (nodes.math, nodes.math_block))
                                or _is_output(n)):
        if NOT_PROSE not in node["classes"]:
            node["classes"].append(NOT_PROSE)
            marked += 1
    return marked


# ---------------------------------------------------------------------------- notebooks


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def read_translations(path: Path) -> dict[str, str]:
    """``{message with its whitespace collapsed: translation}`` of a page's catalogue."""
    from babel.messages.pofile import read_po

    if not path.exists():
        return {}
    with path.open("rb") as file:
        catalogue = read_po(file)
    return {_flat(m.id): m.string for m in catalogue
            if m.id and m.string and not m.fuzzy and isinstance(m.id, str)}


LIST_ITEM = re.compile(r"^(\s*(?:[-*+]|\d+[.)])\s+)")
HEADING = re.compile(r"^(#{1,6}\s+)(.*)$")


def translate_markdown(source: str, table: dict[str, str]) -> tuple[str, int, int]:
    """A Markdown cell in the catalogue's language, block by block (paragraph, heading, list
    item); a block the catalogue does not hold, code and maths stay as they are.

    Returns ``(text, blocks translated, blocks seen)``."""
    out: list[str] = []
    done = seen = 0
    fence = False
    block: list[str] = []

    def flush() -> None:
        nonlocal done, seen
        if not block:
            return
        items: list[list[str]] = []
        for line in block:  # a list: one message per item
            if LIST_ITEM.match(line) or not items:
                items.append([line])
            else:
                items[-1].append(line)
        for item in items:
            first = item[0]
            heading = HEADING.match(first)
            marker = heading[1] if heading else (LIST_ITEM.match(first) or [""])[0]
            text = " ".join([first[len(marker):], *item[1:]])
            key = _flat(text)
            if not key or key.startswith(("$$", "|", "<")):
                out.extend(item)
                continue
            seen += 1
            if key in table:
                done += 1
                indent = " " * len(marker) if not heading else ""
                lines = table[key].split("\n")
                out.append(marker + lines[0])
                out.extend(indent + line for line in lines[1:])
            else:
                out.extend(item)
        block.clear()

    for line in source.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            flush()
            fence = not fence
            out.append(line)
        elif fence:
            out.append(line)
        elif not line.strip():
            flush()
            out.append(line)
        elif HEADING.match(line):
            flush()
            block.append(line)
            flush()
        else:
            block.append(line)
    flush()
    return "\n".join(out), done, seen


def write_notebooks(source: Path, outdir: Path, table: dict[str, str]) -> tuple[Path, Path,
                                                                                  int, int]:
    """``<stem>.ipynb`` and ``<stem>.py`` of tutorial ``source`` into ``outdir``, Markdown
    translated through ``table`` (empty: as written). Returns both paths and the counts of
    translated and seen Markdown blocks."""
    import jupytext

    notebook = jupytext.reads(source.read_text(encoding="utf-8"), fmt="py:percent")
    done = seen = 0
    if table:
        for cell in notebook.cells:
            if cell.cell_type == "markdown":
                cell.source, d, s = translate_markdown(cell.source, table)
                done, seen = done + d, seen + s
    outdir.mkdir(parents=True, exist_ok=True)
    ipynb, script = outdir / f"{source.stem}.ipynb", outdir / f"{source.stem}.py"
    ipynb.write_text(jupytext.writes(notebook, fmt="ipynb"), encoding="utf-8")
    script.write_text(jupytext.writes(notebook, fmt="py:percent"), encoding="utf-8")
    return ipynb, script, done, seen


def book_pdf_link(app: Sphinx, pagename: str, templatename: str, context: dict,
                  doctree: nodes.document | None) -> None:
    """Sphinx hook: when the build prints the book (``DUETRL_BOOK_PDF=1``, docs/build.py
    --pdf), every page's download menu links the whole book's PDF in the page's language."""
    if os.environ.get("DUETRL_BOOK_PDF") != "1":
        return
    language = language_of(app)
    link = {"type": "link", "text": WORDS[language]["book"], "icon": "fas fa-book",
            "url": context["pathto"](f"_downloads/duetrl-{language}.pdf", 1),
            "tooltip": WORDS[language]["book"], "label": "download-book-pdf-button"}
    for group in context.get("header_buttons", []):
        if group.get("label") == "download-buttons":
            group["buttons"].append(link)


def tutorial_downloads(app: Sphinx, pagename: str, templatename: str, context: dict,
                       doctree: nodes.document | None) -> None:
    """Sphinx hook (after the theme's buttons): a tutorial page's download menu offers its
    notebook and its ``.py`` in the page's language (written here), and the print button."""
    if not pagename.startswith("tutorials/") or app.builder.format != "html":
        return
    source = Path(app.srcdir) / f"{pagename}.py"
    if not source.exists():
        return
    language = language_of(app)
    table = {}
    if language != "en":
        table = read_translations(Path(app.srcdir) / "locale" / language / "LC_MESSAGES"
                                  / f"{pagename}.po")
    write_notebooks(source, Path(app.outdir) / DOWNLOADS, table)
    stem = source.stem
    folder = context["pathto"](DOWNLOADS, 1)
    ours = [
        {"type": "link", "url": f"{folder}/{stem}.ipynb", "text": ".ipynb",
         "tooltip": WORDS[language]["ipynb"], "icon": "fas fa-code",
         "label": "download-notebook-button"},
        {"type": "link", "url": f"{folder}/{stem}.py", "text": ".py",
         "tooltip": WORDS[language]["py"], "icon": "fas fa-file",
         "label": "download-source-button"},
    ]
    for group in context.get("header_buttons", []):
        if group.get("label") == "download-buttons":
            kept = [b for b in group["buttons"] if b.get("label") == "download-pdf-button"]
            group["buttons"] = ours + kept


def setup(app: Sphinx) -> dict:
    """Register the script, the tabs transform and the tutorials' downloads."""
    app.add_js_file("duetrl.js")
    app.connect("doctree-read", group_framework_tabs)
    app.connect("doctree-read", search_prose_only)
    app.connect("doctree-read", adopt_stray_nodes, priority=900)  # after the others' nodes
    app.connect("html-page-context", tutorial_downloads, priority=600)
    app.connect("html-page-context", book_pdf_link, priority=601)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
