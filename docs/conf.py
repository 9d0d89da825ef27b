"""Sphinx configuration of the duetrl book (English and Chinese, one source tree).

Build the whole site with ``python docs/build.py`` (``make book``); it sets the environment
this file reads:

- ``DUETRL_QUICK=1``: tutorials run in quick mode (the test suite's build); unset: full mode.
- ``DUETRL_BOOK_CACHE``: the jupyter-cache folder, shared by both languages so that each
  tutorial executes once per build (a quick and a full build must not share one: the cache
  is keyed on the code, not on the environment).
- ``DUETRL_BOOK_STATIC``: a folder holding ``mathjax/`` (MathJax 3 from the npm registry),
  shipped inside the site so that equations render with no network.

The language comes from the command line (``-D language=zh_CN``); translations are the
gettext catalogues in ``locale/zh_CN/LC_MESSAGES/<docname>.po``.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS))  # outline.py, outline_pages.py
sys.path.insert(0, str(DOCS / "_ext"))  # helper extensions (the generated reference pages)

import outline_pages  # noqa: E402  (needs the path above)

project = "duetrl"
author = "the duetrl authors"
copyright = "the duetrl authors"  # noqa: A001  (Sphinx's name)
language = "en"  # the Chinese build passes -D language=zh_CN

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
]
if (DOCS / "_ext" / "duetrl_reference.py").exists():  # the API, Rosetta and CLI pages
    extensions.append("duetrl_reference")
extensions.append("duetrl_figures")  # figures in the page's language, numbered and captioned

# Sources: Markdown pages, and the tutorials (``tutorials`` is a link to the repository's
# folder), read as notebooks by jupytext. Every other .py file here is code, not a page.
nb_custom_formats = {".py": ["jupytext.reads", {"fmt": "py:percent"}]}
exclude_patterns = [
    "_build",
    "_ext",
    "_static",
    "_templates",
    "locale",
    "*.py",  # conf.py, build.py, outline*.py (only this folder: * stops at a slash)
    "**/__pycache__",
    "**/README.md",
    "FULL_BUILD.md",  # a record for developers (what the full build costs), not a page
    "**/.ipynb_checkpoints",
]

# Markdown (MyST): $...$ and $$...$$ maths, amsmath environments, ::: fences, anchors on headings.
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# Execution: every tutorial runs at build time, once, its outputs cached; a failing cell fails
# the build.
nb_execution_mode = "cache"
nb_execution_cache_path = os.environ.get("DUETRL_BOOK_CACHE",
                                         str(DOCS / "_build" / "jupyter_cache"))
nb_execution_timeout = 1800  # seconds per cell: full-mode training cells take minutes
nb_execution_raise_on_error = True
nb_execution_in_temp = True  # tutorials write figures to DUETRL_FIGURES, never into the source
nb_merge_streams = True
nb_ipywidgets_js = {}  # no widget JavaScript from a CDN
# DUETRL_BOOK_EXECUTE: the tutorials (file stems, comma-separated) to execute; the others are
# rendered without outputs. Unset: every tutorial runs. The test suite's browser check executes
# one (tests/test_tutorials.py already runs each of them), so it does not run them all twice.
if os.environ.get("DUETRL_BOOK_EXECUTE") is not None:
    _execute = set(filter(None, os.environ["DUETRL_BOOK_EXECUTE"].split(",")))
    nb_execution_excludepatterns = [f"tutorials/{path.name}"
                                    for path in sorted((DOCS / "tutorials").glob("*.py"))
                                    if path.stem not in _execute]

# Maths: MathJax 3 shipped in _static/mathjax when build.py provides it (offline at view time).
html_static_path = ["_static"]
_mathjax_folder = os.environ.get("DUETRL_BOOK_STATIC")
if _mathjax_folder and (Path(_mathjax_folder) / "mathjax" / "tex-chtml.js").exists():
    html_static_path.append(_mathjax_folder)
    mathjax_path = "mathjax/tex-chtml.js"

# Languages.
locale_dirs = ["locale/"]
gettext_compact = False  # one catalogue per page: locale/zh_CN/LC_MESSAGES/tutorials/<stem>.po
gettext_uuid = False
gettext_location = False  # no source line numbers in the catalogues: fewer needless diffs
LANGUAGES = {"en": "English", "zh_CN": "中文"}

# Look.
html_theme = "sphinx_book_theme"
html_title = "duetrl"
html_templates_path = templates_path = ["_templates"]
html_css_files = ["duetrl.css"]
html_theme_options = {
    "home_page_in_toc": True,
    "show_toc_level": 2,
    "article_header_end": ["lang-switch.html", "article-header-buttons.html"],
    "use_download_button": True,
    # the sidebar opens the current page's branch only: the whole 316-page tree rendered into
    # every page was half of the build's write phase
    "collapse_navbar": True,
}
html_sidebars = {
    "**": [
        "navbar-logo.html",
        "lang-switch.html",
        "search-button-field.html",
        "sbt-sidebar-nav.html",
    ]
}
html_last_updated_fmt = None
# Chinese search: Sphinx cuts the Chinese text into words with jieba (the ``docs`` extra), which
# also learns the book's own terms (策略梯度, 贝尔曼方程...) from this list; without jieba the
# Chinese index holds no Chinese word at all. _static/zh_search.js cuts a query the same way.
html_search_options = {"dict": str(DOCS / "_ext" / "zh_search_terms.txt")}
html_show_sourcelink = False
suppress_warnings = ["mystnb.unknown_mime_type"]


def _other_language_links(app, pagename, templatename, context, doctree) -> None:
    """Put in every page's context the links to the same page in the other languages.

    The languages are sibling folders (``html/en/``, ``html/zh_CN/``), so from a page at
    depth d the same page in language L is ``../`` * (d + 1) + ``L/<pagename>.html``.
    """
    current = app.config.language or "en"
    built = os.environ.get("DUETRL_BOOK_LANGUAGES", ",".join(LANGUAGES)).split(",")
    up = "../" * (pagename.count("/") + 1)
    context["duetrl_languages"] = [
        (code, name, f"{up}{code}/{pagename}.html")
        for code, name in LANGUAGES.items()
        if code != current and code in built  # no link to a language this build leaves out
    ]
    context["duetrl_language"] = current


# A translated message is parsed again as Markdown, on its own. A heading such as
# "1. 两状态的马尔可夫决策过程" then reads as the start of a numbered list, and Sphinx silently
# keeps the English. A message is always the text of one paragraph or title (list markers are
# never part of it), so escaping a leading list marker ("1." "1)" "-" "*" "+") is always right.
LEADING_LIST_MARKER = re.compile(r"^(\s*)(\d+)([.)])(\s)|^(\s*)([-*+])(\s)")


def escape_leading_list_marker(message: str) -> str:
    """``"1. text"`` -> ``"1\\. text"`` and ``"- text"`` -> ``"\\- text"``; others unchanged."""
    return LEADING_LIST_MARKER.sub(
        lambda m: (f"{m[1]}{m[2]}\\{m[3]}{m[4]}" if m[2] else f"{m[5]}\\{m[6]}{m[7]}"),
        message, count=1)


def _translate_numbered_headings() -> None:
    """Make Sphinx's i18n transform escape leading list markers before parsing a message."""
    from sphinx.transforms import i18n

    if getattr(i18n._publish_msgstr, "duetrl_escapes", False):
        return
    publish = i18n._publish_msgstr

    def publish_escaped(source: str, *args, **kwargs):
        return publish(escape_leading_list_marker(source), *args, **kwargs)

    publish_escaped.duetrl_escapes = True
    i18n._publish_msgstr = publish_escaped


