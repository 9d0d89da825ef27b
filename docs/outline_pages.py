"""The generated pages of the outline: one per chapter, the contents at a glance, the unplaced.

:func:`write_chapter_pages` writes ``outline/chNN.md`` (every section with its status and what
the book has for it), ``outline/contents.md`` (every section of the nine chapters and its
status, in one table per chapter) and ``outline/unplaced.md``. What a section has is computed
by :func:`outline.coverage` from the files themselves, so a status cannot go stale. The Chinese
of every generated phrase is in :func:`translations`: ``docs/build.py --update-catalogues``
fills the catalogues from it (a translation made by hand in a .po file wins).
"""

from __future__ import annotations

from pathlib import Path

import outline
from outline import CHAPTERS, Chapter, Coverage

LABELS = {
    "pages": "Tutorials and chapter pages",
    "also": "Also covered in",
    "commands": "Command line",
    "modules": "API",
    "empty": "Not built yet.",
    "unplaced": "Not yet placed in the outline",
    "all placed": "Every command and module belongs to a section.",
    "contents": "Contents at a glance",
    "section": "Section", "status": "Status", "tutorials": "Tutorials",
    "chapter pages": "Chapter pages", "api": "API modules",
    "legend": ("Every section of the outline's nine chapters and what the book has for it. "
               "The status is computed from the pages each time the book is built: a "
               "tutorial counts when its file name puts it in the section or its opening "
               "names the section; a chapter page counts when it has a heading numbered in "
               "the section."),
}
LABELS_ZH = {
    "pages": "教程与章节页面",
    "also": "另见",
    "commands": "命令行",
    "modules": "API",
    "empty": "尚未编写。",
    "unplaced": "尚未归入大纲的内容",
    "all placed": "每个命令和模块都已归入某一节。",
    "contents": "全书目录一览",
    "section": "节", "status": "状态", "tutorials": "教程",
    "chapter pages": "章节页面", "api": "API 模块",
    "legend": ("大纲九章的每一节，以及本书为它提供了什么。状态在每次构建本书时根据页面本身计算："
               "教程的文件名把它归入该节，或它的开头一段提到该节，就算作该节的教程；章节页面中有"
               "以该节编号开头的标题，就算作该节的章节页面。"),
}
# a section's status, on its chapter page (a sentence) and in the contents table (a word)
STATUS_LINE = {
    "tutorial": ("Status: a runnable tutorial.", "状态：有可运行的教程。"),
    "text": ("Status: text on a chapter page; no runnable tutorial yet.",
             "状态：章节页面上有正文；尚无可运行的教程。"),
    "reference": ("Status: commands and API pages only; no text yet.",
                  "状态：只有命令与 API 参考；尚无正文。"),
    "empty": ("Status: not built yet.", "状态：尚未编写。"),
}
STATUS_WORD = {
    "tutorial": ("✅ runnable tutorial", "✅ 可运行教程"),
    "text": ("📖 text only", "📖 仅有正文"),
    "reference": ("🔧 reference only", "🔧 仅有参考"),
    "empty": ("— not built yet", "— 尚未编写"),
}
CONTENTS = "outline/contents"


def title_en(number: str, english: str, chinese: str) -> str:
    """A title as the English pages show it: the English words, the outline's Chinese beside."""
    return f"{number} {english} · {chinese}"


def title_zh(number: str, english: str, chinese: str) -> str:
    """The same title on the Chinese pages: the outline's words first, the English beside."""
    return f"{number} {chinese} · {english}"


def _contents_link(chapter: Chapter, title: str) -> str:
    return f"[{title}](ch{chapter.number:02d}.md)"


def translations() -> dict[str, str]:
    """``{English text: Chinese text}`` for every piece of text the outline pages generate."""
    table = {f"**{LABELS[key]}**": f"**{LABELS_ZH[key]}**"
             for key in ("pages", "also", "commands", "modules")}
    table.update({f"*{LABELS['empty']}*": f"*{LABELS_ZH['empty']}*"})
    table.update({LABELS[key]: LABELS_ZH[key]
                  for key in ("unplaced", "all placed", "contents", "section", "status", "commands",
                              "tutorials", "chapter pages", "api", "legend")})
    table.update({f"*{en}*": f"*{zh}*" for en, zh in STATUS_LINE.values()})
    table.update(dict(STATUS_WORD.values()))
    for chapter in CHAPTERS:
        names = (str(chapter.number), chapter.title_en, chapter.title_zh)
        table[title_en(*names)] = title_zh(*names)
        for section in chapter.sections:
            names = (section.number, section.title_en, section.title_zh)
            table[title_en(*names)] = title_zh(*names)
            table[_contents_link(chapter, title_en(*names))] = _contents_link(
                chapter, title_zh(*names))
            for i, (zh, en) in enumerate(section.subsections, start=1):
                names = (f"{section.number}.{i}", en, zh)
                table[title_en(*names)] = title_zh(*names)
    return table


def _reference_lines(commands: list[str], modules: list[str], linked: bool) -> list[str]:
    """Labelled paragraphs of links to the CLI and API reference pages (none when empty)."""
    lines = []
    for key, kind, names in (("commands", "cli", commands), ("modules", "api", modules)):
        if names:
            lines += [f"**{LABELS[key]}**", "",
                      ", ".join(_reference(kind, name, linked) for name in names), ""]
    return lines


