"""Build the duetrl book: a static site in English and Chinese, tutorials executed.

    python docs/build.py                       # full build (make book): build/book/html/
    python docs/build.py --quick               # tutorials in quick mode (seconds each)
    python docs/build.py --languages en        # one language only
    python docs/build.py --jobs 1              # one tutorial at a time (default: 2)
    python docs/build.py --quick --pdf         # and the book as a PDF per language (a full
                                               # build prints them by default; --no-pdf not)
    python docs/build.py --pdf-only            # only print the PDFs of the site at --out
    python docs/build.py --update-catalogues   # refresh docs/locale/zh_CN/*.po, keep translations
    python docs/build.py --update-cli-catalogue  # the CLI pages' help strings (cli_help.po)

Layout of ``--out`` (default ``build/book``): ``html/index.html`` (choose a language),
``html/en/``, ``html/zh_CN/``, and per language the Sphinx doctrees.

Why the pieces are where they are:

- The tutorials stay in the repository's ``tutorials/``; ``docs/tutorials`` is a committed
  symbolic link to that folder, so each tutorial is the page ``tutorials/<stem>`` with no copy
  in git and plain ``sphinx-build docs ...`` works too (translators' gettext runs, editors).
- Each tutorial is executed once per build: the jupyter-cache folder is shared by both
  languages (the code is the same, only the prose is translated). The cache lives in
  ``build/book-cache/`` under a key made of the mode (quick or full) and a hash of the project's
  code, so a change in ``core/`` or ``backends/`` re-executes the tutorials instead of showing
  stale outputs.
- MathJax 3 comes from the npm registry (``npm install`` into the cache folder, once) and is
  copied into each language's ``_static/mathjax/``: equations render with no network.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
LANGUAGES = ("en", "zh_CN")
CACHE = REPO / "build" / "book-cache"
TUTORIAL_SECONDS = DOCS / "tutorial_seconds.json"  # the last full build's time per tutorial
MATHJAX_VERSION = "3.2.2"
# The parts of MathJax's es5 bundle the site uses: TeX in, CommonHTML out, the fonts, the
# TeX extensions it loads on demand, and the right-click menu with its accessibility parts.
MATHJAX_PARTS = ("tex-chtml.js", "output/chtml/fonts", "input/tex/extensions", "ui", "a11y")


def code_hash(repo: Path = REPO) -> str:
    """A short hash of the tutorials' inputs: the project's code (``core/``, ``backends/``) and
    the figure strings' catalogue (the Chinese twins of the figures are drawn at execution)."""
    digest = hashlib.sha256()
    for folder in ("core", "backends"):
        for path in sorted((repo / folder).rglob("*.py")):
            digest.update(str(path.relative_to(repo)).encode())
            digest.update(path.read_bytes())
    digest.update((repo / "docs/locale/zh_CN/LC_MESSAGES/figures.po").read_bytes())
    return digest.hexdigest()[:16]


def execution_cache(quick: bool, cache: Path = CACHE) -> Path:
    """The jupyter-cache folder for this mode and this code; older ones are removed."""
    from jupyter_cache import get_cache

    mode = "quick" if quick else "full"
    folder = cache / f"jupyter-{mode}-{code_hash()}"
    for old in cache.glob(f"jupyter-{mode}-*"):
        if old != folder:
            shutil.rmtree(old, ignore_errors=True)
    # its database made now, once: two Sphinx workers that both find none create it at once
    # and one fails ("table settings already exists"), the first time a build runs -j 2
    get_cache(folder).list_cache_records()
    return folder


def tutorial_seconds(cache_folder: Path) -> dict[str, float]:
    """``{tutorial stem: seconds}`` of each tutorial executed into a jupyter-cache folder
    (MyST-NB records each notebook's execution time there); empty without a cache."""
    import sqlite3

    database = Path(cache_folder) / "global.db"
    if not database.is_file():
        return {}
    with contextlib.closing(sqlite3.connect(database)) as connection:
        rows = connection.execute("select uri, data from nbcache").fetchall()
    seconds = {}
    for uri, data in rows:
        found = json.loads(data or "{}").get("execution_seconds")
        if Path(uri).parent.name == "tutorials" and isinstance(found, (int, float)):
            seconds[Path(uri).stem] = round(float(found), 1)
    return dict(sorted(seconds.items(), key=lambda item: -item[1]))