def _chinese_search(app) -> None:
    """On the Chinese pages: jieba's start-up log off, and queries cut into indexed words."""
    if not (app.config.language or "").startswith("zh"):
        return
    try:
        import jieba
    except ImportError as error:  # a Chinese index without jieba holds no Chinese word
        raise RuntimeError("jieba: the Chinese search index needs it (pip install "
                           "'duetrl[docs]'), it is not installed") from error
    jieba.setLogLevel(logging.WARNING)
    app.add_js_file("zh_search.js")


QUICK_BUILD_NOTE = {
    "en": "Quick build: the tutorials ran with small sizes and few updates, so their figures "
          "and numbers are not the ones the text describes (the published book is the full "
          "build, <code>make book</code>).",
    "zh_CN": "快速构建：教程以小规模、少量更新运行，图和数字不是正文所描述的结果"
             "（正式发布的是完整构建，<code>make book</code>）。",
}
AUTHORS = {"en": "the duetrl authors", "zh_CN": "duetrl 项目组"}


def _language_frame(app, config) -> None:
    """What the frame of every page says in the page's language (known only once ``-D
    language=`` has been applied): the authors in the footer, and on a quick build a banner
    saying that the tutorials' results are not the full ones."""
    language = config.language if config.language in LANGUAGES else "en"
    config.author = config.copyright = AUTHORS[language]
    if os.environ.get("DUETRL_QUICK") == "1":
        config.html_theme_options = {**config.html_theme_options,
                                     "announcement": QUICK_BUILD_NOTE[language]}


