"""The book, checked in a real browser.

The site is built in quick mode in both languages (``docs/build.py``), served on localhost and
every page (but the Chinese pages whose English twin says it all: the API pages, and those with
no equation and no image, read from their files) is opened in headless Chromium at 1280 px: no console errors, every image loaded, every
equation typeset by MathJax, every internal link (and its anchor) pointing at something that
exists, nothing of a tutorial or API page scrolling sideways (code, outputs, tables, equations,
signatures); the search page finds "Bellman", and in Chinese 策略梯度 (the policy-gradient
pages), 贝尔曼方程 and 策略, with snippets of the pages' prose (no raw TeX, no theme buttons);
the executed tutorial offers its notebook and .py in each language,
the Chinese CLI pages are Chinese, and two pages of the Chinese book print to a PDF with a
Chinese font; a screenshot of tutorial 4.2 in each language is kept
in ``build/book/screenshots/``. Chromium and its driver come from the system's packages.
"""

from __future__ import annotations

import functools
import html
import http.server
import importlib.util
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL = "sudo apt-get install -y chromium chromium-driver"
LANGUAGES = ["en", "zh_CN"]
EXECUTED_TUTORIAL = "ch04_2_mdp_bellman_policy_gradient"
SCREENSHOT_PAGE = f"tutorials/{EXECUTED_TUTORIAL}.html"
SITE = REPO / "build" / "book-quick"  # not build/book: `make book`'s full site stays as it is
SCREENSHOTS = REPO / "build" / "book" / "screenshots"
PAGE_TIMEOUT = 30.0  # seconds for one page to load, typeset and show its images
WINDOW_WIDTH = 1280  # px: a laptop's window, where nothing of a tutorial may scroll sideways
SIDEWAYS_CHECKED = ("tutorials", "api")
"""Folders whose pages must not scroll sideways at WINDOW_WIDTH (code, outputs, tables and
equations of the tutorials; both frameworks' signatures on the API pages)."""


def require_chromium() -> None:
    """Fail (under CI) or skip (elsewhere) with the install command when Chromium is missing."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        message = f"headless Chromium is needed ({', '.join(missing)} missing): {INSTALL}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def build_site(out: Path) -> Path:
    """``docs/build.py``'s ``build_book(out, ["en", "zh_CN"], quick=True)``; returns html/.

    Only the screenshot's tutorial is executed (in the notebook kernel, its figures shown on
    the page); the others are rendered without outputs: tests/test_tutorials.py runs every
    tutorial already, and running them all again here would cost minutes of the suite."""
    spec = importlib.util.spec_from_file_location("duetrl_book_build", REPO / "docs" / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    return build.build_book(out, LANGUAGES, quick=True, execute=[EXECUTED_TUTORIAL])


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the site as a web server would: HTTP/1.1 (one connection for a page's ~20 files,
    not one each) and the theme's files (``_static/``) cacheable, so that each of the ~400 pages
    does not fetch and compile the same scripts and styles again. Pages and images are never
    cached: each is fetched by the page that shows it, a missing one fails there."""

    protocol_version = "HTTP/1.1"
    status = 0

    def send_response(self, code: int, message: str | None = None) -> None:
        self.status = code
        super().send_response(code, message)

    def end_headers(self) -> None:
        if self.status == 200 and "/_static/" in self.path:
            self.send_header("Cache-Control", "max-age=3600")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        pass


