"""The book's figures: in the page's language, numbered and captioned.

- The tutorials are executed once for both languages (one jupyter-cache), so each figure is
  drawn in both in that one run: this extension sets ``DUETRL_FIGURE_LANGUAGES=zh_CN`` for the
  kernels, and ``core/plots.py``'s ``save_figure`` then shows the figure and its Chinese twin,
  each PNG naming its language and figure in a text chunk. On each page the twin in the page's
  language is kept and the other dropped (English where a figure has no twin).
- A tutorial captions a figure with a ``figcaption`` directive in the Markdown cell after the
  code cell that draws it::

      ```{figcaption}
      What the figure shows, in a sentence or two.
      ```

  The caption is ordinary page text, so it is translated through the page's catalogue. Each
  caption takes the first figure without one of the code cell just before it (several
  captions in a row: that cell's figures in order); the figures of a page are numbered in
  order, "Figure 1: ..." ("图 1：..." in Chinese). Every figure is numbered, captioned or not.
"""

from __future__ import annotations

import os
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.transforms import SphinxTransform
from sphinx.util.docutils import SphinxDirective

# read by core/plots.py's save_figure, and the PNG text chunks it writes
from duetrl.core.figure_language import FIGURE_LANGUAGES, PNG_FIGURE_KEY, PNG_LANGUAGE_KEY

TWIN_LANGUAGES = "zh_CN"  # every build draws them: both languages share the executed outputs
NUMBER_FORMAT = {"en": "Figure {n}: ", "zh_CN": "图 {n}："}
NUMBER_ALONE = {"en": "Figure {n}", "zh_CN": "图 {n}"}


class pending_caption(nodes.General, nodes.Element):  # noqa: N801  (docutils' node style)
    """A figure's caption until the transform puts it under its figure."""


class FigCaption(SphinxDirective):
    """``figcaption``: the caption of the figure drawn by the code cell before it."""

    has_content = True

    def run(self) -> list[nodes.Node]:
        node = pending_caption()
        self.set_source_info(node)
        self.state.nested_parse(self.content, self.content_offset, node)
        return [node]


def png_tags(path: Path) -> tuple[str, str] | None:
    """``(language, figure)`` from a PNG written by save_figure; None for any other image."""
    if path.suffix.lower() != ".png" or not path.exists():
        return None
    from PIL import Image

    with Image.open(path) as image:
        text = getattr(image, "text", {}) or {}
    if PNG_LANGUAGE_KEY not in text or PNG_FIGURE_KEY not in text:
        return None
    return text[PNG_LANGUAGE_KEY], text[PNG_FIGURE_KEY]


def output_of(image: nodes.image) -> nodes.Element:
    """The node holding one cell output (myst-nb's mime bundle), or the image itself."""
    node: nodes.Element | None = image
    while node is not None:
        if node.get("nb_element") == "mime_bundle":
            return node
        node = node.parent
    return image


class FiguresInPageLanguage(SphinxTransform):
    """Keep each figure in the page's language, then number and caption the figures."""

    default_priority = 400  # after Locale (20): the captions are already translated

    def apply(self, **kwargs) -> None:
        language = self.config.language or "en"
        figures = self.choose_language(language)
        self.caption(figures, language)

    def choose_language(self, language: str) -> list[nodes.image]:
        """Drop the other languages' twins; returns the figures kept, in page order."""
        found: list[tuple[nodes.image, str, str]] = []
        for image in list(self.document.findall(nodes.image)):
            uri = image.get("uri", "")
            if "://" in uri:
                continue
            tags = png_tags(Path(self.env.relfn2path(uri, self.env.docname)[1]))
            if tags is not None:
                found.append((image, *tags))
        languages: dict[str, set[str]] = {}
        for _, lang, figure in found:
            languages.setdefault(figure, set()).add(lang)
        kept = []
        for image, lang, figure in found:
            wanted = language if language in languages[figure] else "en"
            if lang == wanted:
                kept.append(image)
            else:
                output = output_of(image)
                output.parent.remove(output)
        return kept

    def caption(self, figures: list[nodes.image], language: str) -> None:
        """Wrap each figure in a numbered figure node, with the caption that follows it."""
        kept = {id(image) for image in figures}
        waiting: list[nodes.image] = []  # figures with no caption yet, in page order
        captions: dict[int, pending_caption] = {}
        for node in list(self.document.findall(
                lambda n: isinstance(n, pending_caption) or id(n) in kept
                or n.get("nb_element") == "cell_code" if isinstance(n, nodes.Element)
                else False)):
            if isinstance(node, nodes.container) and node.get("nb_element") == "cell_code":
                waiting = []  # a caption names a figure of the code cell just before it
            elif isinstance(node, pending_caption):
                if waiting:
                    captions[id(waiting.pop(0))] = node
                else:  # no figure (the page was built without running it): text only
                    self.orphan(node)
            else:
                waiting.append(node)
        number = NUMBER_FORMAT.get(language, NUMBER_FORMAT["en"])
        alone = NUMBER_ALONE.get(language, NUMBER_ALONE["en"])
        for n, image in enumerate(figures, start=1):
            figure = nodes.figure(ids=[f"figure-{n}"], classes=["duetrl-figure"])
            image.replace_self(figure)
            figure += image
            pending = captions.get(id(image))
            if pending is None:
                figure += nodes.caption("", "", nodes.inline("", alone.format(n=n),
                                                             classes=["caption-number"]))
                continue
            paragraphs = [p for p in pending.children if isinstance(p, nodes.paragraph)]
            caption = nodes.caption("", "", nodes.inline("", number.format(n=n),
                                                         classes=["caption-number"]))
            caption.source, caption.line = pending.source, pending.line
            if paragraphs:
                caption.extend(paragraphs[0].children)
            figure += caption
            rest = [p for p in pending.children if p is not (paragraphs or [None])[0]]
            if rest:
                figure += nodes.legend("", *rest)
            pending.parent.remove(pending)

    def orphan(self, pending: pending_caption) -> None:
        """A caption with no figure: kept as text for the translators' catalogues (gettext),
        dropped from a reader's page."""
        if getattr(self.env, "duetrl_builder", "") == "gettext":
            pending.replace_self(pending.children)
        else:
            pending.parent.remove(pending)


def draw_twins(app: Sphinx, config: Config) -> None:
    """Make the executed tutorials draw every figure in Chinese too (any language's build:
    the other one reuses its outputs)."""
    os.environ.setdefault(FIGURE_LANGUAGES, TWIN_LANGUAGES)


def note_builder(app: Sphinx) -> None:
    """Let the transform know whether it reads for the translators' catalogues (gettext)."""
    app.env.duetrl_builder = app.builder.name


def setup(app: Sphinx) -> dict[str, object]:
    app.add_node(pending_caption)
    app.add_directive("figcaption", FigCaption)
    app.add_transform(FiguresInPageLanguage)
    app.connect("config-inited", draw_twins)
    app.connect("builder-inited", note_builder)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
