"""Figures show every series their legend names (core/plots.py), checked on rendered pixels.

Issue 23: a frontier figure named "RLOO, beta = 0.1" in its legend and drew nothing (one point
as a line with no marker), and where torch and tf agreed the tf curve covered the torch one.
Each check renders a small figure and looks for each labelled series' colour in its pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from duetrl.core import figure_language, plots


def colour_pixels(fig, line) -> int:
    """How many pixels of the rendered ``fig`` (legend excluded) have ``line``'s colour."""
    from matplotlib.colors import to_rgb

    for ax in fig.axes:
        if ax.get_legend() is not None:
            ax.get_legend().set_visible(False)
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(float) / 255
    for ax in fig.axes:
        if ax.get_legend() is not None:
            ax.get_legend().set_visible(True)
    return int(np.sum(np.all(np.abs(image - np.asarray(to_rgb(line.get_color()))) < 0.02,
                             axis=-1)))


def broken_figure():
    """Torch and tf equal, and one point drawn as a bare line: what the issue found."""
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(4, 3), dpi=60)
    x = np.arange(20.0)
    ax.plot(x, np.sin(x / 3), label="torch")
    ax.plot(x, np.sin(x / 3) + 1e-6, label="tf")  # equal to plotting precision
    ax.plot(x, np.cos(x / 3), label="alone")
    ax.plot([4.0], [0.5], label="RLOO, beta = 0.1")  # one point, no marker
    ax.legend()
    return fig, ax


def test_a_legend_entry_that_draws_nothing_is_found_and_then_made_visible() -> None:
    fig, ax = broken_figure()
    torch, tf, alone, point = ax.get_lines()
    assert colour_pixels(fig, torch) == 0  # covered by tf
    assert colour_pixels(fig, point) == 0  # a line through one point draws nothing
    found = plots.invisible_series(fig)
    assert len(found) == 2
    assert "tf: hidden under an earlier series" in found[0] and "RLOO" in found[1]

    notes = plots.show_every_series(fig)
    assert plots.invisible_series(fig) == []
    assert len(notes) == 2
    for line in (torch, tf, alone, point):
        assert colour_pixels(fig, line) > 5, line.get_label()
    assert tf.get_label() == "tf (dashed: equal to torch)"
    assert alone.get_linestyle() == "-" and point.get_marker() == "o"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "tf (dashed: equal to torch)" in legend  # the legend was redrawn with the note
    plots.pyplot().close(fig)


def test_save_figure_refuses_a_legend_entry_it_cannot_make_visible(tmp_path: Path,
                                                                  monkeypatch) -> None:
    monkeypatch.setattr(plots, "show_saved_figure", lambda path: None)
    fig, ax = plots.pyplot().subplots()
    ax.plot([0, 1, 2], [1, 2, 3], linestyle="none", label="nothing")
    ax.legend()
    with pytest.raises(ValueError, match="expected every legend entry.*nothing: not drawn"):
        plots.save_figure(fig, tmp_path / "a.png")
    assert not (tmp_path / "a.png").exists()


def test_plot_curves_shows_a_single_point_and_two_equal_backends(tmp_path: Path,
                                                                monkeypatch) -> None:
    monkeypatch.setattr(plots, "show_saved_figure", lambda path: None)
    kept = []
    monkeypatch.setattr(plots.pyplot(), "close", kept.append)  # keep the figure to inspect
    x = np.linspace(0.0, 2.0, 30)
    frontier = (x, 1 - np.exp(-x))
    path = plots.plot_curves({"exact optimum pi*": frontier, "RLOO, beta = 0.1": ([0.7], [0.5]),
                              "torch": (x, x / 2), "tf": (x, x / 2), "empty": ([], [])},
                             tmp_path / "f.png", "KL", "E[r]")
    assert path.exists()
    fig = kept[-1]
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert set(lines) == {"exact optimum pi*", "RLOO, beta = 0.1", "torch",
                          "tf (dashed: equal to torch)", "empty (no data)"}
    for label, line in lines.items():
        if label != "empty (no data)":
            assert colour_pixels(fig, line) > 5, label


def test_many_equal_series_each_get_a_pattern_of_their_own() -> None:
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(4, 3), dpi=100)
    x = np.arange(30.0)
    lines = [ax.plot(x, np.minimum(x, 10.0), label=f"seed {i}")[0] for i in range(5)]
    ax.legend()
    assert len(plots.invisible_series(fig)) == 4
    plots.show_every_series(fig)
    assert plots.invisible_series(fig) == []
    assert len({line._unscaled_dash_pattern for line in lines}) == 5
    assert all(colour_pixels(fig, line) > 5 for line in lines)
    plt.close(fig)