def serve(folder: Path) -> http.server.ThreadingHTTPServer:
    """A localhost HTTP server of ``folder`` on a free port, running in a daemon thread."""
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def start_chromium(profile: Path):
    """Headless Chromium through the system's chromedriver (selenium downloads nothing)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                 f"--window-size={WINDOW_WIDTH},1600"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)),
                              options=options)
    driver.set_page_load_timeout(PAGE_TIMEOUT)
    driver.set_script_timeout(PAGE_TIMEOUT)
    return driver


# Runs in the page once it has loaded: makes lazy images load, waits for them and for MathJax,
# then reports what the checks need. (An async script: the last argument is the callback; the
# first says whether to look for what scrolls sideways, a style read of every element of the
# article, only on the pages where that is checked.)
INSPECT_PAGE = """
const done = arguments[arguments.length - 1];
const checkSideways = arguments.length > 1 && arguments[0];
const images = Array.from(document.images);
images.forEach(img => { if (img.loading === "lazy") img.loading = "eager"; });
const settled = Promise.all(images.map(img => img.complete ? null : new Promise(resolve => {
  img.addEventListener("load", resolve); img.addEventListener("error", resolve); })));
const typeset = (window.MathJax && MathJax.startup && MathJax.startup.promise)
  ? MathJax.startup.promise : Promise.resolve();