SAVED_FIGURE_LINE = re.compile(r"^saved \S+\.(?:png|svg|pdf)$\n?", re.MULTILINE)
"""A tutorial's ``print("saved", path)``: useful in a terminal, a local path on a page (where
the figure itself is shown)."""


def _drop_saved_figure_lines(app, doctree) -> None:
    """Take the "saved <path>.png" lines out of the executed tutorials' printed output."""
    from docutils import nodes

    for block in list(doctree.findall(nodes.literal_block)):
        if "output" not in block["classes"]:
            continue
        text = block.astext()
        kept = SAVED_FIGURE_LINE.sub("", text)
        if kept == text:
            continue
        if kept.strip():
            block.children = [nodes.Text(kept)]
        else:
            block.parent.remove(block)


def _slowest_tutorials_first(docnames, nproc, maxbatch=10):
    """Sphinx's parallel read (``-j 2``) as chunks for its worker processes: each tutorial in a
    chunk of its own, so that two tutorials run at once until the end, started slowest first
    (``tutorial_seconds.json``, the last full build's execution times; a new tutorial counts
    as the slowest): longest-processing-time-first scheduling. Sphinx's own chunks are about 30
    pages in name order, and a chunk's tutorials ran one after another.

    Sphinx's ``ParallelTasks`` starts the first ``nproc`` chunks it is given at once and then
    takes the waiting ones last-in first-out (``dict.popitem``), so the list is: the ``nproc``
    slowest, the other pages in Sphinx's own chunks, then the remaining tutorials fastest
    first (taken from the end: the slowest of them next).
    """
    import json

    timings = DOCS / "tutorial_seconds.json"
    seconds = json.loads(timings.read_text()) if timings.is_file() else {}
    tutorials = [name for name in docnames if name.startswith("tutorials/")]
    others = [name for name in docnames if not name.startswith("tutorials/")]
    tutorials.sort(key=lambda name: (-seconds.get(name.split("/", 1)[1], float("inf")), name))
    first, rest = tutorials[:nproc], tutorials[nproc:]
    return ([[name] for name in first]
            + (_sphinx_make_chunks(others, nproc, maxbatch) if others else [])
            + [[name] for name in reversed(rest)])


def _schedule_tutorials() -> None:
    global _sphinx_make_chunks
    import sphinx.builders

    if getattr(sphinx.builders.make_chunks, "__name__", "") != "_slowest_tutorials_first":
        _sphinx_make_chunks = sphinx.builders.make_chunks
        sphinx.builders.make_chunks = _slowest_tutorials_first


def setup(app) -> dict:
    """Write the outline's chapter pages before reading, and add the language links."""
    if os.environ.get("DUETRL_BOOK_EXECUTE") is None:  # every tutorial runs: order them
        _schedule_tutorials()
    app.connect("config-inited", _language_frame)
    app.connect("builder-inited", lambda app: outline_pages.write_chapter_pages(DOCS))
    app.connect("builder-inited", _chinese_search)
    app.connect("html-page-context", _other_language_links)
    app.connect("doctree-read", _drop_saved_figure_lines)
    _translate_numbered_headings()
    return {"parallel_read_safe": True}