def _reference(kind: str, name: str, linked: bool) -> str:
    """A link to a generated reference page (or the bare name before the generator exists)."""
    label = f"duetrl {name}" if kind == "cli" else name
    return f"{{doc}}`{label} </generated/{kind}/{name}>`" if linked else f"`{label}`"


def chapter_page(chapter: Chapter, cover: dict[str, Coverage], chapter_pages: list[str],
                 references_linked: bool) -> str:
    """The MyST text of one chapter's page: every section, its status and what it has.

    :param cover: ``outline.coverage()``'s answer (sections missing from it have nothing).
    :param chapter_pages: the chapter's own pages that exist (listed at the top).
    """
    lines = [
        f"# {title_en(str(chapter.number), chapter.title_en, chapter.title_zh)}", "",
        "<!-- Generated by docs/outline_pages.py from docs/outline.py; edit those files. -->",
        "",
    ]
    if chapter_pages:
        lines += ["```{toctree}", ":maxdepth: 1", "", *[f"/{p}" for p in chapter_pages], "```", ""]
    for section in chapter.sections:
        has = cover.get(section.number, Coverage())
        lines += [f"## {title_en(section.number, section.title_en, section.title_zh)}", ""]
        for i, (zh, en) in enumerate(section.subsections, start=1):
            lines.append(f"- {title_en(f'{section.number}.{i}', en, zh)}")
        if section.subsections:
            lines.append("")
        lines += [f"*{STATUS_LINE[has.status][0]}*", ""]
        if has.pages or has.tutorials:  # in this section's table of contents
            lines += [f"**{LABELS['pages']}**", "", "```{toctree}", ":maxdepth: 1", "",
                      *[f"/{p}" for p in has.pages],
                      *[f"/tutorials/{stem}" for stem in has.tutorials], "```", ""]
        elsewhere = [*has.also_pages, *[f"tutorials/{stem}" for stem in has.also_tutorials]]
        if elsewhere:  # pages placed in another section (or the chapter) that cover this one
            lines += [f"**{LABELS['also']}**", "",
                      ", ".join(f"{{doc}}`/{page}`" for page in elsewhere), ""]
        lines += _reference_lines(has.commands, has.modules, references_linked)
    return "\n".join(lines)


def contents_page(cover: dict[str, Coverage]) -> str:
    """Every section of the nine chapters and its status, one table per chapter."""
    lines = [f"# {LABELS['contents']}", "",
             "<!-- Generated by docs/outline_pages.py from docs/outline.py; edit those files. -->",
             "", LABELS["legend"], ""]
    header = [LABELS[key] for key in ("section", "status", "tutorials", "chapter pages",
                                      "commands", "api")]
    for chapter in CHAPTERS:
        lines += [f"## {title_en(str(chapter.number), chapter.title_en, chapter.title_zh)}", "",
                  "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for section in chapter.sections:
            has = cover.get(section.number, Coverage())
            counts = (len(has.tutorials) + len(has.also_tutorials),
                      len(has.pages) + len(has.also_pages), len(has.commands), len(has.modules))
            cells = [_contents_link(chapter, title_en(section.number, section.title_en,
                                                      section.title_zh)),
                     STATUS_WORD[has.status][0], *[str(n) if n else "" for n in counts]]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def unplaced_page(commands: list[str], modules: list[str], references_linked: bool) -> str:
    """Commands and modules that no section claims yet (listed, never hidden)."""
    lines = [f"# {LABELS['unplaced']}", ""]
    if not (commands or modules):
        lines += [LABELS["all placed"], ""]
    return "\n".join(lines + _reference_lines(commands, modules, references_linked))


def _write_if_changed(path: Path, text: str) -> None:
    """Write only when the text differs, so that Sphinx does not re-read unchanged pages."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def write_chapter_pages(docs: Path) -> list[Path]:
    """Write ``docs/outline/chNN.md`` for the 9 chapters, ``contents.md`` and ``unplaced.md``."""
    sections = [s for chapter in CHAPTERS for s in chapter.sections]
    commands = outline.place(outline.cli_commands(), {s.number: s.commands for s in sections})
    modules = outline.place(outline.api_modules(), {s.number: s.modules for s in sections})
    cover = outline.coverage(docs, commands=commands, modules=modules)
    existing = {str(p.relative_to(docs).with_suffix("")) for p in docs.glob("chapters/*.md")}
    linked = (docs / "_ext" / "duetrl_reference.py").exists()
    written = []
    for chapter in CHAPTERS:
        path = docs / (outline.chapter_page_docname(chapter) + ".md")
        own = [p for p in chapter.pages if p in existing]
        _write_if_changed(path, chapter_page(chapter, cover, own, linked))
        written.append(path)
    for name, text in (("contents", contents_page(cover)),
                       ("unplaced", unplaced_page(commands[""], modules[""], linked))):
        path = docs / "outline" / f"{name}.md"
        _write_if_changed(path, text)
        written.append(path)
    return written