def record_tutorial_seconds(cache_folder: Path, path: Path = TUTORIAL_SECONDS) -> Path | None:
    """Write the full build's execution time of every tutorial to ``path`` (conf.py reads it
    to execute the slowest first); nothing when some tutorial has no time (a partial build)."""
    seconds = tutorial_seconds(cache_folder)
    tutorials = {source.stem for source in (DOCS / "tutorials").glob("*.py")}
    if not tutorials or set(seconds) != tutorials:
        return None
    path.write_text(json.dumps(seconds, indent=1) + "\n", encoding="utf-8")
    return path


def mathjax_static(cache: Path = CACHE) -> Path:
    """A folder holding ``mathjax/`` (MathJax 3 from npm, installed into ``cache`` once).

    Safe for concurrent callers (two builds, two test workers): each installs into its own
    temporary folder and renames it into place; whoever renames second keeps the first's copy.
    """
    static = cache / "static"
    target = static / "mathjax"
    if (target / "tex-chtml.js").exists():
        return static
    npm = shutil.which("npm")
    if npm is None:
        raise FileNotFoundError(
            "npm: expected Node's package manager on PATH (it installs MathJax for offline "
            "equations), found none; install Node.js, or put MathJax 3's es5 folder at "
            f"{target}")
    if target.exists():  # a copy cut short before copies were atomic: start again
        shutil.rmtree(target, ignore_errors=True)
    static.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=static, prefix=".mathjax-") as scratch:
        prefix, staged = Path(scratch) / "npm", Path(scratch) / "mathjax"
        subprocess.run([npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund",
                        f"mathjax@{MATHJAX_VERSION}"], check=True)
        es5 = prefix / "node_modules" / "mathjax" / "es5"
        for part in MATHJAX_PARTS:
            source = es5 / part
            if source.is_dir():
                shutil.copytree(source, staged / part)
            else:
                (staged / part).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, staged / part)
        shutil.copy2(prefix / "node_modules" / "mathjax" / "LICENSE", staged / "LICENSE")
        try:
            staged.rename(target)  # atomic: readers see no folder or a whole one
        except OSError:
            if not (target / "tex-chtml.js").exists():  # not a lost race: a real failure
                raise
    return static


def build_environment(quick: bool, figures: Path, cache: Path = CACHE) -> dict[str, str]:
    """The environment conf.py and the executed tutorials see."""
    env = dict(os.environ)
    env.update({
        "DUETRL_BOOK_CACHE": str(execution_cache(quick, cache)),
        "DUETRL_BOOK_STATIC": str(mathjax_static(cache)),
        "DUETRL_FIGURES": str(figures),  # tutorials save their PNGs here and show them inline
        "MPLBACKEND": "Agg",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "TF_ENABLE_ONEDNN_OPTS": "0",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        # tqdm (imported by a dependency) warns in a kernel without ipywidgets: noise on a page
        "PYTHONWARNINGS": "ignore:IProgress not found",
    })
    for threads in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env.setdefault(threads, "1")
    if quick:
        env["DUETRL_QUICK"] = "1"
    else:
        env.pop("DUETRL_QUICK", None)
    return env


def sphinx(builder: str, language: str, out: Path, doctrees: Path, env: dict[str, str],
           extra: tuple[str, ...] = ()) -> None:
    """Run one Sphinx build in a child process (a clean interpreter per language)."""
    command = [sys.executable, "-m", "sphinx", "-b", builder, "-q", "-D", f"language={language}",
               "-d", str(doctrees), *extra, str(DOCS), str(out)]
    result = subprocess.run(command, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"sphinx-build ({builder}, {language}) failed with exit code "
                           f"{result.returncode}; its messages are above")


def environment_stamp(doctrees: Path) -> int | None:
    """The modification time (ns) of a Sphinx build's pickled environment; None: none yet."""
    pickle = doctrees / "environment.pickle"
    return pickle.stat().st_mtime_ns if pickle.exists() else None