function rawMath() {
  // text outside code, scripts and typeset maths that still holds TeX delimiters
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const found = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.parentElement.closest("pre, code, script, style, mjx-container, textarea")) continue;
    const m = node.textContent.match(/\\$\\$|\\\\\\(|\\\\\\[|\\\\begin\\{/);
    if (m) found.push(node.textContent.trim().slice(0, 80));
  }
  return found;
}
function sideways() {
  // what a reader would have to scroll sideways: the page itself, or a box in the article
  // (code, output, table, equation) whose content is wider than the box. MathJax's own inner
  // parts (stretchy delimiters) are clipped by design and are not boxes a reader scrolls.
  const found = [];
  const root = document.documentElement;
  if (root.scrollWidth > root.clientWidth + 1) found.push(`the page: ${root.scrollWidth} px`);
  document.querySelectorAll(".bd-article *").forEach(box => {
    if (box.closest("mjx-container") && box.tagName !== "MJX-CONTAINER") return;
    const overflow = getComputedStyle(box).overflowX;
    if ((overflow === "auto" || overflow === "scroll") && box.scrollWidth > box.clientWidth + 1)
      found.push(`${box.tagName.toLowerCase()}.${String(box.className).split(" ")[0]} ` +
                 `${box.scrollWidth} > ${box.clientWidth} px: ` +
                 box.textContent.trim().slice(0, 50));
  });
  return found;
}
Promise.all([settled, typeset]).then(() => {
  const maths = Array.from(document.querySelectorAll(".math"));
  done({
    brokenImages: images.filter(img => !(img.complete && img.naturalWidth > 0))
                        .map(img => img.getAttribute("src")),
    maths: maths.length,
    untypeset: maths.filter(m => !m.querySelector("mjx-container")).length,
    mathErrors: document.querySelectorAll("mjx-merror, .MathJax_Error, merror").length,
    rawMath: rawMath(),
    links: Array.from(document.querySelectorAll("a[href]")).map(a => a.href),
    sideways: checkSideways ? sideways() : [],
  });
}).catch(error => done({error: String(error)}));
"""


def target_file(html_root: Path, url_path: str) -> Path:
    """The file a same-site URL path names (a folder means its index.html)."""
    path = html_root / unquote(url_path).lstrip("/")
    return path / "index.html" if url_path.endswith("/") or path.is_dir() else path


@functools.cache
def anchors_of(page: Path) -> frozenset[str]:
    """The ids (and names) a page defines: what a ``#fragment`` may point at."""
    text = page.read_text(encoding="utf-8", errors="replace")
    return frozenset(re.findall(r"""\b(?:id|name)=["']([^"']+)["']""", text))


@functools.cache
def is_file(path: Path) -> bool:
    """``path.is_file()``, asked once per file: the ~400 pages link the same sidebar's pages."""
    return path.is_file()


def broken_links(links: list[str], base: str, html_root: Path) -> list[str]:
    """Same-site links whose file is missing, or whose ``#anchor`` is not on its page."""
    broken = []
    host = urlsplit(base).netloc
    for link in links:
        parts = urlsplit(link)
        if parts.scheme not in ("http", "https") or parts.netloc != host:
            continue
        path = target_file(html_root, parts.path)
        if not is_file(path):
            broken.append(link)
        elif parts.fragment and path.suffix == ".html" and \
                unquote(parts.fragment) not in anchors_of(path):
            broken.append(link)
    return broken


def check_page(driver, base: str, html_root: Path, page: str) -> list[str]:
    """Every problem of one page, as ``page: what`` lines."""
    driver.get(f"{base}/{page}")
    sideways = any(f"/{folder}/" in f"/{page}" for folder in SIDEWAYS_CHECKED)
    report = driver.execute_async_script(INSPECT_PAGE, sideways)
    # the browser asks every site for /favicon.ico on its own; the book has none, no page links it
    problems = [f"{page}: console: {entry['message'][:300]}"
                for entry in driver.get_log("browser") if entry["level"] == "SEVERE"
                and "/favicon.ico " not in entry["message"]]
    if "error" in report:
        return [*problems, f"{page}: the page check failed: {report['error']}"]
    problems += [f"{page}: image not loaded: {src}" for src in report["brokenImages"]]
    if report["untypeset"]:
        problems.append(f"{page}: {report['untypeset']} of {report['maths']} equations not "
                        "typeset by MathJax")
    if report["mathErrors"]:
        problems.append(f"{page}: {report['mathErrors']} MathJax errors")
    problems += [f"{page}: raw TeX in the text: {text!r}" for text in report["rawMath"]]
    problems += [f"{page}: broken link: {link}"
                 for link in broken_links(report["links"], base, html_root)]
    if sideways:
        problems += [f"{page}: scrolls sideways at {WINDOW_WIDTH} px: {what}"
                     for what in report["sideways"]]
    return problems


READ_NOT_OPENED = "zh_CN/generated/api/"
"""The Chinese copies of the API pages (223 of the site's ~640): the same docstrings as the
English pages under a translated frame. The browser opens every other page, the English API
pages included; these are read from their files for broken links and anchors (half the browser
check's time otherwise, for pages whose scripts, images and equations the English copies show)."""


def file_links(base: str, html_root: Path, page: str) -> list[str]:
    """The ``href`` links of one page, read from its file and resolved as the browser would."""
    from urllib.parse import urljoin

    text = (html_root / page).read_text(encoding="utf-8")
    return [urljoin(f"{base}/{page}", html.unescape(href))
            for href in re.findall(r'href="([^"]+)"', text)]


def static_link_problems(base: str, html_root: Path, page: str) -> list[str]:
    """The broken links of one page, read from its file."""
    links = file_links(base, html_root, page)
    assert links, f"{page}: no link read"  # the frame alone links to the other pages
    return [f"{page}: broken link: {link}" for link in broken_links(links, base, html_root)]


SHOWS_MATHS_OR_IMAGES = re.compile(r'<img\b|class="math\b|mathjax/tex-chtml')
NOT_TEXT = re.compile(r"<(script|style|pre|code|textarea)\b.*?</\1>", re.DOTALL | re.IGNORECASE)
TEX_DELIMITER = re.compile(r"\$\$|\\\(|\\\[|\\begin\{")


def opened_in_browser(html_root: Path, page: str) -> bool:
    """Whether the browser opens ``page``: every English page, and every Chinese page but the
    API pages (READ_NOT_OPENED) and those with no equation and no image (the Rosetta stone, the
    CLI and outline pages: the text of their English twins, opened, under the Chinese frame,
    which the Chinese tutorials, opened, exercise). Theirs is read from the file: links,
    anchors and raw TeX (static_page_problems)."""
    if not page.startswith("zh_CN/"):
        return True
    if page.startswith(READ_NOT_OPENED):
        return False
    return bool(SHOWS_MATHS_OR_IMAGES.search((html_root / page).read_text(encoding="utf-8")))


def static_page_problems(base: str, html_root: Path, page: str) -> list[str]:
    """A page read from its file: broken links and anchors, and TeX delimiters in its text
    (outside code, scripts and styles: what the browser's rawMath reports)."""
    text = NOT_TEXT.sub("", (html_root / page).read_text(encoding="utf-8"))
    raw = [html.unescape(m) for m in re.findall(r">([^<]*)<", text) if TEX_DELIMITER.search(m)]
    return [*static_link_problems(base, html_root, page),
            *[f"{page}: raw TeX in the text: {found.strip()[:80]!r}" for found in raw]]


def chooser_problems(base: str, html_root: Path) -> list[str]:
    """The top ``index.html`` only redirects to a language: its links must resolve (read from
    the file, since a browser would be gone before it could be inspected)."""
    from urllib.parse import urljoin

    text = (html_root / "index.html").read_text(encoding="utf-8")
    links = file_links(base, html_root, "index.html")
    links += [urljoin(f"{base}/index.html", url) for url in re.findall(r"url=([^\"';]+)", text)]
    problems = [f"index.html: broken link: {link}"
                for link in broken_links(links, base, html_root)]
    return problems + ([] if links else ["index.html: links to no language"])


def search_results(driver, base: str, query: str, language: str = "en") -> list[tuple[str, str]]:
    """(title, link) of the pages the site's search lists for ``query``, once it has finished
    (Sphinx writes its summary line last, in the page's language)."""
    from urllib.parse import quote

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{base}/{language}/search.html?q={quote(query)}")
    WebDriverWait(driver, PAGE_TIMEOUT).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#search-results p.search-summary")
        and d.find_element(By.CSS_SELECTOR, "#search-results p.search-summary").text.strip())
    return [(item.text, item.find_element(By.TAG_NAME, "a").get_attribute("href"))
            for item in driver.find_elements(By.CSS_SELECTOR, "#search-results li")]


