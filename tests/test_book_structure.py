"""The book's structure (docs/outline.py) and build helpers (docs/build.py, docs/conf.py).

Cheap checks, no Sphinx build: the outline has the 9 chapters with the outline's Chinese titles,
tutorials join their section by name, every command and module is placed or listed, a
section's status comes from what the files hold (no "not built yet" where a page covers it),
the contents page lists every section with its status, and the Chinese translations cover
every generated title and phrase.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
SEED = Path("/work/shared/seed")


def _load(name: str):
    sys.path.insert(0, str(DOCS))
    spec = importlib.util.spec_from_file_location(f"duetrl_docs_{name}", DOCS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def outline():
    return _load("outline")


@pytest.fixture(scope="module")
def pages():
    return _load("outline_pages")


@pytest.fixture(scope="module")
def build():
    return _load("build")


def test_outline_has_nine_chapters_numbered_in_order(outline) -> None:
    assert [c.number for c in outline.CHAPTERS] == list(range(1, 10))
    for chapter in outline.CHAPTERS:
        numbers = [s.number for s in chapter.sections]
        assert numbers == [f"{chapter.number}.{i}" for i in range(1, len(numbers) + 1)]
    assert outline.CHAPTERS[3].sections[1].title_zh == "强化学习的数学原理"


@pytest.mark.skipif(not SEED.exists(), reason="the outline's seed text is not on this machine")
def test_chinese_titles_are_the_outlines_own(outline) -> None:
    text = next(SEED.glob("*.txt")).read_text(encoding="utf-8")
    for chapter in outline.CHAPTERS:
        assert f"## {chapter.number}. {chapter.title_zh}" in text
        for section in chapter.sections:
            assert f"### {section.number} {section.title_zh}" in text
            for i, (zh, _) in enumerate(section.subsections, start=1):
                assert f"#### {section.number}.{i} {zh}" in text


def test_tutorials_join_their_section_by_name(outline, tmp_path: Path) -> None:
    for name in ("ch04_2_bellman.py", "ch10_12_later.py", "ch01_2_a.py", "notes.py",
                 "ch4_2_bad.py"):
        (tmp_path / name).write_text("")
    found = outline.tutorials_by_section(tmp_path)
    assert found == {"4.2": ["ch04_2_bellman"], "10.12": ["ch10_12_later"], "1.2": ["ch01_2_a"]}


def test_place_gives_each_name_to_the_first_matching_section(outline) -> None:
    placed = outline.place(["core.rl.dqn", "core.rl.train", "core.other"],
                           {"5.2": ("core.rl.train",), "9.2": ("core.rl.*",)})
    assert placed == {"5.2": ["core.rl.train"], "9.2": ["core.rl.dqn"], "": ["core.other"]}


def test_every_real_module_and_command_is_placed(outline) -> None:
    sections = [s for c in outline.CHAPTERS for s in c.sections]
    modules = outline.place(outline.api_modules(), {s.number: s.modules for s in sections})
    commands = outline.place(outline.cli_commands(), {s.number: s.commands for s in sections})
    assert "core.rl.session" in modules["5.2"]
    assert "backends.attention" in modules["5.1"]
    assert "solve" in commands["4.2"]
    # not a failure of the build (the index lists them), but the outline should claim them
    assert modules[""] == [] and commands[""] == [], (
        f"place these in a Section of docs/outline.py: {modules[''] + commands['']}")


def test_empty_section_says_not_built_yet_and_full_one_lists_its_pieces(outline, pages) -> None:
    chapter = outline.CHAPTERS[3]  # 4: 4.1 has modules, 4.2 a tutorial
    cover = {"4.1": outline.Coverage(modules=["core.reference.gpt"]),
             "4.2": outline.Coverage(tutorials=["ch04_2_x"], commands=["solve"])}
    text = pages.chapter_page(chapter, cover, [], True)
    assert "/tutorials/ch04_2_x" in text
    assert "{doc}`duetrl solve </generated/cli/solve>`" in text
    assert "{doc}`core.reference.gpt </generated/api/core.reference.gpt>`" in text
    assert "not built yet" not in text
    assert "*Status: commands and API pages only; no text yet.*" in text  # 4.1
    assert "*Status: a runnable tutorial.*" in text  # 4.2
    empty = pages.chapter_page(outline.CHAPTERS[5], {}, [], True)
    assert empty.count("*Status: not built yet.*") == 3  # 6.1, 6.2, 6.3
    unlinked = pages.chapter_page(chapter, cover, [], False)
    assert "`duetrl solve`" in unlinked and "{doc}`duetrl" not in unlinked


def test_tutorial_openings_name_the_sections_they_cover(outline) -> None:
    named = outline.sections_named
    assert named("# Attention\n\nOutline sections 2.1.1 (the Transformer), 4.1.1-4.1.2 (their\n"
                 "maths) and listing 5.1 (multi-head attention). Chapter 3.1 and 0.5 are not "
                 "it.\n\nLater 6.1 is not either.") == {"2.1", "4.1", "5.1"}
    assert named("# Three families of RL (outline 1.2.3)\n\nDeep RL 3.2 ...") == {"1.2"}
    assert named("# Why one seed lies (outline 8.3.3: stable algorithms)") == {"8.3"}
    assert named("# REINFORCE\n\nOutline listing 5.2 is REINFORCE. E[r] 0.697 at 9.9.") == {"5.2"}
    assert named("# Attention\n\nThe 4.2 tutorial showed it.") == set()  # no "outline"
    assert outline.sections_headed("# 1 Background\n\n## 1.1 LMs\n### 1.3.2 x\n"
                                   "```python\n# 4.2 a comment\n```\n## 12.1 not one") == {
        "1.1", "1.3"}


def test_status_comes_from_what_the_files_hold(outline, tmp_path: Path) -> None:
    tutorials, docs = tmp_path / "tutorials", tmp_path / "docs"
    (docs / "chapters").mkdir(parents=True)
    tutorials.mkdir()
    (tutorials / "ch02_1_attention.py").write_text(
        "# %% [markdown]\n# # Attention\n#\n# Outline 2.1.2 and listing 5.1. More.\n")
    (docs / "chapters" / "ch01_background.md").write_text("# 1 x\n\n## 1.1 LMs\n\n### 1.3.1 y\n")
    (docs / "chapters" / "ch03_2_lm_agents.md").write_text("# 3.2 Agents\n")  # placed in 3.2
    cover = outline.coverage(docs, tutorials, commands={"6.1": ["dialogue"]},
                             modules={"4.1": ["core.reference.gpt"]})
    assert set(cover) == {s.number for c in outline.CHAPTERS for s in c.sections}
    assert cover["2.1"].tutorials == ["ch02_1_attention"] and cover["2.1"].status == "tutorial"
    assert cover["5.1"].also_tutorials == ["ch02_1_attention"]
    assert cover["5.1"].status == "tutorial"
    assert cover["1.1"].also_pages == ["chapters/ch01_background"]
    assert cover["1.1"].status == "text"
    assert cover["1.3"].status == "text" and cover["1.2"].status == "empty"
    assert cover["3.2"].pages == ["chapters/ch03_2_lm_agents"] and cover["3.2"].also_pages == []
    assert cover["6.1"].status == "reference" and cover["4.1"].status == "reference"
    assert cover["8.1"].status == "empty"


def test_the_real_book_has_no_false_not_built_yet(outline, pages) -> None:
    cover = outline.coverage(DOCS)
    # the sections issue 23 found labelled "not built yet" although chapter pages cover them
    for number in ("1.1", "1.3", "7.1", "8.1", "8.2"):
        assert cover[number].status in ("text", "tutorial"), number
    assert "ch02_1_attention_from_equation_to_two_frameworks" in cover["5.1"].also_tutorials
    headed = {n for p in DOCS.glob("chapters/*.md")
              for n in outline.sections_headed(p.read_text(encoding="utf-8"))}
    for number, has in cover.items():  # "text" or better wherever a page or tutorial covers it
        if number in headed or has.tutorials or has.also_tutorials:
            assert has.status in ("tutorial", "text"), number
    contents = pages.contents_page(cover)
    rows = [line for line in contents.splitlines() if line.startswith("| [")]
    numbers = [s.number for c in outline.CHAPTERS for s in c.sections]
    assert [row.split("[", 1)[1].split(" ", 1)[0] for row in rows] == numbers  # all, in order
    for row, number in zip(rows, numbers):
        assert pages.STATUS_WORD[cover[number].status][0] in row
        assert f"](ch{int(number.split('.')[0]):02d}.md)" in row


def test_every_generated_title_and_phrase_has_its_chinese(outline, pages) -> None:
    table = pages.translations()
    cover = outline.coverage(DOCS)
    texts = [pages.chapter_page(c, cover, [], True) for c in outline.CHAPTERS]
    texts += [pages.chapter_page(c, {}, [], True) for c in outline.CHAPTERS]
    texts.append(pages.contents_page(cover))
    for text in texts:
        for line in text.splitlines():
            if line.startswith(("# ", "## ", "- ")):
                title = line.split(" ", 1)[1]
                assert title in table, title
                number = title.split(" ", 1)[0]
                if number[0].isdigit():
                    assert table[title].startswith(f"{number} ")  # Chinese first, same number
            elif line.startswith("| [") or (line.startswith("| ") and "---" not in line):
                cells = [c.strip() for c in line.strip("|").split("|")]
                for cell in cells[:2] if line.startswith("| [") else cells:
                    assert cell in table, cell  # a row's title and status; the header
            elif line.startswith("*") or line == pages.LABELS["legend"]:
                assert line in table, line
    assert table["4.2 The mathematics of reinforcement learning · 强化学习的数学原理"] == (
        "4.2 强化学习的数学原理 · The mathematics of reinforcement learning")


def test_chinese_catalogues_translate_the_contents_page_and_every_status(pages) -> None:
    from babel.messages.pofile import read_po

    messages = DOCS / "locale" / "zh_CN" / "LC_MESSAGES" / "outline"
    with (messages / "contents.po").open("rb") as file:
        catalogue = {m.id: m.string for m in read_po(file) if m.id}
    for english, chinese in pages.STATUS_WORD.values():
        if english in catalogue:  # a status no section has today is not on the page
            assert catalogue[english] == chinese, english
    assert catalogue[pages.LABELS["legend"]] == pages.LABELS_ZH["legend"]
    untranslated = [m for m, s in catalogue.items()
                    if not s and not m.isdigit() and not m.startswith("{doc}")]
    assert untranslated == []
    for number in range(1, 10):
        with (messages / f"ch{number:02d}.po").open("rb") as file:
            entries = [m for m in read_po(file) if m.id]
        assert any(m.string.startswith("*状态：") for m in entries), number
        # Sphinx skips a fuzzy entry: the page would show its English
        assert [m.id for m in entries if m.fuzzy] == [], number


def test_leading_list_markers_are_escaped_and_nothing_else() -> None:
    conf = _load("conf")
    escape = conf.escape_leading_list_marker
    assert escape("1. 两状态") == "1\\. 两状态"
    assert escape("12) x") == "12\\) x"
    assert escape("- x") == "\\- x"
    assert escape("* x") == "\\* x"
    assert escape("+ x") == "\\+ x"
    for unchanged in ("1.5 is a number", "4.2 强化学习", "-1 is negative", "*emphasis*",
                      "a 1. b", "1.x"):
        assert escape(unchanged) == unchanged


def test_language_links_point_to_the_same_page_in_the_other_language(monkeypatch) -> None:
    conf = _load("conf")
    monkeypatch.delenv("DUETRL_BOOK_LANGUAGES", raising=False)

    class App:
        class config:
            language = "zh_CN"

    context: dict = {}
    conf._other_language_links(App, "tutorials/ch04_2_x", "page.html", context, None)
    assert context["duetrl_languages"] == [("en", "English", "../../en/tutorials/ch04_2_x.html")]
    App.config.language = "en"
    conf._other_language_links(App, "index", "page.html", context, None)
    assert context["duetrl_languages"] == [("zh_CN", "中文", "../zh_CN/index.html")]
    monkeypatch.setenv("DUETRL_BOOK_LANGUAGES", "en")  # an English-only build: no dead link
    conf._other_language_links(App, "index", "page.html", context, None)
    assert context["duetrl_languages"] == []


def test_front_page_goes_to_a_built_language(build) -> None:
    both = build.language_chooser(["en", "zh_CN"])
    assert 'chinese ? "zh_CN/index.html" : "en/index.html"' in both
    assert 'url=en/index.html' in both and 'href="zh_CN/index.html"' in both
    english = build.language_chooser(["en"])
    assert "zh_CN" not in english
    chinese = build.language_chooser(["zh_CN"])
    assert "en/index.html" not in chinese


def test_external_assets_are_found(build, tmp_path: Path) -> None:
    (tmp_path / "a.html").write_text('<script src="_static/mathjax/tex-chtml.js"></script>')
    (tmp_path / "b.html").write_text('<a href="https://example.org">a link is fine</a>')
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.html").write_text(
        '<script defer src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"></script>')
    (tmp_path / "d.html").write_text('<link rel="stylesheet" href="//fonts.example/x.css">')
    assert build.external_assets(tmp_path) == ["d.html", "sub/c.html"]


def test_build_book_rejects_unknown_languages(build, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="languages: expected some of en, zh_CN, got"):
        build.build_book(tmp_path, ["fr"], quick=True)
    with pytest.raises(ValueError, match="languages"):
        build.build_book(tmp_path, [], quick=True)


@pytest.mark.parametrize("jobs", [0, -1, 1.5, True])
def test_build_book_rejects_a_bad_jobs_count_before_building(build, tmp_path: Path,
                                                             jobs) -> None:
    with pytest.raises(ValueError, match=r"jobs: expected a whole number >= 1, got"):
        build.build_book(tmp_path, ["en"], quick=True, jobs=jobs)
    assert not (tmp_path / "html").exists()


def test_code_hash_changes_with_the_code(build, tmp_path: Path) -> None:
    for folder in ("core", "backends"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "a.py").write_text("x = 1\n")
    catalogue = tmp_path / "docs/locale/zh_CN/LC_MESSAGES/figures.po"
    catalogue.parent.mkdir(parents=True)
    catalogue.write_text('msgid "reward"\nmsgstr "奖励"\n', encoding="utf-8")
    before = build.code_hash(tmp_path)
    assert build.code_hash(tmp_path) == before
    (tmp_path / "backends" / "a.py").write_text("x = 2\n")
    after_code = build.code_hash(tmp_path)
    assert after_code != before
    # a corrected figure translation re-executes the tutorials (their Chinese twins change)
    catalogue.write_text('msgid "reward"\nmsgstr "回报"\n', encoding="utf-8")
    assert build.code_hash(tmp_path) != after_code


def test_save_figure_hands_the_saved_file_to_the_notebook_display(monkeypatch, tmp_path) -> None:
    from duetrl.core import plots

    handed = []
    monkeypatch.setattr(plots, "show_saved_figure", handed.append)
    path = plots.save_figure(plots.pyplot().figure(), tmp_path / "a.png")
    assert path.exists() and handed == [path]  # saved first, then shown


def test_saved_figures_are_shown_only_inside_a_notebook_kernel(monkeypatch, tmp_path) -> None:
    import types

    from duetrl.core import tutorial

    shown = []
    display_module = types.ModuleType("IPython.display")
    display_module.Image = lambda filename: ("image", filename)
    display_module.display = shown.append
    ipython = types.ModuleType("IPython")
    ipython.display = display_module
    shell = types.SimpleNamespace()  # a terminal IPython: no kernel
    ipython.get_ipython = lambda: shell
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", display_module)

    tutorial.show_saved_figure(tmp_path / "a.png")
    assert shown == [] and not tutorial.in_notebook_kernel()
    shell.kernel = object()  # now inside a Jupyter kernel (a notebook, or the book's build)
    tutorial.show_saved_figure(tmp_path / "b.png")
    assert shown == [("image", str(tmp_path / "b.png"))] and tutorial.in_notebook_kernel()
    ipython.get_ipython = lambda: None  # IPython imported, no shell running
    assert not tutorial.in_notebook_kernel()
    monkeypatch.delitem(sys.modules, "IPython")  # a plain script: IPython never imported
    assert not tutorial.in_notebook_kernel()


FAKE_NPM = """#!/bin/sh
# a stand-in for `npm install --prefix DIR mathjax@V`: lays out MathJax's es5 parts, slowly
prefix="$3"; es5="$prefix/node_modules/mathjax/es5"
mkdir -p "$es5/output/chtml/fonts" "$es5/input/tex/extensions" "$es5/ui" "$es5/a11y"
sleep 0.2
echo js > "$es5/tex-chtml.js"; echo font > "$es5/output/chtml/fonts/f.woff"
echo ext > "$es5/input/tex/extensions/x.js"; echo ui > "$es5/ui/menu.js"
echo a11y > "$es5/a11y/sre.js"; echo license > "$prefix/node_modules/mathjax/LICENSE"
"""


def test_mathjax_static_is_safe_for_concurrent_callers(tmp_path, monkeypatch):
    """Builds at once (two xdist workers) each install MathJax: none fails, and none goes on
    with a folder another is still filling (copied in place, ``tex-chtml.js`` came first, so a
    second caller took a half-copied folder for an installed one)."""
    import shutil
    import time
    from concurrent.futures import ThreadPoolExecutor

    build = _load("build")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    npm.write_text(FAKE_NPM)
    npm.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    copytree = shutil.copytree

    def slow_copytree(*args, **kwargs):  # the fonts take a while: the window of the race
        time.sleep(0.3)
        return copytree(*args, **kwargs)

    monkeypatch.setattr(shutil, "copytree", slow_copytree)
    cache = tmp_path / "cache"
    (cache / "static" / "mathjax").mkdir(parents=True)  # a copy cut short before: redone
    mathjax = cache / "static" / "mathjax"

    def install(delay: float) -> list[str]:
        time.sleep(delay)
        assert build.mathjax_static(cache) == cache / "static"
        return sorted(p.relative_to(mathjax).as_posix()
                      for p in mathjax.rglob("*") if p.is_file())  # what this caller sees

    with ThreadPoolExecutor(4) as pool:
        seen = list(pool.map(install, [0.0, 0.4, 0.6, 0.8]))
    whole = ["LICENSE", "a11y/sre.js", "input/tex/extensions/x.js",
             "output/chtml/fonts/f.woff", "tex-chtml.js", "ui/menu.js"]
    assert seen == [whole] * 4
    assert [p.name for p in (cache / "static").iterdir()] == ["mathjax"]  # no scratch left
    monkeypatch.setenv("PATH", "/nonexistent")
    assert build.mathjax_static(cache) == cache / "static"  # installed: npm not needed again


def test_tutorial_seconds_come_from_the_execution_cache_and_need_every_tutorial(
        build, tmp_path: Path) -> None:
    import json
    import sqlite3

    tutorials = sorted(path.stem for path in (DOCS / "tutorials").glob("*.py"))
    cache = tmp_path / "cache"
    cache.mkdir()
    assert build.tutorial_seconds(cache) == {}  # no cache yet
    with sqlite3.connect(cache / "global.db") as connection:
        connection.execute("create table nbcache (uri text, data text)")
        connection.executemany("insert into nbcache values (?, ?)", [
            (str(DOCS / "tutorials" / f"{stem}.py"), json.dumps({"execution_seconds": i + 0.04}))
            for i, stem in enumerate(tutorials[1:])] + [
            (str(DOCS / "index.md"), json.dumps({"execution_seconds": 99.0}))])  # not a tutorial
    out = tmp_path / "seconds.json"
    assert build.record_tutorial_seconds(cache, out) is None and not out.exists()  # one missing
    with sqlite3.connect(cache / "global.db") as connection:
        connection.execute("insert into nbcache values (?, ?)", (
            str(DOCS / "tutorials" / f"{tutorials[0]}.py"), json.dumps({"execution_seconds": 500})))
    assert build.record_tutorial_seconds(cache, out) == out
    recorded = json.loads(out.read_text())
    assert list(recorded)[0] == tutorials[0] and recorded[tutorials[0]] == 500.0  # slowest first
    assert recorded[tutorials[1]] == 0.0 and set(recorded) == set(tutorials)


def test_parallel_read_starts_each_tutorial_alone_and_the_slowest_first(tmp_path: Path) -> None:
    """The chunks go through Sphinx's own ``ParallelTasks`` (2 worker processes, as in the
    book build): the order in which it starts them must be the slowest tutorial first, each
    tutorial alone, whatever order Sphinx takes waiting tasks in."""
    import json
    import time

    conf = _load("conf")
    conf._schedule_tutorials()
    conf._schedule_tutorials()  # idempotent: wraps Sphinx's own function once
    import sphinx.builders
    from sphinx.util.parallel import ParallelTasks

    seconds = json.loads((DOCS / "tutorial_seconds.json").read_text())
    by_time = sorted(seconds, key=seconds.get, reverse=True)
    chosen = by_time[:2] + by_time[-3:]  # the two slowest and the three fastest
    names = ["index", *[f"tutorials/{stem}" for stem in sorted(chosen)], "tutorials/ch99_new",
             *[f"outline/page{i}" for i in range(40)]]
    chunks = sphinx.builders.make_chunks(names, 2)
    assert sorted(name for chunk in chunks for name in chunk) == sorted(names)

    log = tmp_path / "started"

    def start(chunk: list[str]) -> None:
        with open(log, "a") as file:
            file.write(chunk[0] + "\n")
        time.sleep(0.05)

    tasks = ParallelTasks(2)
    for chunk in chunks:
        tasks.add_task(start, chunk)
    tasks.join()
    started = [name.split("/", 1)[1] for name in log.read_text().split()
               if name.startswith("tutorials/")]
    # a tutorial with no recorded time counts as the slowest; then by the recorded times (a
    # tie by name: two tutorials of one build took 171.1 s each)
    assert started == ["ch99_new", *sorted(chosen, key=lambda s: (-seconds[s], s))], started
    assert all(len(chunk) == 1 for chunk in chunks if chunk[0].startswith("tutorials/"))


def test_build_book_overlaps_the_languages_and_their_pdfs(build, tmp_path: Path,
                                                          monkeypatch) -> None:
    """The Chinese build starts once the English one has read every page (its environment
    pickled), while the English one still writes: built one after the other, the English
    build below would wait in vain for the Chinese one. Each PDF prints after its own
    language's build; a failed print or build fails the book, after the builds."""
    import threading

    sys.path.insert(0, str(DOCS / "_ext"))
    import duetrl_pdf

    events, chinese_started = [], threading.Event()

    def sphinx(builder, language, out, doctrees, env, parallel=()):
        events.append(f"start {language}")
        if language == "en":
            doctrees.mkdir(parents=True, exist_ok=True)
            (doctrees / "environment.pickle").write_bytes(b"read")  # every page read
            assert chinese_started.wait(10), "the Chinese build waited for the English one"
        else:
            chinese_started.set()
            if failing == "build":
                raise RuntimeError("sphinx-build (html, zh_CN) failed")
        out.mkdir(parents=True)
        events.append(f"built {language}")

    def book_pdf(out, language):
        events.append(f"pdf {language}")
        if failing == "pdf" and language == "zh_CN":
            raise RuntimeError("zh_CN: MathJax could not typeset the book")

    monkeypatch.setattr(duetrl_pdf, "chromium_missing", lambda: [])
    monkeypatch.setattr(build, "build_environment", lambda quick, figures: {})
    monkeypatch.setattr(build, "sphinx", sphinx)
    monkeypatch.setattr(build, "book_pdf", book_pdf)
    old = tmp_path / "a" / "doctrees" / "en" / "environment.pickle"  # a previous build's
    old.parent.mkdir(parents=True)
    old.write_bytes(b"old")
    os.utime(old, (0, 0))
    failing = None
    build.build_book(tmp_path / "a", ["en", "zh_CN"], quick=True, pdf=True)
    assert events.index("start zh_CN") < events.index("built en") < events.index("pdf en")
    assert events.index("built zh_CN") < events.index("pdf zh_CN")
    for failing, message in (("pdf", "MathJax"), ("build", "sphinx-build")):
        events.clear()
        chinese_started.clear()
        with pytest.raises(RuntimeError, match=message):
            build.build_book(tmp_path / failing, ["en", "zh_CN"], quick=True, pdf=True)
        assert "built en" in events and "pdf en" in events