def wait_until_read(doctrees: Path, before: int | None, build: Future, poll: float = 1.0) -> None:
    """Return once the Sphinx build writing ``doctrees`` has read every page: its pickled
    environment rewritten (its stamp no longer ``before``, the one from before it started;
    a stamp, not a clock: file times lag the clock by a few ms), or ``build`` done.

    :raises: what ``build`` raised, if it failed before that."""
    while not build.done():
        stamp = environment_stamp(doctrees)
        if stamp is not None and stamp != before:
            return
        time.sleep(poll)
    build.result()


EXTERNAL_ASSET = re.compile(r"""<(?:script|link|img)\b[^>]*\b(?:src|href)=["'](?:https?:)?//""")


def external_assets(html: Path) -> list[str]:
    """Pages that load a script, style sheet or image from another site (there must be none)."""
    return [str(page.relative_to(html)) for page in sorted(html.rglob("*.html"))
            if EXTERNAL_ASSET.search(page.read_text(encoding="utf-8", errors="replace"))]


LANGUAGE_NAMES = {"en": "English", "zh_CN": "中文"}


def language_chooser(languages: list[str]) -> str:
    """The site's front page: go to the reader's language when it was built, else the first."""
    first = languages[0]
    chinese = "zh_CN" if "zh_CN" in languages else first
    links = " ·\n".join(f'<a href="{code}/index.html" hreflang="{code.replace("_", "-")}">'
                        f"{LANGUAGE_NAMES[code]}</a>" for code in languages)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>duetrl</title>
<script>
  // the reader's own language when the site has it, the first one built otherwise
  var chinese = (navigator.language || "").toLowerCase().indexOf("zh") === 0;
  location.replace(chinese ? "{chinese}/index.html" : "{first}/index.html");
</script>
<noscript><meta http-equiv="refresh" content="0; url={first}/index.html"></noscript>
</head>
<body>
<p>{links}</p>
</body>
</html>
"""


def pdf_path(html: Path, language: str) -> Path:
    """Where the book's PDF of ``language`` goes: ``html/<language>/_downloads/``."""
    return html / language / "_downloads" / f"duetrl-{language}.pdf"


def book_pdf(out: Path, language: str, docnames: list[str] | None = None) -> Path:
    """Print the built site of ``language`` (under ``out``) to its PDF (``docs/_ext/duetrl_pdf.py``:
    headless Chromium, the pages in the table of contents' order, the reference left out)."""
    sys.path.insert(0, str(DOCS / "_ext"))
    import duetrl_pdf

    html = Path(out).resolve() / "html"
    return duetrl_pdf.book_pdf(html / language, Path(out).resolve() / "doctrees" / language,
                               language, pdf_path(html, language), docnames)


