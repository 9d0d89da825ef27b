"""Figures: attention heat maps and learning curves (matplotlib, saved as PNG, no screen).

Every figure goes through :func:`save_figure`, which first makes every series its legend
names visible (:func:`show_every_series`): a single point gets a marker (a line through one
point draws nothing), and a series that lies on an earlier one (torch and tf agreeing) is drawn
dashed, its legend entry saying so. A legend entry that still draws nothing is an error.
"""

from __future__ import annotations

import ast
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from duetrl.core.tutorial import show_saved_figure


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (no screen needed)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: works on a machine with no screen
    import matplotlib.pyplot as plt

    return plt


COINCIDE = 0.01  # two series "coincide" where they differ by under 1% of the axis' span
NO_MARKER = ("None", "none", "", " ", None)
DASH = 4.0  # points (times the line width): one dash of a series that lies on others


def _points(line) -> tuple[np.ndarray, np.ndarray]:
    """A line's finite (x, y) points as float arrays (NaN gaps dropped)."""
    x = np.asarray(line.get_xdata(), dtype=float).ravel()
    y = np.asarray(line.get_ydata(), dtype=float).ravel()
    if x.shape != y.shape:
        return np.empty(0), np.empty(0)
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def _overlap(line, other, ax) -> float:
    """The share of ``line``'s points that lie on ``other`` (within COINCIDE of the spans).

    Same x: point by point. Other x (two runs whose episodes end at different steps): ``other``
    read between its points, where its x rises; a point outside its x range is not on it.
    """
    x, y = _points(line)
    ox, oy = _points(other)
    if len(x) == 0 or len(ox) == 0 or line.get_transform() != other.get_transform():
        return 0.0
    x_span = np.ptp(ax.get_xlim()) or 1.0
    y_span = np.ptp(ax.get_ylim()) or 1.0
    if x.shape == ox.shape and np.all(np.abs(x - ox) <= COINCIDE * x_span):
        return float(np.mean(np.abs(y - oy) <= COINCIDE * y_span))
    if len(ox) < 2 or np.any(np.diff(ox) < 0):
        return 0.0
    inside = (x >= ox[0]) & (x <= ox[-1])
    on = inside & (np.abs(y - np.interp(x, ox, oy)) <= COINCIDE * y_span)
    return float(np.mean(on))


def _style(line) -> tuple:
    """What tells two lines apart on the page, colour aside: style, dash pattern, marker."""
    return (line.get_linestyle(), getattr(line, "_unscaled_dash_pattern", None),
            line.get_marker(), line.get_markersize(), line.get_markerfacecolor() == "none")


def _kind(line) -> tuple[bool, bool]:
    """(more than one point, marked): only series of one kind can hide each other."""
    return len(_points(line)[0]) > 1, line.get_marker() not in NO_MARKER


def _labelled(line) -> bool:
    return not str(line.get_label()).startswith("_")  # matplotlib's mark of "no legend entry"


