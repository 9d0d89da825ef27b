"""Figures in the page's language (``core/plots.save_figure`` calls :func:`save_twin`).

The book executes each tutorial once for both languages, so save_figure draws the Chinese
twin of a figure in the same run: every text of the figure (titles, axis labels, legend
entries, tick labels that are words, annotations) is translated through a catalogue of figure
strings, and the twin is saved beside the figure as <stem>.<language>.png. Both PNGs carry
their language in a text chunk; the book's extension (docs/_ext/duetrl_figures.py) shows on
each page the one in the page's language.
"""

from __future__ import annotations

import ast
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path

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
    import matplotlib

    families = ["DejaVu Sans", cjk_font()]  # Latin from DejaVu, the rest from the CJK font
    _font_everywhere(fig, families)
    fonts = logging.getLogger("matplotlib.font_manager")
    level = fonts.level  # WenQuanYi has no "normal" weight: matplotlib says so, then uses 500
    fonts.setLevel(logging.ERROR)
    try:
        missing = translate_figure(fig, FigureCatalogue.load(language))
        twin = path.with_name(f"{path.stem}.{language}{path.suffix}")
        if not missing:
            with matplotlib.rc_context({"font.family": families}):
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