RAW_TEX = re.compile(r"\\[()\[\]]|\$\$|\\(?:frac|mathrm|mathbb|sum|left|right|text|hat|begin)(?![a-zA-Z])")
THEME_TEXT = ("System Settings", "Light Dark", "Toggle primary sidebar", "Color mode")


SNIPPETS = """
// the page results (an API object's result has its description, a span, instead of a snippet)
const pages = Array.from(document.querySelectorAll("#search-results li"))
  .filter(item => !item.querySelector(":scope > span"));
const snippets = pages.map(item => item.querySelector("p.context")).filter(Boolean);
return pages.length && snippets.length === pages.length ? snippets.map(p => p.textContent) : null;
"""


def search_snippets(driver) -> list[str]:
    """The snippet under each page of the search page's current results, once every page has
    its own (Sphinx fetches each result page and cuts its text: _static/duetrl.js picks the
    prose)."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, PAGE_TIMEOUT).until(lambda d: d.execute_script(SNIPPETS))


def snippet_problems(snippets: list[str], query: str) -> list[str]:
    """Snippets holding raw TeX or the theme's button labels, not the page's prose."""
    return [f"search {query!r}: snippet not prose: {text[:160]!r}" for text in snippets
            if RAW_TEX.search(text) or any(words in text for words in THEME_TEXT)]


def site_pages(html_root: Path) -> list[str]:
    """Every page of both languages (not the theme's HTML fragments under ``_static``)."""
    pages = []
    for path in html_root.rglob("*.html"):
        parts = path.relative_to(html_root).parts
        if parts[0] in LANGUAGES and not parts[1].startswith("_"):
            pages.append("/".join(parts))
    return sorted(pages)


def test_book_in_a_browser(tmp_path: Path) -> None:
    require_chromium()
    started = time.perf_counter()
    html_root = build_site(SITE)
    built = time.perf_counter()
    pages = site_pages(html_root)
    for language in LANGUAGES:
        assert f"{language}/index.html" in pages
        assert f"{language}/{SCREENSHOT_PAGE}" in pages
        assert f"{language}/generated/rosetta/index.html" in pages
    server = serve(html_root)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    profile = Path(tempfile.mkdtemp(prefix="duetrl-chromium-"))
    driver = start_chromium(profile)
    try:
        problems = chooser_problems(base, html_root)
        for page in pages:
            if opened_in_browser(html_root, page):
                problems += check_page(driver, base, html_root, page)
            else:
                problems += static_page_problems(base, html_root, page)
        found = search_results(driver, base, "Bellman")
        problems += snippet_problems(search_snippets(driver), "Bellman")
        # Chinese words, cut by jieba into the index and by _static/zh_search.js in the query
        found_zh = {}
        for word in ("策略梯度", "贝尔曼方程", "策略"):
            found_zh[word] = search_results(driver, base, word, "zh_CN")
            if word == "策略梯度":
                problems += snippet_problems(search_snippets(driver), word)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for language in LANGUAGES:
            driver.get(f"{base}/{language}/{SCREENSHOT_PAGE}")
            driver.execute_async_script(INSPECT_PAGE)  # images and equations in place
            shot = SCREENSHOTS / f"ch04_2_{language}.png"
            assert driver.save_screenshot(str(shot)), f"no screenshot saved at {shot}"
            shutil.copy2(shot, tmp_path / shot.name)
    finally:
        driver.quit()
        server.shutdown()
        shutil.rmtree(profile, ignore_errors=True)
    print(f"\nbook: quick build {built - started:.0f} s, {len(pages)} pages checked in "
          f"{time.perf_counter() - built:.0f} s")
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:60])
    assert found, "the search page lists no page for 'Bellman'"
    for word, results in found_zh.items():
        assert results, f"zh_CN/search.html lists no page for {word!r}"
        assert all("/zh_CN/" in link for _, link in results), results
    gradient = [link for _, link in found_zh["策略梯度"]]
    for page in ("tutorials/ch04_2_mdp_bellman_policy_gradient.html",
                 "tutorials/ch05_2_reinforce_torch_vs_tf.html"):  # the policy-gradient pages
        assert any(page in link for link in gradient), (page, gradient)
    assert len(found_zh["策略"]) >= len(gradient)  # one word of the two: at least as many
    for language in LANGUAGES:
        assert (tmp_path / f"ch04_2_{language}.png").stat().st_size > 10_000
        # the executed tutorial's figures are on its page (the kernel ran it and showed them)
        page = (html_root / language / SCREENSHOT_PAGE).read_text(encoding="utf-8")
        assert re.search(r'<img[^>]+src="[^"]*_images/', page), f"{language}: no figure shown"
        # ... numbered and captioned, and drawn in the page's language (issue 23 items 2, 5)
        number = {"en": "Figure 1: ", "zh_CN": "图 1："}[language]
        text = html.unescape(re.sub(r"<[^>]+>", "", page))
        assert number in text, f"{language}: no {number!r} caption on {SCREENSHOT_PAGE}"
        from PIL import Image

        for src in re.findall(r'<img[^>]+src="([^"]*_images/[^"]+\.png)"', page):
            with Image.open((html_root / language / SCREENSHOT_PAGE).parent / src) as image:
                drawn = image.text.get("duetrl-language")
            assert drawn == language, f"{language}: {src} is drawn in {drawn}"
        # a quick build says so on its pages, in their language; the footer names the authors
        # in it too
        quick_note, authors = {"en": ("Quick build:", "the duetrl authors"),
                               "zh_CN": ("快速构建：", "duetrl 项目组")}[language]
        assert quick_note in page, f"{language}: no quick-build note on {SCREENSHOT_PAGE}"
        saved = re.findall(r"saved \S+\.png", page)  # the tutorial prints them; not on a page
        assert not saved, f"{language}: {SCREENSHOT_PAGE} shows local paths {saved}"
        assert authors in page and (language == "en" or "the duetrl authors" not in page)
    extra = downloads_and_pdf_problems(html_root)
    assert not extra, "\n".join(extra)


