"""The book as one PDF per language: the built HTML pages, in reading order, printed by
headless Chromium (no TeX: ``chromium``, ``chromium-driver`` and a CJK font from Debian).

The pages are the site's own (``html/<language>/``), so the PDF shows what the site shows:
executed outputs, figures, equations typeset by MathJax, Chinese text in a CJK font. The
reading order is the table of contents (Sphinx's toctrees, from the build's environment);
the generated reference (``generated/``: API, Rosetta stone, CLI, over 200 pages of
docstrings) stays on the site. Each page starts a new sheet.

Used by ``docs/build.py`` (``--pdf``; on by default in a full build), not by Sphinx.
"""

from __future__ import annotations

import base64
import functools
import http.server
import pickle
import posixpath
import re
import shutil
import tempfile
import threading
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL = "sudo apt-get install -y chromium chromium-driver fonts-wqy-zenhei"
LEFT_OUT = ("generated/",)
"""Docname prefixes the PDF leaves to the site."""
PRINT_PAGE = "_print/book.html"
"""The page assembled for printing, under ``html/<language>/`` (removed afterwards)."""
TITLES = {"en": "duetrl: the book", "zh_CN": "duetrl：全书"}


def reading_order(doctrees: Path, root: str = "index") -> list[str]:
    """Docnames in the order of the table of contents (depth first from ``root``), each once,
    without the generated reference."""
    with (doctrees / "environment.pickle").open("rb") as file:
        env = pickle.load(file)  # noqa: S301 - the build's own pickle, written a moment ago
    order: list[str] = []

    def walk(docname: str) -> None:
        if docname in order:
            return
        order.append(docname)
        for child in env.toctree_includes.get(docname, []):
            walk(child)

    walk(root)
    return [d for d in order if not d.startswith(LEFT_OUT)]


ARTICLE = re.compile(r'<article class="bd-article"[^>]*>(.*?)</article>', re.DOTALL)
HEAD = re.compile(r"<head>(.*?)</head>", re.DOTALL)
URL = re.compile(r'\b(src|href)="([^"#:]+)(#[^"]*)?"')


def _rebase(html: str, docname: str) -> str:
    """Relative URLs of page ``docname`` made relative to the print page's folder."""
    page_folder = posixpath.dirname(docname)
    print_folder = posixpath.dirname(PRINT_PAGE)

    def rebase(match: re.Match) -> str:
        attribute, url, fragment = match[1], match[2], match[3] or ""
        target = posixpath.normpath(posixpath.join(page_folder, url))
        return f'{attribute}="{posixpath.relpath(target, print_folder)}{fragment}"'

    return URL.sub(rebase, html)


def print_page(html_root: Path, docnames: list[str], language: str) -> Path:
    """Write ``html_root/_print/book.html``: the articles of ``docnames`` one after another
    (each from a new sheet), under the head of the first page that loads MathJax (the same
    styles as every page, and the equations typeset), else of the first page."""
    articles = []
    head = None
    for docname in docnames:
        page = (html_root / f"{docname}.html").read_text(encoding="utf-8")
        article = ARTICLE.search(page)
        if article is None:
            raise ValueError(f"{docname}.html: no <article class=\"bd-article\"> to print")
        page_head = HEAD.search(page)[1]
        # Sphinx loads MathJax only on pages with maths: the head of the first such page
        if head is None or ("mathjax" in page_head and "mathjax" not in head):
            head = _rebase(page_head, docname)
        articles.append(f'<section class="duetrl-print-page" data-page="{docname}">'
                        f"{_rebase(article[1], docname)}</section>")
    lang = language.replace("_", "-")
    out = html_root / PRINT_PAGE
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        f'<!DOCTYPE html>\n<html lang="{lang}" data-theme="light" data-mode="light">\n'
        f"<head>{head}<title>{TITLES.get(language, TITLES['en'])}</title></head>\n"
        f'<body class="duetrl-print"><main class="bd-main"><div class="bd-content">'
        f'<div class="bd-article-container"><article class="bd-article">'
        f"{''.join(articles)}</article></div></div></main></body>\n</html>\n",
        encoding="utf-8")
    return out


# Waits for the images and for MathJax's typesetting (an async script: last argument is the
# callback), as tests/test_book.py does before it inspects a page.
SETTLE = """
const done = arguments[arguments.length - 1];
const images = Array.from(document.images);
images.forEach(img => { if (img.loading === "lazy") img.loading = "eager"; });
Promise.all([
  ...images.map(img => img.complete ? null : new Promise(resolve => {
      img.addEventListener("load", resolve); img.addEventListener("error", resolve); })),
  (window.MathJax && MathJax.startup && MathJax.startup.promise) || null,
]).then(() => done(document.querySelectorAll("mjx-merror").length), e => done(String(e)));
"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        pass


def chromium_missing() -> list[str]:
    """The browser's files that are not installed (empty: the PDF can be printed)."""
    return [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]


def print_pdf(html_root: Path, page: Path, out: Path, timeout: float = 300.0) -> Path:
    """Print ``page`` (a file under ``html_root``, served on localhost) to the PDF ``out``
    with headless Chromium: A4, backgrounds on, the theme's print style."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    missing = chromium_missing()
    if missing:
        raise FileNotFoundError(f"headless Chromium prints the PDF ({', '.join(missing)} "
                                f"missing): {INSTALL}")
    handler = functools.partial(_Quiet, directory=str(html_root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    profile = Path(tempfile.mkdtemp(prefix="duetrl-pdf-"))
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", f"--user-data-dir={profile}", "--window-size=1000,1400"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)),
                              options=options)
    try:
        driver.set_page_load_timeout(timeout)
        driver.set_script_timeout(timeout)
        relative = page.relative_to(html_root).as_posix()
        driver.get(f"http://127.0.0.1:{server.server_address[1]}/{relative}")
        errors = driver.execute_async_script(SETTLE)
        if errors:
            raise RuntimeError(f"{relative}: MathJax could not typeset the book ({errors})")
        # the DevTools command, not WebDriver's print: chromedriver gives a renderer 10 s to
        # answer that one, and a whole book takes about 30 s
        inch = 2.54  # A4 with 1.5 cm margins, in inches
        printed = driver.execute_cdp_cmd("Page.printToPDF", {
            "printBackground": True, "paperWidth": 21.0 / inch, "paperHeight": 29.7 / inch,
            "marginTop": 1.5 / inch, "marginBottom": 1.5 / inch,
            "marginLeft": 1.5 / inch, "marginRight": 1.5 / inch})
        pdf = base64.b64decode(printed["data"])
    finally:
        driver.quit()
        server.shutdown()
        shutil.rmtree(profile, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(pdf)
    return out


def book_pdf(html_root: Path, doctrees: Path, language: str, out: Path,
             docnames: list[str] | None = None) -> Path:
    """The book of one language as the PDF ``out``.

    :param html_root: the language's built site (``html/<language>``).
    :param doctrees: the language's doctrees (its ``environment.pickle`` gives the order).
    :param docnames: the pages to print (default: the whole reading order).
    """
    chosen = reading_order(doctrees) if docnames is None else docnames
    page = print_page(html_root, chosen, language)
    try:
        return print_pdf(html_root, page, out)
    finally:
        shutil.rmtree(page.parent, ignore_errors=True)


def pdf_pages(path: Path) -> int:
    """The number of pages of a PDF written by Chromium (its page objects, counted)."""
    return len(re.findall(rb"/Type\s*/Page\b", path.read_bytes()))
