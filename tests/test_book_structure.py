"""The book's structure (docs/outline.py) and build helpers (docs/build.py, docs/conf.py).

Cheap checks, no Sphinx build: the outline has the 9 chapters with the outline's Chinese titles,
tutorials join their section by name, every command and module is placed or listed, empty
sections say so, and the Chinese title translations cover every generated title.
"""

from __future__ import annotations

import importlib.util
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


def test_empty_section_says_not_built_yet_and_full_one_lists_its_pieces(outline) -> None:
    chapter = outline.CHAPTERS[3]  # 4: 4.1 has modules, 4.2 a tutorial
    text = outline.chapter_page(chapter, {"4.2": ["ch04_2_x"]}, {"4.2": ["solve"]},
                                {"4.1": ["core.reference.gpt"]}, set(), True)
    assert "/tutorials/ch04_2_x" in text
    assert "{doc}`duetrl solve </generated/cli/solve>`" in text
    assert "{doc}`core.reference.gpt </generated/api/core.reference.gpt>`" in text
    assert "Not built yet" not in text
    empty = outline.chapter_page(outline.CHAPTERS[5], {}, {}, {}, set(), True)
    assert empty.count("*Not built yet.*") == 3  # 6.1, 6.2, 6.3
    unlinked = outline.chapter_page(chapter, {}, {"4.2": ["solve"]}, {}, set(), False)
    assert "`duetrl solve`" in unlinked and "{doc}" not in unlinked


def test_every_generated_title_has_its_chinese_translation(outline) -> None:
    table = outline.translations()
    for chapter in outline.CHAPTERS:
        text = outline.chapter_page(chapter, {}, {}, {}, set(), True)
        for line in text.splitlines():
            if line.startswith(("# ", "## ", "- ")):
                title = line.split(" ", 1)[1]
                assert title in table, title
                number = title.split(" ", 1)[0]
                assert table[title].startswith(f"{number} ")  # Chinese first, same number
    assert table["4.2 The mathematics of reinforcement learning · 强化学习的数学原理"] == (
        "4.2 强化学习的数学原理 · The mathematics of reinforcement learning")


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


def test_code_hash_changes_with_the_code(build, tmp_path: Path) -> None:
    for folder in ("core", "backends"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "a.py").write_text("x = 1\n")
    before = build.code_hash(tmp_path)
    assert build.code_hash(tmp_path) == before
    (tmp_path / "backends" / "a.py").write_text("x = 2\n")
    assert build.code_hash(tmp_path) != before


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