def show_every_series(fig) -> list[str]:
    """Make every labelled line of ``fig`` visible; returns what was changed, one note each.

    - a series of one point gets a marker (as a bare line it draws nothing);
    - series lying on an earlier one (on at least half their points) are drawn dashed, the
      dashes of the n series on one place interleaved (each its own slot of n, the first,
      solid, showing in the last), their markers as ever larger rings, and their legend
      entry names the one they cover;
    - a series with no finite point says "(no data)" in the legend.
    """
    notes: list[str] = []
    for ax in fig.axes:
        before = len(notes)
        groups: dict[object, list] = {}  # the first series of each place -> all on it
        for line in ax.get_lines():
            if not _labelled(line):
                continue
            label = str(line.get_label())
            x, _ = _points(line)
            if len(x) == 0:
                line.set_label(f"{label} (no data)")
                notes.append(f"{label}: no data")
                continue
            if len(x) == 1 and line.get_marker() in NO_MARKER:
                line.set_marker("o")
                notes.append(f"{label}: one point, drawn with a marker")
            # a marked point stays visible on a plain curve: only like covers like
            first = next((first for first in groups if _kind(first) == _kind(line) and
                          _overlap(line, first, ax) >= 0.5), None)
            groups.setdefault(line if first is None else first, []).append(line)
        for first, members in groups.items():
            n, dash = len(members), DASH
            for j, line in enumerate(members[1:], start=1):
                if len(_points(line)[0]) > 1:
                    line.set_linestyle((((n - j + 1) % n) * dash, (dash, (n - 1) * dash)))
                if line.get_marker() not in NO_MARKER:  # a ring around the markers it covers
                    line.set_markerfacecolor("none")
                    line.set_markersize(line.get_markersize() + 4.0 * j)
                whole = _overlap(line, first, ax) == 1.0
                drawn = "dashed" if len(_points(line)[0]) > 1 else "ring"
                line.set_label(f"{line.get_label()} ({drawn}: "
                               f"{'equal to' if whole else 'mostly on'} {first.get_label()})")
                notes.append(f"{line.get_label()}: drawn {drawn}")
        legend = ax.get_legend()
        if len(notes) > before and legend is not None:  # show the new labels and styles
            ax.legend(loc=getattr(legend, "_loc", "best"))
    return notes


def invisible_series(fig) -> list[str]:
    """Legend entries of ``fig`` that draw nothing one can see (there should be none).

    A labelled line that is hidden, fully transparent, has neither line style nor marker, is a
    single point with no marker, or lies on an earlier labelled line in the same style;
    a labelled scatter with no point.
    """
    found = []
    for ax in fig.axes:
        if ax.get_legend() is None:
            continue
        seen = []
        for line in ax.get_lines():
            if not _labelled(line):
                continue
            label = str(line.get_label())
            x, _ = _points(line)
            styled = line.get_linestyle() not in ("None", "none", "", " ")
            marked = line.get_marker() not in NO_MARKER
            if not line.get_visible() or line.get_alpha() == 0 or not (styled or marked):
                found.append(f"{label}: not drawn")
            elif len(x) == 0 and "(no data)" not in label:
                found.append(f"{label}: no finite point")
            elif len(x) == 1 and not marked:
                found.append(f"{label}: one point and no marker")
            elif any(_overlap(line, other, ax) == 1.0 and _style(other) == _style(line)
                     for other in seen):
                found.append(f"{label}: hidden under an earlier series drawn the same way")
            seen.append(line)
        for collection in ax.collections:
            if _labelled(collection) and len(collection.get_offsets()) == 0:
                found.append(f"{collection.get_label()}: no point")
    return found


# ---- figures in the page's language ---------------------------------------------------------
# The book executes each tutorial once for both languages, so save_figure draws the Chinese
# twin of a figure in the same run: every text of the figure (titles, axis labels, legend
# entries, tick labels that are words, annotations) is translated through a catalogue of figure
# strings, and the twin is saved beside the figure as <stem>.<language>.png. Both PNGs carry
# their language in a text chunk; the book's extension (docs/_ext/duetrl_figures.py) shows on
# each page the one in the page's language.

FIGURE_LANGUAGES = "DUETRL_FIGURE_LANGUAGES"  # e.g. "zh_CN": the twins save_figure writes
FIGURE_CATALOGUE = "DUETRL_FIGURE_CATALOGUE"  # a .po of figure strings (default: the repo's)
DEFAULT_CATALOGUE = (Path(__file__).resolve().parent.parent / "docs" / "locale" / "{language}"
                     / "LC_MESSAGES" / "figures.po")