def build_book(out: Path, languages: list[str], quick: bool,
               execute: list[str] | None = None, pdf: bool = False, jobs: int = 1) -> Path:
    """Build the site into ``out/html/<language>/``; returns ``out/html``.

    :param out: output folder (created).
    :param languages: any of ``en`` and ``zh_CN``.
    :param quick: run the tutorials in quick mode (``DUETRL_QUICK=1``).
    :param execute: the tutorials (file stems) to execute; the others are rendered without
        their outputs. ``None``: every tutorial.
    :param pdf: also print each language's book to ``html/<language>/_downloads/
        duetrl-<language>.pdf`` (headless Chromium), linked from every page's download menu.
    :param jobs: Sphinx processes reading pages at once in the first language's build, the one
        that executes the tutorials (each pins its frameworks to one thread, so two at once use
        2 cores); the other languages read the executed notebooks from the cache.
    """
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(f"jobs: expected a whole number >= 1, got {jobs!r}")
    unknown = [lang for lang in languages if lang not in LANGUAGES]
    if unknown or not languages:
        raise ValueError(f"languages: expected some of {', '.join(LANGUAGES)}, got {languages}")
    if execute is not None:  # checked before any work (the environment copies MathJax)
        known = {path.stem for path in (DOCS / "tutorials").glob("*.py")}
        unknown = sorted(set(execute) - known)
        if unknown:
            raise ValueError(f"execute: expected tutorial names from tutorials/, got {unknown}")
    if pdf:
        sys.path.insert(0, str(DOCS / "_ext"))
        import duetrl_pdf

        missing = duetrl_pdf.chromium_missing()
        if missing:  # said before a build of minutes, not after it
            raise FileNotFoundError(
                f"pdf: headless Chromium prints the book's PDF, and {', '.join(missing)} "
                f"is missing: {duetrl_pdf.INSTALL} (make browser), or build with --no-pdf")
    out = Path(out).resolve()
    html = out / "html"
    # relative: each tutorial runs in its own temporary folder, so a page says "saved
    # figures/x.png" (no path of the build machine); the figure itself is shown inline
    env = build_environment(quick, Path("figures"))
    env["DUETRL_BOOK_LANGUAGES"] = ",".join(languages)  # the language switch links only these
    if execute is not None:
        env["DUETRL_BOOK_EXECUTE"] = ",".join(execute)
    if pdf:
        env["DUETRL_BOOK_PDF"] = "1"  # the pages' download menus link the book's PDF
    else:
        env.pop("DUETRL_BOOK_PDF", None)
    # Overlapped on 2 cores: the next language's build starts once this one has *read* every
    # page (its tutorials executed and cached: Sphinx pickles its environment then), while
    # this one writes its pages; each language's PDF (headless Chromium) prints after its own
    # build, one at a time (one printer thread), while the next builds.
    def build_language(n: int, language: str) -> None:
        parallel = ("-j", str(jobs)) if n == 0 and jobs > 1 else ()
        sphinx("html", language, html / language, out / "doctrees" / language, env, parallel)
        if n == 0 and not quick and execute is None:  # the next build: the slowest first
            record_tutorial_seconds(Path(env["DUETRL_BOOK_CACHE"]))
        if pdf:
            printing.append(printer.submit(book_pdf, out, language))

    printing: list = []
    with ThreadPoolExecutor(max_workers=1) as printer, \
            ThreadPoolExecutor(max_workers=len(languages)) as builders:
        building, stamps = [], []
        for n, language in enumerate(languages):
            if building:  # the previous language: wait until it has read every page
                wait_until_read(out / "doctrees" / languages[n - 1], stamps[-1], building[-1])
            stamps.append(environment_stamp(out / "doctrees" / language))
            building.append(builders.submit(build_language, n, language))
        for job in building:
            job.result()  # a failed build raises here
        for job in printing:
            job.result()  # a failed print raises here, after the builds
    html.mkdir(parents=True, exist_ok=True)
    (html / "index.html").write_text(language_chooser(languages), encoding="utf-8")
    offenders = external_assets(html)
    if offenders:
        raise RuntimeError("pages load assets from another site (the book must work offline): "
                           + ", ".join(offenders[:10]))
    return html


def update_catalogues(out: Path, language: str = "zh_CN", only: list[str] | None = None) -> Path:
    """Extract every page's text (no execution) and merge it into ``docs/locale/<language>``.

    Existing translations are kept; new text arrives with an empty ``msgstr``; text that left
    a page is kept as an obsolete (``#~``) entry. ``only``: docname prefixes (``tutorials/``,
    ``outline/``, ``index``) to limit which catalogues are touched; by default every page's
    but the generated reference pages' (``generated/``, whose generator writes each language).
    """
    out = Path(out).resolve()
    env = dict(os.environ, DUETRL_BOOK_CACHE=str(out / "gettext-cache"))
    pot = out / "gettext"
    sphinx("gettext", "en", pot, out / "doctrees" / "gettext", env,
           extra=("-D", "nb_execution_mode=off"))
    # the generated reference pages write their Chinese themselves: no catalogues for them
    chosen = out / "gettext-chosen"
    shutil.rmtree(chosen, ignore_errors=True)
    for template in pot.rglob("*.pot"):
        docname = template.relative_to(pot).with_suffix("").as_posix()
        wanted = any(docname.startswith(p) for p in only) if only else (
            not docname.startswith("generated/"))
        if wanted:
            (chosen / docname).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(template, chosen / f"{docname}.pot")
    pot = chosen
    subprocess.run([sys.executable, "-m", "sphinx_intl", "update", "-p", str(pot), "-l", language,
                    "-d", str(DOCS / "locale")], check=True, env=env)
    messages = DOCS / "locale" / language / "LC_MESSAGES"
    if language == "zh_CN":
        fill_outline_catalogues(messages)
    return messages