CJK_FONT = re.compile(rb"/FontName\s*/(?:[A-Z]{6}\+)?[\w-]*(?:CJK|WenQuanYi|ZenHei|Hei|Song|Ming)",
                      re.IGNORECASE)
"""A Chinese font embedded in a PDF (its name: Noto Sans CJK, WenQuanYi Zen Hei...)."""


def downloads_and_pdf_problems(html_root: Path) -> list[str]:
    """The executed tutorial's page offers its notebook and .py in the page's language;
    tutorial 5.2 shows its torch / tf tabs; the zh CLI pages are Chinese; a PDF of two pages
    of the Chinese book prints with a CJK font."""
    build = load_build()
    problems = []
    stem = EXECUTED_TUTORIAL
    for language in LANGUAGES:
        page = (html_root / language / SCREENSHOT_PAGE).read_text(encoding="utf-8")
        for suffix in (".ipynb", ".py"):
            link = f"../_downloads/notebooks/{stem}{suffix}"
            if f'href="{link}"' not in page:
                problems.append(f"{language}/{SCREENSHOT_PAGE}: no download of {link}")
        notebook = html_root / language / "_downloads" / "notebooks" / f"{stem}.ipynb"
        chinese = notebook.exists() and re.search(r"[\u4e00-\u9fff]{4}",
                                                  notebook.read_text(encoding="utf-8"))
        if notebook.exists() and bool(chinese) != (language == "zh_CN"):
            problems.append(f"{notebook}: its Markdown is not in the page's language")
        tabs = (html_root / language / "tutorials" / "ch05_2_reinforce_torch_vs_tf.html")
        if 'class="duetrl-tabs' not in tabs.read_text(encoding="utf-8"):
            problems.append(f"{language}: tutorial 5.2 shows no PyTorch / TensorFlow tabs")
    cli = (html_root / "zh_CN" / "generated" / "cli" / "train.html").read_text(encoding="utf-8")
    if "显示此帮助信息并退出" not in cli or "show this help message" in cli:
        problems.append("zh_CN/generated/cli/train.html: argparse's help is not Chinese")
    pdf = build.book_pdf(SITE, "zh_CN", ["index", f"tutorials/{stem}"])
    data = pdf.read_bytes()
    pages = len(re.findall(rb"/Type\s*/Page\b", data))
    if not data.startswith(b"%PDF") or pages < 3:
        problems.append(f"{pdf}: {pages} pages, expected a PDF of 3 or more")
    if not CJK_FONT.search(data):
        problems.append(f"{pdf}: no Chinese font embedded (install fonts-noto-cjk)")
    return problems


def load_build():
    spec = importlib.util.spec_from_file_location("duetrl_book_build", REPO / "docs" / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    return build


def test_build_book_names_an_unknown_tutorial_to_execute(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("duetrl_book_build", REPO / "docs" / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    with pytest.raises(ValueError, match="execute: expected tutorial names.*ch99_nothing"):
        build.build_book(tmp_path, ["en"], quick=True, execute=["ch99_nothing"])


def test_build_book_without_chromium_refuses_a_pdf_before_building(tmp_path: Path,
                                                                   monkeypatch) -> None:
    build = load_build()
    sys.path.insert(0, str(REPO / "docs" / "_ext"))
    import duetrl_pdf

    monkeypatch.setattr(duetrl_pdf, "chromium_missing", lambda: ["/usr/bin/chromium"])
    with pytest.raises(FileNotFoundError, match="pdf: .*/usr/bin/chromium.*--no-pdf"):
        build.build_book(tmp_path, ["en"], quick=True, pdf=True)
    assert not (tmp_path / "html").exists()  # refused before any work