PNG_LANGUAGE_KEY = "duetrl-language"  # the PNG text chunk naming a figure's language
PNG_FIGURE_KEY = "duetrl-figure"  # ... and the figure it belongs to (the English file's stem)
# Latin and CJK fonts, in the order matplotlib falls back through them glyph by glyph.
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei",
             "WenQuanYi Micro Hei", "Droid Sans Fallback", "AR PL UMing CN", "SimHei",
             "Microsoft YaHei", "PingFang SC")
CJK_FILES = ("notosanscjk", "notosanssc", "sourcehansans", "wqy-zenhei", "wqy-microhei",
             "droidsansfallback", "uming", "simhei", "msyh")
PLACEHOLDER = re.compile(r"%\((\w+)\)s")  # "seed %(n)s": any text, itself translated
MATH = re.compile(r"(?<!\\)\$.*?(?<!\\)\$")
WORD = re.compile(r"[A-Za-z]{2,}")


def neutral(text: str) -> bool:
    """True when ``text`` reads the same in every language: numbers, symbols, maths, one letter.

    A run of two or more Latin letters outside ``$...$`` is a word (or a name, such as "PPO"),
    and must come from the catalogue.
    """
    return WORD.search(MATH.sub("", text)) is None


def read_po(path: str | Path) -> dict[str, str]:
    """The translated messages of a gettext catalogue: ``{msgid: msgstr}``.

    Fuzzy and obsolete entries, the header and empty translations are left out.
    """
    messages: dict[str, str] = {}
    entry: dict[str, list[str]] = {}
    fuzzy = False
    key = ""

    def close() -> None:
        msgid, msgstr = "".join(entry.get("msgid", [])), "".join(entry.get("msgstr", []))
        if msgid and msgstr and not fuzzy:
            messages[msgid] = msgstr

    for line in Path(path).read_text(encoding="utf-8").splitlines() + [""]:
        line = line.strip()
        if not line or line.startswith("#~"):
            if entry:
                close()
            entry, fuzzy, key = {}, False, ""
            continue
        if line.startswith("#"):
            fuzzy = fuzzy or (line.startswith("#,") and "fuzzy" in line)
            continue
        if line.startswith(("msgid ", "msgstr ")):
            key, _, line = line.partition(" ")
            if key == "msgid" and "msgstr" in entry:  # a new entry with no blank line before
                close()
                entry, fuzzy = {}, False
        if line.startswith('"') and key:
            entry.setdefault(key, []).append(ast.literal_eval(line))
    return messages


class FigureCatalogue:
    """Translations of figure strings, exact (``"episode return"``) or with placeholders.

    A message with ``%(name)s`` matches any text there (``"seed %(seed)s"`` matches "seed 3"),
    and that text is translated in its turn: a number stays a number, a name is looked up.
    Multi-line text is translated line by line.
    """

    def __init__(self, messages: Mapping[str, str]) -> None:
        self.exact = {k: v for k, v in messages.items() if not PLACEHOLDER.search(k)}
        patterns = []
        for msgid, msgstr in messages.items():
            names = PLACEHOLDER.findall(msgid)
            if not names:
                continue
            if sorted(names) != sorted(PLACEHOLDER.findall(msgstr)):
                raise ValueError(f"figure catalogue: expected the translation of {msgid!r} to "
                                 f"use the same placeholders, got {msgstr!r}")
            parts = PLACEHOLDER.split(msgid)  # literal, name, literal, name, ..., literal
            if "" in parts[2:-1:2] or not "".join(parts[::2]):
                raise ValueError(f"figure catalogue: expected text between the placeholders "
                                 f"of {msgid!r}")
            patterns.append((sum(len(p) for p in parts[::2]), parts, msgstr))
        # the most specific first: "%(a)s (dashed: equal to %(b)s)" before "%(a)s (%(b)s)"
        self.patterns = [(parts, msgstr) for _, parts, msgstr in
                         sorted(patterns, key=lambda p: -p[0])]

    @classmethod
    def load(cls, language: str = "zh_CN", path: str | Path | None = None) -> FigureCatalogue:
        """The catalogue of ``language`` (``DUETRL_FIGURE_CATALOGUE`` or the repository's)."""
        path = Path(path or os.environ.get(FIGURE_CATALOGUE)
                    or str(DEFAULT_CATALOGUE).format(language=language))
        if not path.exists():
            raise FileNotFoundError(f"figure catalogue: expected {path} (the figure strings' "
                                    f"{language} translations), found no file")
        return cls(read_po(path))

    def translate(self, text: str) -> str | None:
        """``text`` in the catalogue's language, or None where some part has no translation."""
        if text in self.exact:
            return self.exact[text]
        if "\n" in text:
            lines = [self.translate(line) for line in text.split("\n")]
            return None if any(line is None for line in lines) else "\n".join(lines)
        if neutral(text):
            return text
        for parts, msgstr in self.patterns:
            for found in _splits(text, parts):  # every way the text fits the pattern
                values = {name: self.translate(value) for name, value in found.items()}
                if all(value is not None for value in values.values()):
                    return PLACEHOLDER.sub(lambda m, v=values: v[m.group(1)], msgstr)
        return None