def update_cli_catalogue(language: str = "zh_CN") -> Path:
    """Merge the CLI's help strings into ``docs/locale/<language>/cli_help.po`` (the CLI pages'
    catalogue, docs/_ext/duetrl_cli_help.py): new strings arrive with an empty ``msgstr``."""
    sys.path.insert(0, str(DOCS / "_ext"))
    import duetrl_cli_help

    from duetrl.core.cli import build_parser

    return duetrl_cli_help.update_catalogue(build_parser(), language)


def fill_outline_catalogues(messages: Path) -> int:
    """Fill the empty ``msgstr`` of the outline pages from ``outline_pages.translations()``.

    The chapter pages are generated from the outline, so are their Chinese words: a new section
    or label arrives translated. A translation already in a catalogue (made by hand) is kept;
    a fuzzy one (gettext's guess from a similar message) is replaced.
    Returns the number of messages filled.
    """
    from babel.messages.pofile import read_po, write_po

    sys.path.insert(0, str(DOCS))
    import outline_pages

    table = outline_pages.translations()
    filled = 0
    for path in sorted((messages / "outline").glob("*.po")):
        with path.open("rb") as file:
            catalogue = read_po(file)
        changed = 0
        for message in catalogue:
            # a fuzzy entry is gettext's guess from a similar old message: for generated text
            # the table knows the right words
            guessed = message.fuzzy and message.id in table
            if message.id and (not message.string or guessed) and message.id in table:
                message.string = table[message.id]
                message.flags.discard("fuzzy")
                changed += 1
        if changed:
            with path.open("wb") as file:
                write_po(file, catalogue, width=76)
            filled += changed
    return filled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "build" / "book")
    parser.add_argument("--languages", default=",".join(LANGUAGES),
                        help="comma-separated, from: " + ", ".join(LANGUAGES))
    parser.add_argument("--quick", action="store_true", help="tutorials in quick mode")
    parser.add_argument("--pdf", action=argparse.BooleanOptionalAction, default=None,
                        help="also print each language's book to html/<language>/_downloads/"
                             "duetrl-<language>.pdf with headless Chromium (default: on in a "
                             "full build, off with --quick)")
    parser.add_argument("--jobs", type=int, default=2,
                        help="tutorials executed at once (Sphinx -j of the first language's "
                             "build; default 2, one per core)")
    parser.add_argument("--pdf-only", action="store_true",
                        help="print the PDFs of a site already built at --out, and stop")
    parser.add_argument("--update-catalogues", action="store_true",
                        help="refresh the gettext catalogues (keeps translations) and stop")
    parser.add_argument("--update-cli-catalogue", action="store_true",
                        help="add the CLI's new help strings to docs/locale/zh_CN/cli_help.po "
                             "(keeps translations) and stop")
    parser.add_argument("--only", default="",
                        help="with --update-catalogues: comma-separated docname prefixes "
                             "(e.g. tutorials/,index) whose catalogues to refresh")
    args = parser.parse_args(argv)
    try:
        if args.pdf_only:
            for language in [x for x in args.languages.split(",") if x]:
                print(book_pdf(args.out, language))
            return 0
        if args.update_cli_catalogue:
            print(update_cli_catalogue())
            return 0
        if args.update_catalogues:
            print(update_catalogues(args.out, only=[x for x in args.only.split(",") if x]))
            return 0
        pdf = not args.quick if args.pdf is None else args.pdf
        html = build_book(args.out, [x for x in args.languages.split(",") if x], args.quick,
                          pdf=pdf, jobs=args.jobs)
    except (ValueError, FileNotFoundError, RuntimeError, subprocess.CalledProcessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{html / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
