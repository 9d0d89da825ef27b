"""The generator of the book's reference pages (docs/_ext/duetrl_reference.py), without Sphinx:
every module and mirrored file gets its page, the Rosetta rows are ``duetrl diff``'s, the notes
fire on what they recognise and nowhere else, docstrings come out as valid reST."""

from __future__ import annotations

import html
import importlib.util
import pkgutil
import re
import sys
from pathlib import Path

import pytest

from duetrl.core.mirror import AlignedRow, MirrorPair, compare_pair, mirror_names, mirror_table

EXTENSION = Path(__file__).parent.parent / "docs" / "_ext" / "duetrl_reference.py"


def load_extension():
    spec = importlib.util.spec_from_file_location("duetrl_reference", EXTENSION)
    module = importlib.util.module_from_spec(spec)
    sys.modules["duetrl_reference"] = module
    spec.loader.exec_module(module)
    return module


ref = load_extension()


@pytest.fixture(scope="module")
def pages_en() -> dict[str, str]:
    return ref.all_pages("en")


def test_every_core_module_gets_an_api_page(pages_en):
    import duetrl.core

    modules = ["duetrl.core"] + [m.name for m in pkgutil.walk_packages(duetrl.core.__path__,
                                                                      "duetrl.core.")]
    assert len(modules) > 50
    for module in modules:
        page = pages_en[f"api/{module.removeprefix('duetrl.')}"]
        assert f".. automodule:: {module}\n   :members:" in page
    index = pages_en["api/index"]
    assert all(module.removeprefix("duetrl.") in index for module in modules)


def toctree_entries(page: str) -> list[str]:
    """The documents of every toctree of a generated page, in order."""
    entries = []
    for block in re.findall(r"```\{toctree\}\n(.*?)```", page, re.DOTALL):
        entries += [line for line in block.splitlines() if line and not line.startswith(":")]
    return entries


def test_the_api_toctrees_are_the_package_tree(pages_en):
    """Each API page sits in exactly one toctree: the index holds duetrl.core, its direct
    modules and packages, and the backend pages; a package's page holds its own modules."""
    placed = {}
    for name, page in pages_en.items():
        if name.startswith("api/"):
            for entry in toctree_entries(page):
                assert entry not in placed, f"{entry} in the toctrees of {placed.get(entry)} and {name}"
                placed[entry] = name
    api_pages = {name.removeprefix("api/") for name in pages_en
                 if name.startswith("api/") and name != "api/index"}
    assert set(placed) == api_pages
    assert placed["core"] == placed["core.rlhf"] == placed["backends.gpt"] == "api/index"
    assert placed["core.rlhf.tasks"] == "api/core.rlhf"
    assert placed["core.cases.kg"] == "api/core.cases"
    assert placed["core.cases.kg.graph"] == "api/core.cases.kg"
    assert "本包的模块" in ref.all_pages("zh_CN")["api/core.rlhf"]
    assert ref.children_of("duetrl.core.cases", ["duetrl.core.cases.kg", "duetrl.core.casesx",
                                                 "duetrl.core.cases.kg.graph"]) == [
        "duetrl.core.cases.kg"]


def test_every_mirrored_file_gets_an_api_page_and_a_rosetta_page(pages_en):
    names = mirror_names()
    assert "attention" in names and "__init__" in names
    for name in names:
        api = pages_en[f"api/backends.{name}"]
        torch_at = api.index(f"automodule:: {ref.backend_module('torch', name)}")
        tf_at = api.index(f"automodule:: {ref.backend_module('tf', name)}")
        assert torch_at < tf_at  # torch left, tf right
        assert "api-columns" in api and "api-column-torch" in api and "api-column-tf" in api
        assert f"rosetta/{name}" in pages_en
        assert f"{{doc}}`{name} <{name}>`" in pages_en["rosetta/index"]
    assert ref.backend_module("tf", "__init__") == "duetrl.backends.tf"
    assert ref.backend_module("torch", "gpt") == "duetrl.backends.torch.gpt"
    # the package page shows its docstring only: its names are documented in their modules
    assert ":members:" not in pages_en["api/backends.__init__"]