def _splits(text: str, parts: list[str]):
    """Each way ``text`` fits ``parts`` (literal, name, literal, ..., literal): ``{name: text}``.

    "GRPO (std) (torch)" fits "%(a)s (%(b)s)" twice; the caller takes the first whose parts
    all translate.
    """
    first, rest = parts[0], parts[1:]
    if not text.startswith(first):
        return
    text = text[len(first):]
    if not rest:
        if not text:
            yield {}
        return
    name, literal, tail = rest[0], rest[1], rest[2:]
    if not tail:  # the last placeholder: all that is left, before the closing literal
        if len(text) > len(literal) and text.endswith(literal):
            yield {name: text[:len(text) - len(literal)]}
        return
    start = 1
    while (at := text.find(literal, start)) != -1:
        for found in _splits(text[at:], [literal, *tail]):
            yield {name: text[:at], **found}
        start = at + 1


def figure_languages() -> list[str]:
    """The languages save_figure writes twins in (``DUETRL_FIGURE_LANGUAGES``, comma-separated)."""
    return [x for x in os.environ.get(FIGURE_LANGUAGES, "").split(",") if x and x != "en"]


def cjk_font() -> str:
    """The name of a font with Chinese glyphs that matplotlib can use.

    matplotlib's font list is cached, so a font installed after the cache was written (Debian's
    ``fonts-wqy-zenhei``) is looked for among the system's files and added.

    :raises RuntimeError: no CJK font on this machine (a Chinese figure would draw boxes).
    """
    from matplotlib import font_manager

    names = {font.name for font in font_manager.fontManager.ttflist}
    found = next((name for name in CJK_FONTS if name in names), None)
    if found is not None:
        return found
    for path in font_manager.findSystemFonts():
        flat = Path(path).name.lower().replace("-", "").replace("_", "")
        if any(key.replace("-", "") in flat for key in CJK_FILES):
            font_manager.fontManager.addfont(path)
    names = {font.name for font in font_manager.fontManager.ttflist}
    found = next((name for name in CJK_FONTS if name in names), None)
    if found is None:
        raise RuntimeError(
            "no CJK font: expected one of " + ", ".join(CJK_FONTS) + " for the Chinese "
            "figures, found none; install one (Debian: apt-get install fonts-wqy-zenhei, "
            "which `make browser` does)")
    return found


def _translated_formatter(inner, translate):
    """A tick formatter that translates what ``inner`` writes (a category's word, a name)."""
    from matplotlib.ticker import Formatter

    class Translated(Formatter):
        def __call__(self, x, pos=None) -> str:
            return translate(inner(x, pos))

        def format_ticks(self, values) -> list[str]:
            return [translate(text) for text in inner.format_ticks(values)]

        def set_locs(self, locs) -> None:
            inner.set_locs(locs)

        def get_offset(self) -> str:
            return inner.get_offset()

        def set_axis(self, axis) -> None:
            super().set_axis(axis)
            inner.set_axis(axis)

    return Translated()