def test_equal_single_points_are_drawn_as_rings_around_each_other() -> None:
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(4, 3), dpi=100)
    first = ax.plot([1.0], [0.0], marker="o", label="LM pretrained")[0]
    second = ax.plot([1.0], [0.0], marker="o", label="LM from random weights")[0]
    ax.legend()
    assert plots.invisible_series(fig) == [
        "LM from random weights: hidden under an earlier series drawn the same way"]
    plots.show_every_series(fig)
    assert plots.invisible_series(fig) == []
    assert colour_pixels(fig, first) > 5 and colour_pixels(fig, second) > 5
    assert second.get_label() == "LM from random weights (ring: equal to LM pretrained)"
    plt.close(fig)


@pytest.mark.parametrize("points", [{"a": 10.0, "b": 11.5, "c": 10.8, "d": 11.2},
                                    {"a": 10.0, "b": 11.5, "d": 11.2, "c": 10.8}],
                         ids=["first-group-first", "second-group-first"])
def test_rings_of_two_groups_that_meet_differ_in_size(points) -> None:
    # a and b are two places (1.5 apart, over the 1.0 that coincides on these axes); c lies on
    # a, d on b, and c and d within 1.0 of each other: each group's first ring would be one size
    # (ch03_1_five_objectives' frontier: two tf points, one hidden under the other); drawn in
    # either order, the later of c and d gets the wider ring
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(4, 3), dpi=100)
    lines = {k: ax.plot([x], [10.0], marker="o", label=k)[0] for k, x in points.items()}
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.legend()
    plots.show_every_series(fig)
    assert plots.invisible_series(fig) == []
    sizes = {k: line.get_markersize() for k, line in lines.items()}
    inner, outer = [k for k in points if k in "cd"]  # in drawing order
    assert sizes["a"] == sizes["b"] < sizes[inner] < sizes[outer], sizes
    plt.close(fig)


# ---- figures in the page's language (issue 23, items 2 and 5) -------------------------------
# With DUETRL_FIGURE_LANGUAGES=zh_CN (the book's build sets it) save_figure also writes the
# figure's Chinese twin, every text translated through a catalogue of figure strings.

REPO = Path(__file__).resolve().parent.parent
SMALL_CATALOGUE = r'''
msgid ""
msgstr ""

msgid "episode return"
msgstr "回合回报"

msgid "seed %(n)s"
msgstr "种子 %(n)s"

msgid "%(series)s (dashed: equal to %(other)s)"
msgstr "%(series)s（虚线：与 %(other)s 相同）"

msgid "torch"
msgstr "torch"

msgid "tf"
msgstr "tf"

msgid "apple"
msgstr "苹果"

msgid "steps"
msgstr "步数"

msgid "95% of runs"
msgstr "95% 的运行"

#, fuzzy
msgid "guessed"
msgstr "猜的"

#~ msgid "gone"
#~ msgstr "走了"
'''


@pytest.fixture
def zh_catalogue(tmp_path: Path, monkeypatch) -> Path:
    path = tmp_path / "figures.po"
    path.write_text(SMALL_CATALOGUE, encoding="utf-8")
    monkeypatch.setenv(figure_language.FIGURE_LANGUAGES, "zh_CN")
    monkeypatch.setenv(figure_language.FIGURE_CATALOGUE, str(path))
    monkeypatch.setattr(plots, "show_saved_figure", lambda path: None)
    return path


def small_figure(title: str = "95% of runs"):
    plt = plots.pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(5, 2.5), dpi=60)
    x = np.arange(10.0)
    left.plot(x, x, label="torch")
    left.plot(x, x, label="tf")
    left.plot(x, 2 * x, label="seed 3")
    left.legend()
    left.set(xlabel="steps", title=title)
    right.bar(["apple", "tf"], [1.0, 2.0])
    right.set_ylabel("episode return")
    return fig