def table_rows(page: str) -> list[tuple[str, str | None, str | None]]:
    """(tag, torch line, tf line) of every code row of a Rosetta page's table."""
    rows = []
    for match in re.finditer(r'<tr class="rosetta-(same|changed|torch-only|tf-only)">(.*?)</tr>',
                             page):
        tag = {"same": "=", "changed": "|", "torch-only": "<", "tf-only": ">"}[match[1]]
        cells = re.findall(r'<td class="rosetta-code">(.*?)</td>', match[2])
        lines = []
        for cell in cells:
            code = re.fullmatch(r"<code>(.*)</code>", cell)
            lines.append(html.unescape(re.sub(r"<[^>]+>", "", code[1])) if code else None)
        rows.append((tag, *lines))
    return rows


def test_rosetta_rows_are_compare_pairs_rows(pages_en):
    for name in mirror_names():
        expected = [(r.tag, r.torch_line, r.tf_line) for r in compare_pair(name).rows]
        assert table_rows(pages_en[f"rosetta/{name}"]) == expected, name


def test_rosetta_line_numbers_count_each_side():
    pair = MirrorPair("toy", 2, 2, 1, 1, [AlignedRow("=", "a = 1", "a = 1"),
                                        AlignedRow("<", "b = 2", None),
                                        AlignedRow(">", None, "c = 3")])
    table = ref.rosetta_table(pair, "a = 1\nb = 2\n", "a = 1\nc = 3\n", "en")
    numbers = re.findall(r'<td class="rosetta-lineno">(\d*)</td>', table)
    assert numbers == ["1", "1", "2", "", "", "2"]


def test_rosetta_index_is_the_diff_all_table(pages_en):
    index = pages_en["rosetta/index"]
    for p in mirror_table():
        row = (f"| {{doc}}`{p.name} <{p.name}>` | {p.torch_lines} | {p.tf_lines} | "
               f"{p.only_torch} | {p.only_tf} | {p.differing:.0%}")
        assert row in index
    assert index.startswith("# Rosetta stone")
    assert ref.rosetta_index_page("zh_CN").startswith("# 罗塞塔石碑")


# One line of each side that each rule must recognise: (rule, torch line, tf line).
KNOWN_DIFFERENCES = [
    ("graph", "step = torch.compile(step)", "@tf.function"),
    ("gradients", "loss.backward()", "with tf.GradientTape() as tape:"),
    ("inference", "with torch.no_grad():", "y = model(x, training=False)"),
    ("module", "class Net(nn.Module):", "class Net(keras.layers.Layer):"),
    ("build", "", "        self.fc.build((None, 4))"),
    ("parameters", "w = self.fc.weight", "w = self.fc.kernel"),
    ("layout", "x = x.transpose(1, 2)", "x = tf.transpose(x, (0, 2, 1, 3))"),
    ("epsilon", "nn.LayerNorm(d, eps=eps)", "layers.LayerNormalization(epsilon=eps)"),
    ("dtype", "x = x.double()", "x = tf.cast(x, tf.float64)"),
    ("numpy", "t = torch.as_tensor(a)", "t = tf.convert_to_tensor(a)"),
    ("mutation", "step.fill_(0.0)", "step.assign(0.0)"),
    ("reduce", "y = x.sum(dim=1)", "y = tf.reduce_sum(x, axis=1)"),
    ("mask", "s = s.masked_fill(m == 0, fill)", "s = tf.where(m == 0, fill, s)"),
    ("clip", "y = torch.clamp(x, max=1.0)", "y = tf.minimum(x, 1.0)"),
    ("functional", "y = F.relu(x)", "y = tf.nn.relu(x)"),
    ("imports", "import torch", "import tensorflow as tf"),
    ("tensor_type", "def f(x: torch.Tensor):", "def f(x: tf.Tensor):"),
]


@pytest.mark.parametrize("key,torch_line,tf_line", KNOWN_DIFFERENCES,
                         ids=[k for k, _, _ in KNOWN_DIFFERENCES])
def test_each_rule_recognises_its_difference(key, torch_line, tf_line):
    rule = next(r for r in ref.NOTE_RULES if r.key == key)
    assert rule.en in ref.notes_for([torch_line], [tf_line], "en")
    assert rule.zh_CN in ref.notes_for([torch_line], [tf_line], "zh_CN")
    # each side alone is enough where the rule has a pattern for it
    if rule.torch:
        assert rule.en in ref.notes_for([torch_line], [], "en")
    assert rule.en in ref.notes_for([], [tf_line], "en")


def test_every_rule_is_tested_and_translated():
    assert {r.key for r in ref.NOTE_RULES} == {k for k, _, _ in KNOWN_DIFFERENCES}
    for rule in ref.NOTE_RULES:
        assert rule.en and re.search(r"[\u4e00-\u9fff]", rule.zh_CN), rule.key