def test_wait_until_read_needs_a_new_environment_or_the_end(build, tmp_path: Path) -> None:
    """The pickle a build found when it started does not count, a rewritten one does (at once,
    whatever the clock says); a build that ends without one (nothing out of date) lets the next
    start; one that failed raises."""
    import time
    from concurrent.futures import Future

    pickle = tmp_path / "environment.pickle"
    assert build.environment_stamp(tmp_path) is None
    pickle.write_bytes(b"old")
    os.utime(pickle, ns=(10**18, 10**18))  # a stamp in the future: no clock comparison
    running, before = Future(), build.environment_stamp(tmp_path)
    waiter = threading_result(lambda: build.wait_until_read(tmp_path, before, running, 0.01))
    time.sleep(0.1)
    assert not waiter.done()  # the pickle the build found is not this build's
    pickle.write_bytes(b"new")
    assert waiter.result(5) is None
    done = Future()
    done.set_result(None)
    build.wait_until_read(tmp_path / "none", None, done, 0.01)
    failed = Future()
    failed.set_exception(RuntimeError("sphinx-build (html, en) failed"))
    with pytest.raises(RuntimeError, match="sphinx-build"):
        build.wait_until_read(tmp_path / "none", None, failed, 0.01)


def threading_result(function):
    """``function()`` running in a thread, as a Future."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(function)
    pool.shutdown(wait=False)
    return future


def test_execution_cache_makes_its_database_before_any_worker(build, tmp_path: Path) -> None:
    """The jupyter cache's database exists before Sphinx starts: two workers of ``-j 2`` that
    both found none would create it at once, and one fails ("table settings already exists");
    a folder of older code of the same mode goes, the other mode's stays."""
    (tmp_path / "jupyter-full-0000").mkdir(parents=True)
    (tmp_path / "jupyter-quick-0000").mkdir()
    folder = build.execution_cache(False, tmp_path)
    assert folder.name == f"jupyter-full-{build.code_hash()}"
    assert (folder / "global.db").is_file()
    assert not (tmp_path / "jupyter-full-0000").exists()
    assert (tmp_path / "jupyter-quick-0000").exists()