def test_the_catalogue_translates_words_patterns_and_leaves_numbers(zh_catalogue) -> None:
    catalogue = figure_language.FigureCatalogue.load("zh_CN")
    assert catalogue.translate("episode return") == "回合回报"
    assert catalogue.translate("seed 3") == "种子 3"  # a number inside a pattern stays
    assert catalogue.translate("seed torch") == "种子 torch"  # ... a name is itself translated
    assert catalogue.translate("seed apple") == "种子 苹果"
    assert catalogue.translate("tf (dashed: equal to torch)") == "tf（虚线：与 torch 相同）"
    assert catalogue.translate("steps\nepisode return") == "步数\n回合回报"
    assert catalogue.translate("95% of runs") == "95% 的运行"
    for neutral in ("0.5", "−1.0", "$\\pi^*_{0.1}$", "k=3", "10$^{3}$", ""):
        assert catalogue.translate(neutral) == neutral
    for missing in ("seed bananas", "guessed", "gone", "PPO", "steps\nbananas"):
        assert catalogue.translate(missing) is None, missing  # fuzzy, obsolete, unknown


def test_a_translation_must_keep_the_placeholders() -> None:
    with pytest.raises(ValueError, match="seed %\\(n\\)s.*same placeholders"):
        figure_language.FigureCatalogue({"seed %(n)s": "种子"})


def test_save_figure_writes_a_chinese_twin_with_every_text_translated(zh_catalogue,
                                                                     tmp_path: Path,
                                                                     monkeypatch) -> None:
    from matplotlib.text import Text
    from PIL import Image

    kept = []
    monkeypatch.setattr(plots.pyplot(), "close", kept.append)
    english = small_figure()
    english.canvas.draw()
    before = sorted(t.get_text() for t in english.findobj(Text) if t.get_text())
    path = plots.save_figure(small_figure(), tmp_path / "f.png")
    twin = tmp_path / "f.zh_CN.png"
    assert twin.exists()
    with Image.open(path) as image:
        assert (image.text["duetrl-language"], image.text["duetrl-figure"]) == ("en", "f")
    with Image.open(twin) as image:
        assert (image.text["duetrl-language"], image.text["duetrl-figure"]) == ("zh_CN", "f")
    fig = kept[-1]
    fig.canvas.draw()
    after = sorted(t.get_text() for t in fig.findobj(Text) if t.get_text())
    assert len(after) == len(before)  # no text lost
    for expected in ("95% 的运行", "步数", "回合回报", "苹果", "种子 3",
                     "tf（虚线：与 torch 相同）"):
        assert expected in after, (expected, after)
    assert not {"steps", "apple", "seed 3", "episode return"} & set(after)


def test_a_figure_string_with_no_translation_fails_naming_it(zh_catalogue,
                                                            tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"f\.png.*zh_CN translation.*'bananas'.*figures\.po"):
        plots.save_figure(small_figure(title="bananas"), tmp_path / "f.png")
    assert not (tmp_path / "f.zh_CN.png").exists()
    assert (tmp_path / "f.png").exists()  # the English figure stands


def test_without_a_figure_language_no_twin_and_no_catalogue_needed(tmp_path: Path,
                                                                   monkeypatch) -> None:
    monkeypatch.delenv(figure_language.FIGURE_LANGUAGES, raising=False)
    monkeypatch.setenv(figure_language.FIGURE_CATALOGUE, str(tmp_path / "absent.po"))
    monkeypatch.setattr(plots, "show_saved_figure", lambda path: None)
    plots.save_figure(small_figure(title="bananas"), tmp_path / "f.png")
    assert [p.name for p in tmp_path.glob("*.png")] == ["f.png"]


def test_attention_tokens_stay_as_they_are(zh_catalogue, tmp_path: Path, monkeypatch) -> None:
    kept = []
    monkeypatch.setattr(plots.pyplot(), "close", kept.append)
    catalogue = zh_catalogue.read_text(encoding="utf-8") + (
        '\nmsgid "key position"\nmsgstr "键的位置"\n\nmsgid "query position"\nmsgstr "查询位置"\n'
        '\nmsgid "attention weights"\nmsgstr "注意力权重"\n')
    zh_catalogue.write_text(catalogue, encoding="utf-8")
    tokens = ["the", "cat", "sat"]  # words, but data: never translated
    plots.plot_attention_heatmaps({"torch": np.eye(3)}, tmp_path / "a.png", tokens, tokens)
    ax = kept[-1].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == tokens
    assert ax.get_xlabel() == "键的位置" and kept[-1]._suptitle.get_text() == "注意力权重"