VERBATIM = "duetrl-verbatim"  # the gid of a text that is data (a token, a prompt): never translated


def keep_verbatim(*items) -> None:
    """Mark texts, or the tick labels of axes (``ax.xaxis``), as data not to be translated.

    E.g. an attention map's tick labels are the prompt's characters.
    """
    for item in items:
        if hasattr(item, "get_major_formatter"):
            item._duetrl_verbatim = True  # an Axis: its tick labels
        else:
            item.set_gid(VERBATIM)


def translate_figure(fig, catalogue: FigureCatalogue) -> list[str]:
    """Translate every text of ``fig`` in place; returns the strings with no translation.

    Texts: titles, axis labels, legend entries, annotations, and tick labels that are words
    (each axis' formatter is wrapped; numbers pass through unchanged). ``keep_verbatim`` texts
    and axes are left alone. Nothing is changed for a string that has no translation.
    """
    from matplotlib.text import Text

    missing: list[str] = []

    def translate(text: str) -> str:
        done = catalogue.translate(text)
        if done is None:
            missing.append(text)
            return text
        return done

    for ax in fig.axes:
        for axis in ax._axis_map.values():
            if getattr(axis, "_duetrl_verbatim", False):
                continue
            for which in ("major", "minor"):
                getter = getattr(axis, f"get_{which}_formatter")
                setter = getattr(axis, f"set_{which}_formatter")
                setter(_translated_formatter(getter(), translate))
    fig.canvas.draw()  # the new formatters write the tick labels (and report what is missing)
    ticks = {id(label) for ax in fig.axes for axis in ax._axis_map.values()
             for tick in axis.get_major_ticks() + axis.get_minor_ticks()
             for label in (tick.label1, tick.label2)}  # their formatters translate them
    for text in fig.findobj(Text):
        if (text.get_gid() == VERBATIM or id(text) in ticks or not text.get_text()
                or not text.get_visible()):
            continue
        text.set_text(translate(text.get_text()))
    return list(dict.fromkeys(missing))


def _font_everywhere(fig, families: list[str]) -> None:
    """Every text of ``fig`` (tick labels included) falls back through ``families``."""
    from matplotlib.text import Text

    for text in fig.findobj(Text):
        text.set_fontfamily(families)


def save_twin(fig, path: Path, language: str) -> Path:
    """Translate ``fig`` into ``language`` (in place) and save it as ``<stem>.<language>.png``.

    :raises ValueError: a figure string has no translation in the language's catalogue (each
        one named, with the catalogue to add it to).
    """
    families = ["DejaVu Sans", cjk_font()]  # Latin from DejaVu, the rest from the CJK font
    _font_everywhere(fig, families)
    fonts = logging.getLogger("matplotlib.font_manager")
    level = fonts.level  # WenQuanYi has no "normal" weight: matplotlib says so, then uses 500
    fonts.setLevel(logging.ERROR)
    try:
        missing = translate_figure(fig, FigureCatalogue.load(language))
        twin = path.with_name(f"{path.stem}.{language}{path.suffix}")
        if not missing:
            with pyplot().rc_context({"font.family": families}):
                fig.tight_layout()
                fig.savefig(twin, dpi=110, metadata={PNG_LANGUAGE_KEY: language,
                                                     PNG_FIGURE_KEY: path.stem})
    finally:
        fonts.setLevel(level)
    if missing:
        where = os.environ.get(FIGURE_CATALOGUE) or str(DEFAULT_CATALOGUE).format(
            language=language)
        raise ValueError(f"figure {path.name}: expected a {language} translation of every "
                         f"figure string, got none for {missing} (add them to {where})")
    return twin


_SHOWN = {"inline": True}  # False inside figures_not_shown()