def test_no_note_for_a_difference_no_rule_knows():
    assert ref.notes_for(["x = 1"], ["x = 2"], "en") == []
    assert ref.notes_for([], [], "en") == []


def test_notes_only_under_differing_hunks():
    framework_lines = ["@tf.function", "with tf.GradientTape() as tape:"]
    same = [AlignedRow("=", line, line) for line in framework_lines]
    pair = MirrorPair("toy", 2, 2, 0, 0, same)
    source = "\n".join(framework_lines) + "\n"
    assert "rosetta-note" not in ref.rosetta_table(pair, source, source, "en")

    rows = [*same, AlignedRow("|", "loss.backward()", "grads = tape.gradient(loss, w)"),
            AlignedRow("=", "x = 1", "x = 1")]
    pair = MirrorPair("toy", 4, 4, 1, 1, rows)
    torch_source = source + "loss.backward()\nx = 1\n"
    tf_source = source + "grads = tape.gradient(loss, w)\nx = 1\n"
    table = ref.rosetta_table(pair, torch_source, tf_source, "zh_CN")
    assert table.count('class="rosetta-note"') == 1
    gradients = next(r for r in ref.NOTE_RULES if r.key == "gradients")
    assert ref.inline_code(gradients.zh_CN) in table
    # the note sits right after the changed row, before the next shared row
    changed_at = table.index('class="rosetta-changed"')
    assert changed_at < table.index("rosetta-note") < table.rindex('class="rosetta-same"')


def test_hunks_are_the_runs_of_differing_rows():
    rows = [AlignedRow(tag, "", "") for tag in "==|<=>"]
    assert ref.hunks(rows) == [(2, 4), (5, 6)]
    assert ref.hunks([AlignedRow("|", "", "")]) == [(0, 1)]
    assert ref.hunks([AlignedRow("=", "", "")]) == []


def test_highlighting_keeps_one_string_per_line():
    source = '"""A docstring\n\nover lines."""\n\n\nx = 1  # <b>\n'
    lines = ref.highlighted_lines(source)
    assert len(lines) == len(source.splitlines())
    assert [html.unescape(re.sub(r"<[^>]+>", "", line)) for line in lines] == source.splitlines()
    assert "&lt;b&gt;" in lines[5]


def reST_problems(lines: list[str]) -> list[str]:
    """docutils' messages (warning or worse) when parsing ``lines`` as reST; Sphinx's own roles
    and directives (unknown to plain docutils) are not problems."""
    import io

    from docutils.core import publish_doctree
    from docutils.parsers.rst import directives
    from docutils.parsers.rst.directives.body import CodeBlock

    directives.register_directive("code-block", CodeBlock)  # Sphinx's name of docutils' code
    stream = io.StringIO()
    publish_doctree("\n".join(lines), settings_overrides={
        "warning_stream": stream, "report_level": 2, "halt_level": 5})
    return [line for line in stream.getvalue().splitlines()
            if ("ERROR" in line or "WARNING" in line) and "Unknown interpreted text role" not in line
            and "Unknown directive type" not in line]


def test_readable_docstring_makes_equations_literal_and_escapes_bars():
    doc = ["The return is", "", "    G_t = r_t + gamma G_{t+1}", "", "and |x| <= 1 but ``a|b``.",
           "Then", "    V = R + gamma P V", "and more.", "", ":param x: the x", "    continued"]
    out = ref.readable_docstring(doc)
    assert out[:5] == ["The return is", "", ref.LITERAL, "", "    G_t = r_t + gamma G_{t+1}"]
    assert "and \\|x\\| <= 1 but ``a|b``." in out
    assert out[out.index("    V = R + gamma P V") - 2] == ref.LITERAL
    assert ":param x: the x" in out and "    continued" in out
    assert reST_problems(doc) and not reST_problems(out)


def test_readable_docstring_keeps_good_tables_and_rescues_bad_ones():
    good = ["=====  =====", "a      b", "=====  =====", "x      y z w", "=====  ====="]
    assert ref.readable_docstring(good)[:5] == good
    bad = ["===  =====", "a      b", "===  =====", "xyzw   y", "===  ====="]  # text in the gap
    out = ref.readable_docstring(bad)
    assert out[0] == ref.LITERAL and "    xyzw   y" in out
    assert reST_problems(bad) and not reST_problems(out)