def test_a_cjk_font_draws_chinese_glyphs() -> None:
    """Two different characters draw different pixels (a missing glyph draws the same box)."""
    plt = plots.pyplot()
    font = figure_language.cjk_font()
    drawn = []
    for word in ("策", "略"):
        fig = plt.figure(figsize=(1, 1), dpi=50)
        fig.text(0.1, 0.1, word, fontsize=30, family=["DejaVu Sans", font])
        fig.canvas.draw()
        drawn.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
        plt.close(fig)
    assert (drawn[0] < 128).sum() > 20 and (drawn[1] < 128).sum() > 20
    assert np.abs(drawn[0].astype(int) - drawn[1].astype(int)).sum() > 1000


def test_no_cjk_font_is_a_clear_error(monkeypatch) -> None:
    from matplotlib import font_manager

    monkeypatch.setattr(font_manager.fontManager, "ttflist", [])
    monkeypatch.setattr(font_manager, "findSystemFonts", lambda *a, **k: [])
    with pytest.raises(RuntimeError, match="no CJK font.*fonts-wqy-zenhei"):
        figure_language.cjk_font()


# The repository's catalogue: every entry translated, and every figure string the tutorials
# (and the plotting helpers they call) write as a literal has a translation. An f-string is
# checked with each of its fields as a number ("seed {s}" as "seed 0").

FIGURE_PO = REPO / "docs" / "locale" / "zh_CN" / "LC_MESSAGES" / "figures.po"
TEXT_CALLS = {"set_title", "set_xlabel", "set_ylabel", "suptitle", "supxlabel", "supylabel",
              "text", "annotate", "plot_curves", "plot_attention_heatmaps"}
TEXT_KEYWORDS = {"label", "title", "xlabel", "ylabel"}


def figure_literals(path: Path) -> list[str]:
    """String literals (and f-strings, fields as "0") that ``path`` hands to figure texts."""
    import ast

    def text_of(node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.JoinedStr):
            return "".join(v.value if isinstance(v, ast.Constant) else "0" for v in node.values)
        if isinstance(node, ast.IfExp):
            return text_of(node.body)
        return None

    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "attr", getattr(node.func, "id", ""))
        candidates = [k.value for k in node.keywords if k.arg in TEXT_KEYWORDS]
        if name in TEXT_CALLS:
            candidates += [a for a in node.args if text_of(a) is not None]
            if name == "plot_curves" and node.args and isinstance(node.args[0], ast.Dict):
                candidates += node.args[0].keys
        for candidate in candidates:
            text = text_of(candidate) if candidate is not None else None
            if text and not text.endswith(".png"):
                found.append(text)
    return found


def test_every_entry_of_the_figure_catalogue_is_translated() -> None:
    from babel.messages.pofile import read_po

    with FIGURE_PO.open("rb") as file:
        catalogue = read_po(file)
    entries = [m for m in catalogue if m.id]
    assert len(entries) > 100
    untranslated = [m.id for m in entries if not m.string or m.fuzzy]
    assert not untranslated, f"figures.po: no (or a fuzzy) translation for {untranslated}"
    assert figure_language.read_po(FIGURE_PO) == {m.id: m.string for m in entries}  # our reader agrees
    figure_language.FigureCatalogue.load("zh_CN", FIGURE_PO)  # and the placeholders match


def test_every_literal_figure_string_of_the_tutorials_has_a_translation() -> None:
    catalogue = figure_language.FigureCatalogue.load("zh_CN", FIGURE_PO)
    sources = sorted((REPO / "tutorials").glob("*.py")) + [
        path for path in sorted((REPO / "core").rglob("*.py"))  # the plotting helpers
        if "duetrl.core.plots import" in path.read_text(encoding="utf-8")
        or path.name == "plots.py"]
    missing = {f"{path.name}: {text!r}" for path in sources for text in figure_literals(path)
               if catalogue.translate(text) is None}
    assert len(sources) > 20
    assert not missing, "no zh_CN figure translation for:\n" + "\n".join(sorted(missing))


# ---- the book's side: docs/_ext/duetrl_figures.py -------------------------------------------