@contextmanager
def figures_not_shown() -> Iterator[None]:
    """Figures saved inside are written (twins too) but not shown in a notebook.

    E.g. the learning curve that each run of a sweep saves in its own folder: the page shows
    the figure made from all of them, not each one.
    """
    before = _SHOWN["inline"]
    _SHOWN["inline"] = False
    try:
        yield
    finally:
        _SHOWN["inline"] = before


def save_figure(fig, path: str | Path) -> Path:
    """Write ``fig`` to ``path`` (folders created), free it, and show it if in a notebook.

    Every series the legend names is made visible first (:func:`show_every_series`). With
    ``DUETRL_FIGURE_LANGUAGES=zh_CN`` (the book's build sets it) the figure's Chinese twin is
    saved and shown too, as ``<stem>.zh_CN.png`` (:func:`save_twin`); each PNG names its
    language and figure in a text chunk, so the book shows each page's own.

    :raises ValueError: a legend entry still draws nothing (:func:`invisible_series`); a figure
        string has no translation (with a figure language set); more than one figure language.
    """
    show_every_series(fig)
    hidden = invisible_series(fig)
    languages = figure_languages()
    if hidden or len(languages) > 1:
        pyplot().close(fig)
        if hidden:
            raise ValueError(f"figure {Path(path).name}: expected every legend entry to draw "
                             f"something, got {'; '.join(hidden)}")
        raise ValueError(f"{FIGURE_LANGUAGES}: expected at most one language besides en, got "
                         f"{languages}")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, metadata={PNG_LANGUAGE_KEY: "en", PNG_FIGURE_KEY: path.stem})
    try:
        twins = [save_twin(fig, path, language) for language in languages]
    finally:
        pyplot().close(fig)
    for shown in (path, *twins) if _SHOWN["inline"] else ():
        show_saved_figure(shown)  # inline in a notebook (and in the book); nothing in a script
    return path


def plot_attention_heatmaps(
    weights: Mapping[str, np.ndarray],
    path: str | Path,
    query_labels: Sequence[str] | None = None,
    key_labels: Sequence[str] | None = None,
    title: str = "attention weights",
) -> Path:
    """Save one heat map per entry of ``weights`` (``{label: (q_len, k_len)}``) side by side.

    :param weights: e.g. ``{"torch": w_torch, "tf": w_tf}`` for one head of one example.
    :param path: PNG file to write.
    :returns: the path written.
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, len(weights), figsize=(4.2 * len(weights), 4), squeeze=False)
    for ax, (label, w) in zip(axes[0], weights.items()):
        image = ax.imshow(np.asarray(w), cmap="viridis", vmin=0.0, vmax=float(np.max(w)))
        ax.set_title(label)
        ax.set_xlabel("key position")
        ax.set_ylabel("query position")
        if key_labels is not None:  # tokens: data, shown as they are in every language
            ax.set_xticks(range(len(key_labels)), key_labels, rotation=90, fontsize=7)
            keep_verbatim(ax.xaxis)
        if query_labels is not None:
            ax.set_yticks(range(len(query_labels)), query_labels, fontsize=7)
            keep_verbatim(ax.yaxis)
        fig.colorbar(image, ax=ax, fraction=0.046)
    fig.suptitle(title)
    return save_figure(fig, path)


def plot_curves(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    path: str | Path,
    xlabel: str,
    ylabel: str,
    title: str = "",
    hline: float | None = None,
) -> Path:
    """Save line plots of ``{label: (x, y)}`` on one axis, e.g. both backends' learning curves.

    :param hline: an optional horizontal reference line (a "solved" threshold, an entropy rate).
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, (x, y) in curves.items():
        ax.plot(np.asarray(x), np.asarray(y), label=label)
    if hline is not None:
        ax.axhline(hline, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    if curves:  # a run too short to finish an episode has nothing to label
        ax.legend()
    return save_figure(fig, path)