def all_docstring_modules() -> list[str]:
    import duetrl.core

    names = ["duetrl.core"] + [m.name for m in pkgutil.walk_packages(duetrl.core.__path__,
                                                                    "duetrl.core.")]
    for name in mirror_names():
        names += [ref.backend_module("torch", name), ref.backend_module("tf", name)]
    return names


def documented_objects(module) -> list:
    """The module and the classes, functions and methods it defines."""
    import inspect

    found = [module]
    for _, value in vars(module).items():
        if getattr(value, "__module__", None) != module.__name__:
            continue
        if inspect.isclass(value):
            found.append(value)
            found += [v for v in vars(value).values() if inspect.isfunction(v)]
        elif inspect.isfunction(value):
            found.append(value)
    return found


def test_every_docstring_becomes_valid_rest():
    """Each docstring of core and the backends, through Napoleon as Sphinx does, then
    readable_docstring: docutils finds nothing to complain about."""
    import importlib
    import inspect

    from sphinx.ext.napoleon import Config, GoogleDocstring

    config = Config(napoleon_use_param=True, napoleon_use_rtype=True)
    checked = 0
    for name in all_docstring_modules():
        for obj in documented_objects(importlib.import_module(name)):
            doc = inspect.getdoc(obj)
            if not doc:
                continue
            lines = GoogleDocstring(doc, config).lines()
            assert not reST_problems(ref.readable_docstring(lines)), (name, obj)
            checked += 1
    assert checked > 300


def test_cli_pages_hold_every_commands_help():
    from duetrl.core.cli import build_parser

    pages = ref.cli_pages("en")
    commands = ref.subcommands(build_parser())
    assert {"diff", "train", "compare"} <= set(commands)
    assert set(pages) == {"index", *commands}
    for name, parser in commands.items():
        assert ref.help_text(parser).rstrip() in pages[name]
        for sub in ref.subcommands(parser).values():  # e.g. `duetrl compare attention`
            assert f"## {sub.prog}" in pages[name]
            assert ref.help_text(sub).rstrip() in pages[name]
    assert pages["index"].startswith("# Command-line reference")
    assert ref.cli_pages("zh_CN")["index"].startswith("# 命令行参考")


def test_pages_follow_the_language():
    assert ref.rosetta_page("returns", "en").startswith("# Rosetta stone: returns")
    zh = ref.rosetta_page("returns", "zh_CN")
    assert zh.startswith("# 罗塞塔石碑：returns")
    assert "`duetrl diff returns`" in zh
    assert ref.language_of("zh_CN") == "zh_CN" and ref.language_of(None) == "en"


def test_a_module_that_cannot_be_imported_stops_the_build():
    with pytest.raises(ImportError, match="duetrl.core.no_such_module"):
        ref.import_or_fail("duetrl.core.no_such_module")


def test_write_pages_rewrites_only_what_changed(tmp_path):
    import os

    folder = tmp_path / "generated"
    ref.write_pages(folder, {"api/a": "# A\n", "cli/b": "# B\n"})
    assert (folder / ".gitignore").read_text() == "*\n!.gitignore\n"
    a = folder / "api" / "a.md"
    past = a.stat().st_mtime_ns - 10**9
    os.utime(a, ns=(past, past))
    ref.write_pages(folder, {"api/a": "# A\n", "cli/c": "# C\n"})
    assert a.stat().st_mtime_ns == past  # unchanged text: untouched
    assert not (folder / "cli" / "b.md").exists()  # stale: removed
    assert (folder / "cli" / "c.md").read_text() == "# C\n"
    ref.write_pages(folder, {"api/a": "# A2\n"})
    assert a.read_text() == "# A2\n"


def test_a_rosetta_page_gives_each_note_once_and_the_index_a_reading_order(pages_en):
    """A note under every block that shows the difference repeated itself up to six times a
    page (the tensor-type note 77 times in the book); it now stands under the first."""
    for name in mirror_names():
        notes = re.findall(r"<li>(.*?)</li>", pages_en[f"rosetta/{name}"])
        assert len(notes) == len(set(notes)), (name, [n for n in notes if notes.count(n) > 1])
    assert sum(len(re.findall(r"<li>", pages_en[f"rosetta/{n}"])) for n in mirror_names()) > 20
    index = pages_en["rosetta/index"]
    order = re.search(r"\*\*Start here\*\*[^\n]*", index).group(0)
    assert re.findall(r"`(\w+) <", order) == list(ref.START_HERE)
    assert "**从这里开始**" in ref.rosetta_index_page("zh_CN")