def book_page(tmp_path: Path, language: str, builder: str = "html"):
    """A page as myst-nb leaves it: a caption with no figure before it (its code not run), two
    figures, each output in English and in Chinese (the PNGs tagged as save_figure tags them),
    a caption after the first; then the extension's transform, as Sphinx runs it on ``language``."""
    import sys
    from types import SimpleNamespace

    from docutils import nodes
    from docutils.frontend import get_default_settings
    from docutils.parsers.rst import Parser
    from docutils.utils import new_document

    sys.path.insert(0, str(REPO / "docs" / "_ext"))
    import duetrl_figures

    plt = plots.pyplot()
    section = nodes.section()
    section += duetrl_figures.pending_caption("", nodes.paragraph("", "Nothing drawn."))
    for name in ("first", "second"):
        for lang in ("en", "zh_CN"):
            fig = plt.figure(figsize=(1, 1), dpi=20)
            fig.savefig(tmp_path / f"{name}.{lang}.png",
                        metadata={"duetrl-language": lang, "duetrl-figure": name})
            plt.close(fig)
            bundle = nodes.container(nb_element="mime_bundle")
            bundle += nodes.container("", nodes.image(uri=f"/{name}.{lang}.png"),
                                      mime_type="image/png")
            section += bundle
        if name == "first":
            section += duetrl_figures.pending_caption(
                "", nodes.paragraph("", "", nodes.Text("What the "),
                                    nodes.emphasis("", "first"), nodes.Text(" shows.")))
    document = new_document("page", get_default_settings(Parser))
    document += section
    env = SimpleNamespace(
        docname="tutorials/page",
        config=SimpleNamespace(language=language),
        duetrl_builder=builder,
        relfn2path=lambda uri, docname: (uri, str(tmp_path / uri.lstrip("/"))))
    document.settings.env = env
    duetrl_figures.FiguresInPageLanguage(document).apply()
    return document


@pytest.mark.parametrize("language, first, second", [
    ("en", "Figure 1: What the first shows.", "Figure 2"),
    ("zh_CN", "图 1：What the first shows.", "图 2")])
def test_the_book_shows_the_page_s_language_and_numbers_and_captions_figures(
        tmp_path: Path, language: str, first: str, second: str) -> None:
    from docutils import nodes

    document = book_page(tmp_path, language)
    figures = list(document.findall(nodes.figure))
    assert len(figures) == 2
    assert [f["ids"] for f in figures] == [["figure-1"], ["figure-2"]]
    shown = [image["uri"] for image in document.findall(nodes.image)]
    assert shown == [f"/first.{language}.png", f"/second.{language}.png"]  # twins dropped
    captions = [f.next_node(nodes.caption).astext() for f in figures]
    assert captions == [first, second]
    assert figures[0].next_node(nodes.emphasis).astext() == "first"  # the caption's markup
    assert "Nothing drawn." not in document.astext()  # a caption with no figure: not on a page


def test_a_caption_with_no_figure_stays_for_the_translators(tmp_path: Path) -> None:
    document = book_page(tmp_path, "en", builder="gettext")
    assert "Nothing drawn." in document.astext()  # extracted into the page's catalogue


# ---- every figure of a tutorial has a caption, translated --------------------------------
# A code cell that saves figures (it calls figure_dir()) is followed by a Markdown cell that
# opens with one ```{figcaption} block per figure; each caption has a Chinese translation in
# the tutorial's catalogue.

CAPTIONS_PENDING: set[str] = set()  # tutorials whose figures are numbered, not yet captioned
FIGURES_PER_CELL = {("ch08_3_why_one_seed_lies", "ch08_3_report"): 4}  # duetrl report's four


def figure_cells_and_captions(path: Path) -> list[tuple[str, int, list[str]]]:
    """``(what the cell saves, how many figures, the captions after it)`` per figure cell."""
    import re

    cells = re.split(r"^# %%(.*)$", path.read_text(encoding="utf-8"), flags=re.M)
    # cells: [preamble, header, body, header, body, ...]
    pairs = list(zip(cells[1::2], cells[2::2]))
    found = []
    for i, (header, body) in enumerate(pairs):
        if "[markdown]" in header or "figure_dir()" not in body:
            continue
        saved = re.findall(r'figure_dir\(\)\s*/\s*"([^"]+)"', body)
        count = sum(FIGURES_PER_CELL.get((path.stem, name.removesuffix(".png")), 1)
                    for name in saved) or 1  # figure_dir() handed to a helper: one figure
        following = pairs[i + 1][1] if i + 1 < len(pairs) else ""
        captions = []
        for block in re.findall(r"^# ```\{figcaption\}\n(.*?)^# ```$", following,
                                flags=re.M | re.S):
            captions.append(" ".join(line.removeprefix("#").strip()
                                     for line in block.splitlines()))
        found.append((", ".join(saved), count, captions))
    return found


def test_every_tutorial_figure_has_a_caption_translated_into_chinese() -> None:
    from babel.messages.pofile import read_po

    problems, figures = [], 0
    for path in sorted((REPO / "tutorials").glob("*.py")):
        if path.stem in CAPTIONS_PENDING:
            continue
        with (REPO / "docs" / "locale" / "zh_CN" / "LC_MESSAGES" / "tutorials"
              / f"{path.stem}.po").open("rb") as file:
            catalogue = read_po(file)
        for saved, count, captions in figure_cells_and_captions(path):
            figures += count
            if len(captions) != count:
                problems.append(f"{path.name} ({saved}): {count} figure(s), "
                                f"{len(captions)} caption(s) in the Markdown cell after it")
            for caption in captions:
                message = catalogue.get(caption)
                if message is None or not message.string or message.fuzzy:
                    problems.append(f"{path.stem}.po: no translation of caption {caption!r}")
    assert figures >= 40
    assert not problems, "\n".join(problems)


def test_an_equation_the_text_refers_to_is_labelled_and_referred_to_by_number() -> None:
    """Prose says "equation {eq}`name`" (a number on the page), never "the equation above";
    each name is the label of a displayed equation of the same tutorial."""
    import re

    problems = []
    for path in sorted((REPO / "tutorials").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        prose = "\n".join(line for line in text.splitlines() if line.startswith("# "))
        for vague in re.findall(r"(?:the )?(?:equation|formula) (?:above|below)|equations? \(\d+\)",
                                prose, flags=re.I):
            problems.append(f"{path.name}: {vague!r}: refer to a labelled equation instead")
        labels = set(re.findall(r"\$\$\s*\((\w[\w-]*)\)\s*$", prose, flags=re.M))
        for name in re.findall(r"\{eq\}`([^`]+)`", prose):
            if name not in labels:
                problems.append(f"{path.name}: {{eq}}`{name}` names no $$ ... $$ ({name})")
    assert not problems, "\n".join(problems)
    attention = (REPO / "tutorials" / "ch02_1_attention_from_equation_to_two_frameworks.py")
    assert "{eq}`attention`" in attention.read_text(encoding="utf-8")


def test_a_caption_names_a_figure_of_the_code_cell_just_before_it(tmp_path: Path) -> None:
    """A cell that shows figures with no caption after it (a sweep's runs) lends none of them
    to the caption of the next cell's figure."""
    import sys
    from types import SimpleNamespace

    from docutils import nodes
    from docutils.frontend import get_default_settings
    from docutils.parsers.rst import Parser
    from docutils.utils import new_document

    sys.path.insert(0, str(REPO / "docs" / "_ext"))
    import duetrl_figures

    plt = plots.pyplot()
    document = new_document("page", get_default_settings(Parser))
    for cell, names in enumerate((["run-1", "run-2"], ["spread"])):
        code = nodes.container(nb_element="cell_code")
        for name in names:
            fig = plt.figure(figsize=(1, 1), dpi=20)
            fig.savefig(tmp_path / f"{name}.png",
                        metadata={"duetrl-language": "en", "duetrl-figure": name})
            plt.close(fig)
            code += nodes.container("", nodes.image(uri=f"/{name}.png"),
                                    nb_element="mime_bundle")
        document += code
        if cell == 1:
            document += duetrl_figures.pending_caption("", nodes.paragraph("", "The spread."))
    document.settings.env = SimpleNamespace(
        docname="tutorials/page", config=SimpleNamespace(language="en"), duetrl_builder="html",
        relfn2path=lambda uri, docname: (uri, str(tmp_path / uri.lstrip("/"))))
    duetrl_figures.FiguresInPageLanguage(document).apply()
    captions = [(f.next_node(nodes.image)["uri"], f.next_node(nodes.caption).astext())
                for f in document.findall(nodes.figure)]
    assert captions == [("/run-1.png", "Figure 1"), ("/run-2.png", "Figure 2"),
                        ("/spread.png", "Figure 3: The spread.")]


def test_figures_saved_inside_figures_not_shown_are_written_not_shown(tmp_path: Path,
                                                                       monkeypatch) -> None:
    shown = []
    monkeypatch.setattr(plots, "show_saved_figure", shown.append)
    with plots.figures_not_shown():
        plots.save_figure(small_figure(), tmp_path / "run.png")
    plots.save_figure(small_figure(), tmp_path / "page.png")
    assert (tmp_path / "run.png").exists() and shown == [tmp_path / "page.png"]
