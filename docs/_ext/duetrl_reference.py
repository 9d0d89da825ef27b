"""Sphinx extension: the book's reference pages, written from the code at every build.

On ``builder-inited`` it writes MyST pages into ``docs/generated/`` (git-ignored):

- ``generated/api/``: one page per module of ``duetrl.core`` (an ``automodule`` each, so the
  docstrings and their equations are the text) and one per mirrored backend file, with the
  PyTorch and the TensorFlow module side by side;
- ``generated/rosetta/``: per mirrored backend file, the two versions aligned line by line
  exactly as ``duetrl diff`` aligns them (``duetrl.core.mirror.compare_pair``), the differing
  rows marked, and under each differing hunk a short note on what differs, picked by the rules
  in ``NOTE_RULES``;
- ``generated/cli/``: the ``--help`` of every command and sub-command of ``duetrl``.

Pages are in the build's language (``app.config.language``: ``en`` or ``zh_CN``). A module
that cannot be imported stops the build: a reference with a page silently missing is worse
than no reference.
"""

from __future__ import annotations

import html
import importlib
import os
import pkgutil
import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # names for the type hints only; Sphinx and duetrl load when they are used
    import argparse

    from sphinx.application import Sphinx
    from sphinx.config import Config

    from duetrl.core.mirror import AlignedRow, MirrorPair

GENERATED = Path(__file__).resolve().parent.parent / "generated"
"""Where the pages go (``docs/generated``)."""

STATIC = Path(__file__).resolve().parent.parent / "_static"
"""Folder of ``reference.css``."""

GITIGNORE = "*\n!.gitignore\n"

HEADINGS = {
    "en": {
        "api": "API reference",
        "api_core": "Core modules (framework-neutral)",
        "api_backends": "Backend modules: PyTorch and TensorFlow side by side",
        "api_package": "Modules of this package",
        "backend_page": "Backend module {name}: PyTorch and TensorFlow",
        "rosetta": "Rosetta stone: PyTorch and TensorFlow line by line",
        "rosetta_page": "Rosetta stone: {name}",
        "cli": "Command-line reference",
        "cli_page": "duetrl {name}",
        "file": "file",
        "torch_lines": "torch lines",
        "tf_lines": "tf lines",
        "only_torch": "only in torch",
        "only_tf": "only in tf",
        "differing": "differing",
        "all": "all",
        "summary": ("{torch} lines in PyTorch, {tf} in TensorFlow; {only_torch} only in torch, "
                    "{only_tf} only in tf: {differing:.0%} of the lines differ (limit {limit:.0%})."
                    " Rows marked `|` differ, `<` are only in torch, `>` only in tf; the notes"
                    " under a block say what the difference is. The same view in a terminal:"
                    " `duetrl diff {name}`."),
        "start_here": "**Start here**, in this order (each builds on the ones before):",
        "rosetta_intro": ("Every backend file exists twice, once per framework, with the same "
                          "names, order and comments, so that the lines that differ are exactly "
                          "the framework differences. This table is `duetrl diff --all`: the share "
                          "of differing lines is max(only in torch, only in tf) / longer file."),
        "api_intro": ("Generated from the docstrings. The core is written once and imports no "
                      "framework; each backend module has a PyTorch and a TensorFlow twin, shown "
                      "side by side."),
        "cli_intro": ("Every command of `duetrl`, with its `--help`. Run `duetrl COMMAND --help` "
                      "for the same text in a terminal."),
        "subcommands": "Sub-commands",
    },
    "zh_CN": {
        "api": "API 参考",
        "api_core": "核心模块（与框架无关）",
        "api_backends": "后端模块：PyTorch 与 TensorFlow 并排",
        "api_package": "本包的模块",
        "backend_page": "后端模块 {name}：PyTorch 与 TensorFlow",
        "rosetta": "罗塞塔石碑：PyTorch 与 TensorFlow 逐行对照",
        "rosetta_page": "罗塞塔石碑：{name}",
        "cli": "命令行参考",
        "cli_page": "duetrl {name}",
        "file": "文件",
        "torch_lines": "torch 行数",
        "tf_lines": "tf 行数",
        "only_torch": "仅 torch",
        "only_tf": "仅 tf",
        "differing": "不同比例",
        "all": "全部",
        "summary": ("PyTorch 版 {torch} 行，TensorFlow 版 {tf} 行；仅 torch 有 {only_torch} 行，"
                    "仅 tf 有 {only_tf} 行：{differing:.0%} 的行不同（上限 {limit:.0%}）。"
                    "标记 `|` 的行不同，`<` 仅在 torch 中，`>` 仅在 tf 中；每个差异块下方的注释"
                    "说明差异是什么。终端中的同一视图：`duetrl diff {name}`。"),
        "start_here": "**从这里开始**，按此顺序阅读（每个文件都建立在前面的文件之上）：",
        "rosetta_intro": ("每个后端文件都有两份，每个框架一份，名称、顺序和注释都相同，因此不同的行"
                          "恰好就是框架之间的差异。下表即 `duetrl diff --all`：不同比例 = "
                          "max(仅 torch, 仅 tf) / 较长文件的行数。"),
        "api_intro": ("由文档字符串生成。核心只写一次，不导入任何框架；每个后端模块都有 PyTorch "
                      "和 TensorFlow 两个版本，并排显示。"),
        "cli_intro": ("`duetrl` 的每个命令及其 `--help`。在终端中运行 "
                      "`duetrl COMMAND --help` 可看到相同内容。"),
        "subcommands": "子命令",
    },
}
"""Generator text per language; the docstrings and help texts themselves stay in English."""


@dataclass(frozen=True)
class NoteRule:
    """Recognises one kind of framework difference in a differing hunk.

    The rule fires when the torch side of the hunk matches ``torch`` or the tf side matches
    ``tf`` (regular expressions; an empty pattern never matches)."""

    key: str
    torch: str
    tf: str
    en: str
    zh_CN: str


NOTE_RULES: tuple[NoteRule, ...] = (
    NoteRule(
        "graph", r"torch\.compile", r"tf\.function|TensorSpec|executing_eagerly|reduce_retracing",
        "`tf.function` traces the TensorFlow code into a graph once per input signature (eager "
        "Keras is several times slower); Python in it runs only while tracing. PyTorch runs "
        "eagerly, op by op.",
        "`tf.function` 按输入签名把 TensorFlow 代码追踪成计算图（即时执行的 Keras 慢数倍）；"
        "其中的 Python 代码只在追踪时运行。PyTorch 逐个算子即时执行。"),
    NoteRule(
        "gradients", r"\.backward\(|zero_grad|optimizer\.step\(|autograd\.grad",
        r"GradientTape|tape\.gradient",
        "Gradients: PyTorch records every op on tensors that require grad, and `backward()` or "
        "`torch.autograd.grad` walks that record; TensorFlow records only inside a "
        "`tf.GradientTape` block, and `tape.gradient` reads it.",
        "梯度：PyTorch 记录对需要梯度的张量的每个运算，由 `backward()` 或 `torch.autograd.grad` "
        "反向遍历；TensorFlow 只在 `tf.GradientTape` 块内记录，由 `tape.gradient` 读取。"),
    NoteRule(
        "inference", r"no_grad|inference_mode|\.detach\(", r"training\s*=|stop_gradient",
        "Inference: torch switches autograd off (`torch.no_grad()`, `torch.inference_mode()`) "
        "or detaches results; TensorFlow records nothing outside a tape, and Keras layers such "
        "as dropout take a `training` flag instead.",
        "推理：torch 关闭自动求导（`torch.no_grad()`、`torch.inference_mode()`）或对结果 "
        "detach；TensorFlow 在 tape 之外本就不记录，"
        "Keras 的层（如 dropout）改用 `training` 参数。"),
    NoteRule(
        "module", r"nn\.Module|def forward\(", r"layers\.Layer|keras\.Model|def call\(",
        "Model classes: a `torch.nn.Module` computes in `forward`; a Keras `keras.layers.Layer` "
        "computes in `call`.",
        "模型类：`torch.nn.Module` 在 `forward` 中计算；Keras 的 `keras.layers.Layer` 在 "
        "`call` 中计算。"),
    NoteRule(
        "build", r"", r"\.build\(|def build\(|get_config|from_config",
        "Keras creates a layer's weights lazily, in `build()`, once the input size is known, and "
        "serialises its settings with `get_config()`; PyTorch creates them in `__init__`.",
        "Keras 在 `build()` 中延迟创建层的权重（输入大小已知之后），并用 `get_config()` "
        "序列化其设置；PyTorch 在 `__init__` 中创建。"),
    NoteRule(
        "parameters", r"\.parameters\(\)|nn\.Parameter|\.weight\b|state_dict|nn\.init\.",
        r"add_weight|trainable_variables|\.weights\b|\.kernel\b|\.gamma\b|\.beta\b|"
        r"\.embeddings\b|tf\.Variable",
        "Parameters: torch's are `nn.Parameter`s (`.parameters()`, a Linear's `weight` stored "
        "(out, in)); Keras' are variables (`add_weight`, `trainable_variables`, a Dense's "
        "`kernel` stored (in, out), LayerNormalization's `gamma`/`beta`).",
        "参数：torch 的参数是 `nn.Parameter`（`.parameters()`，Linear 的 `weight` 形状为 "
        "(out, in)）；Keras 的参数是变量（`add_weight`、`trainable_variables`，Dense 的 "
        "`kernel` 形状为 (in, out)，LayerNormalization 的 `gamma`/`beta`）。"),
    NoteRule(
        "layout", r"\.transpose\(|\.permute\(|\.view\(|\.reshape\(|\.unsqueeze\(|\.squeeze\(",
        r"tf\.transpose|tf\.reshape|expand_dims|tf\.squeeze",
        "Layouts: torch's `x.transpose(1, 2)` swaps two axes and `view`/`reshape` are methods; "
        "`tf.transpose(x, perm)` takes the whole permutation and `tf.reshape` is a function.",
        "布局：torch 的 `x.transpose(1, 2)` 交换两个轴，`view`/`reshape` 是方法；"
        "`tf.transpose(x, perm)` 需要完整的轴排列，`tf.reshape` 是函数。"),
    NoteRule(
        "epsilon", r"\beps\b|\b\d(\.\d+)?e-\d+\b", r"\bepsilon\b|\b\d(\.\d+)?e-\d+\b",
        "Epsilons: the frameworks name them differently (`eps` vs `epsilon`) and default "
        "differently (LayerNorm 1e-5 vs 1e-3, Adam 1e-8 vs 1e-7); duetrl pins every one in "
        "`duetrl.core.constants` and passes it explicitly.",
        "epsilon：两个框架命名不同（`eps` 与 `epsilon`），默认值也不同（LayerNorm 1e-5 与 "
        "1e-3，Adam 1e-8 与 1e-7）；duetrl 在 `duetrl.core.constants` 中固定每一个并显式传入。"),
    NoteRule(
        "dtype", r"\.(double|float|long|int|bool)\(\)|\.to\(|\bdevice\b",
        r"tf\.cast\(|dtype_policy|\.astype\(",
        "Dtypes and devices: torch converts with tensor methods (`.double()`, `.long()`, "
        "`.to(device)`); TensorFlow with `tf.cast`, and a Keras layer carries a dtype policy.",
        "数据类型与设备：torch 用张量方法转换（`.double()`、`.long()`、`.to(device)`）；"
        "TensorFlow 用 `tf.cast`，Keras 的层带有 dtype 策略。"),
    NoteRule(
        "numpy", r"\.numpy\(\)|as_tensor|from_numpy|\.item\(\)|\.cpu\(\)",
        r"\.numpy\(\)|convert_to_tensor|tf\.constant",
        "NumPy: `torch.as_tensor`/`torch.from_numpy` share memory with the array where they can "
        "and `.numpy()` needs a detached CPU tensor; `tf.convert_to_tensor`/`tf.constant` copy, "
        "and `.numpy()` works on eager tensors only.",
        "NumPy：`torch.as_tensor`/`torch.from_numpy` 尽可能与数组共享内存，`.numpy()` 需要已 "
        "detach 的 CPU 张量；`tf.convert_to_tensor`/`tf.constant` 会复制，`.numpy()` "
        "只适用于即时张量。"),
    NoteRule(
        "mutation", r"\w_\(|\.copy_\(|fill_\(|\w\[[^\]]+\]\s*=[^=]",
        r"\.assign(_sub|_add)?\(|TensorArray|\.write\(|tensor_scatter",
        "State: torch tensors are mutable (in-place methods end in `_`, slices can be assigned); "
        "TensorFlow tensors are immutable, a `tf.Variable` changes through `assign`, and a loop "
        "collects its outputs in a `tf.TensorArray`.",
        "状态：torch 张量可变（原地方法以 `_` 结尾，可对切片赋值）；TensorFlow 张量不可变，"
        "`tf.Variable` 通过 `assign` 改变，循环用 `tf.TensorArray` 收集输出。"),
    NoteRule(
        "reduce", r"\.(sum|mean|max|min|std|var)\(|torch\.(sum|mean|max|min)\(|\bdim=|keepdim=",
        r"reduce_(sum|mean|max|min|std|variance)|\baxis=|keepdims=",
        "Reductions: torch writes `x.sum(dim=1, keepdim=True)`; TensorFlow "
        "`tf.reduce_sum(x, axis=1, keepdims=True)`.",
        "归约：torch 写作 `x.sum(dim=1, keepdim=True)`；TensorFlow 写作 "
        "`tf.reduce_sum(x, axis=1, keepdims=True)`。"),
    NoteRule(
        "mask", r"masked_fill|torch\.where", r"tf\.where",
        "Masking: torch `x.masked_fill(mask, value)`; TensorFlow `tf.where(mask, value, x)`, "
        "with the value cast to x's dtype.",
        "掩码：torch 用 `x.masked_fill(mask, value)`；TensorFlow 用 `tf.where(mask, value, x)`，"
        "并把 value 转换成 x 的数据类型。"),
    NoteRule(
        "clip", r"clamp\(", r"clip_by_value|tf\.minimum|tf\.maximum",
        "Clipping: torch `torch.clamp(x, min, max)`; TensorFlow `tf.clip_by_value` or "
        "`tf.minimum`/`tf.maximum`.",
        "截断：torch 用 `torch.clamp(x, min, max)`；TensorFlow 用 `tf.clip_by_value` 或 "
        "`tf.minimum`/`tf.maximum`。"),
    NoteRule(
        "functional", r"\bF\.\w+|nn\.functional", r"tf\.nn\.\w+|\bops\.\w+|activations\.",
        "Functional ops: torch keeps them in `torch.nn.functional` (`F`), TensorFlow in `tf.nn` "
        "and Keras in `keras.ops`, sometimes under other names (`F.cross_entropy` vs "
        "`tf.nn.sparse_softmax_cross_entropy_with_logits`).",
        "函数式算子：torch 放在 `torch.nn.functional`（`F`）中，TensorFlow 放在 `tf.nn`，Keras "
        "放在 `keras.ops`，名称有时不同（`F.cross_entropy` 与 "
        "`tf.nn.sparse_softmax_cross_entropy_with_logits`）。"),
    NoteRule(
        "imports", r"^\s*(import torch|from torch)|duetrl\.backends\.torch",
        r"^\s*(import tensorflow|from tensorflow|import keras|from keras)|duetrl\.backends\.tf",
        "Imports: each file imports its own framework and its own backend's modules.",
        "导入：每个文件导入自己的框架和本后端的模块。"),
    NoteRule(
        "tensor_type", r"torch\.Tensor|\bTensor\b", r"tf\.Tensor|\bTensor\b",
        "Type hints name each framework's tensor class (`torch.Tensor`, `tf.Tensor`).",
        "类型注解使用各框架的张量类（`torch.Tensor`、`tf.Tensor`）。"),
)
"""What a differing hunk can show, with the note a reader sees under it (English, Chinese)."""


def language_of(language: str | None) -> str:
    """``zh_CN`` for a Chinese build, ``en`` for everything else."""
    return "zh_CN" if (language or "").startswith("zh") else "en"


def text(key: str, language: str | None) -> str:
    """The generator's text ``key`` in the page language."""
    return HEADINGS[language_of(language)][key]


def markdown_escape(name: str) -> str:
    """``__init__`` -> ``\\_\\_init\\_\\_``: in a heading, Markdown would make it bold."""
    return name.replace("_", "\\_")


# ---------------------------------------------------------------------------- module lists


def core_modules() -> list[str]:
    """Every module of ``duetrl.core``, the package itself first, each imported (a module that
    fails to import raises: the build must fail, not skip it)."""
    core = import_or_fail("duetrl.core")
    names = ["duetrl.core"]
    names += [info.name for info in pkgutil.walk_packages(core.__path__, "duetrl.core.",
                                                          onerror=_walk_error)]
    for name in names:
        import_or_fail(name)
    return sorted(set(names))


def _walk_error(name: str) -> None:
    raise ImportError(f"duetrl_reference: could not import package {name} while listing it")


def import_or_fail(name: str) -> ModuleType:
    """Import module ``name``; on failure raise ImportError naming it and the cause."""
    try:
        return importlib.import_module(name)
    except Exception as error:  # noqa: BLE001 - any failure must stop the build, named
        raise ImportError(f"duetrl_reference: cannot import {name} for the API reference: "
                          f"{type(error).__name__}: {error}") from error


def backend_module(backend: str, name: str) -> str:
    """Dotted module of mirrored file ``name`` in ``backend`` (``__init__`` is the package)."""
    package = f"duetrl.backends.{backend}"
    return package if name == "__init__" else f"{package}.{name}"


def api_docname(module: str) -> str:
    """``duetrl.core.rl.session`` -> ``core.rl.session`` (page ``generated/api/<that>``)."""
    return module.removeprefix("duetrl.")


# ---------------------------------------------------------------------------- API pages


def automodule(module: str, members: bool = True, exclude: tuple[str, ...] = ()) -> str:
    """An ``automodule`` directive, in reStructuredText (what autodoc generates is reST).
    ``members=False`` shows the module docstring only (a package that re-exports names);
    ``exclude``: members left out."""
    options = "   :members:\n   :show-inheritance:\n" if members else ""
    if members and exclude:
        options += f"   :exclude-members: {', '.join(exclude)}\n"
    return f"```{{eval-rst}}\n.. automodule:: {module}\n{options}```\n"


def shadowed_submodules(module: str) -> tuple[str, ...]:
    """The names a package's ``__all__`` re-exports that are also its submodules' names:
    ``core.run`` re-exports the function ``compare`` of the module ``core.run.compare``, and
    both would be ``duetrl.core.run.compare`` (the function stays on its module's page)."""
    package = importlib.import_module(module)
    if not hasattr(package, "__path__"):
        return ()
    submodules = {info.name for info in pkgutil.iter_modules(package.__path__)}
    return tuple(sorted(set(getattr(package, "__all__", ())) & submodules))


def children_of(package: str, modules: list[str]) -> list[str]:
    """The modules of ``modules`` directly inside ``package`` (``duetrl.core.rlhf`` ->
    ``duetrl.core.rlhf.tasks``, not ``duetrl.core.rlhf.x.y``)."""
    depth = package.count(".") + 1
    return [m for m in modules if m.startswith(package + ".") and m.count(".") == depth]


def core_api_page(module: str, language: str | None = None,
                  children: list[str] | tuple[str, ...] = ()) -> str:
    """The page of one core module; a package's page lists its modules in a toctree, so the
    sidebar is the package tree (each page lists its own package's modules, not all 200)."""
    page = f"# {markdown_escape(module)}\n\n" + automodule(module,
                                                          exclude=shadowed_submodules(module))
    if children:
        entries = "\n".join(api_docname(child) for child in children)
        page += (f"\n## {text('api_package', language)}\n\n"
                 f"```{{toctree}}\n:maxdepth: 1\n\n{entries}\n```\n")
    return page


def backend_api_page(name: str, language: str | None) -> str:
    """The torch and tf modules of mirrored file ``name`` in two columns."""
    columns = []
    for backend, label in (("torch", "PyTorch"), ("tf", "TensorFlow")):
        module = backend_module(backend, name)
        columns.append(f"````{{container}} api-column api-column-{backend}\n"
                       f"```{{rubric}} {label}: {module}\n```\n"
                       f"{automodule(module, members=name != '__init__')}````\n")
    title = text("backend_page", language).format(name=markdown_escape(name))
    return (f"# {title}\n\n`````{{container}} api-columns\n{''.join(columns)}`````\n\n"
            f"{{doc}}`../rosetta/{name}`\n")


def api_index_page(core: list[str], mirrored: list[str], language: str | None) -> str:
    """Index of the API pages, with their toctree."""
    lines = [f"# {text('api', language)}", "", text("api_intro", language), "",
             f"## {text('api_core', language)}", ""]
    lines += [f"- {{doc}}`{module} <{api_docname(module)}>`" for module in core]
    lines += ["", f"## {text('api_backends', language)}", ""]
    lines += [f"- {{doc}}`{name} <backends.{name}>`" for name in mirrored]
    top = ["duetrl.core", *children_of("duetrl.core", core)]  # each package holds the rest
    pages = [api_docname(m) for m in top] + [f"backends.{n}" for n in mirrored]
    lines += ["", "```{toctree}", ":hidden:", ":maxdepth: 1", "", *pages, "```", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- Rosetta stone


def notes_for(torch_lines: list[str], tf_lines: list[str], language: str | None) -> list[str]:
    """The notes of every rule that recognises a difference in one hunk (rule order)."""
    torch_text, tf_text = "\n".join(torch_lines), "\n".join(tf_lines)
    chosen = []
    for rule in NOTE_RULES:
        fires = (rule.torch and re.search(rule.torch, torch_text, re.MULTILINE)) or (
            rule.tf and re.search(rule.tf, tf_text, re.MULTILINE))
        if fires:
            chosen.append(getattr(rule, language_of(language)))
    return chosen


def hunks(rows: list[AlignedRow]) -> list[tuple[int, int]]:
    """``(start, stop)`` row ranges of the runs of differing rows (tag other than ``=``)."""
    found, start = [], None
    for index, row in enumerate(rows):
        if row.tag != "=" and start is None:
            start = index
        elif row.tag == "=" and start is not None:
            found.append((start, index))
            start = None
    if start is not None:
        found.append((start, len(rows)))
    return found


def highlighted_lines(source: str) -> list[str]:
    """The file as HTML, one string per line, highlighted by Pygments (Python lexer)."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    lines = source.splitlines()
    lexer = PythonLexer(stripnl=False, ensurenl=True)
    out = highlight(source, lexer, HtmlFormatter(nowrap=True)).splitlines()
    if len(out) != len(lines):  # a lexer corner case: plain escaped text, never misaligned
        return [html.escape(line) for line in lines]
    return out


ROW_CLASS = {"=": "rosetta-same", "|": "rosetta-changed", "<": "rosetta-torch-only",
             ">": "rosetta-tf-only"}
"""Class of a table row per ``AlignedRow.tag``."""


def inline_code(note: str) -> str:
    """Escape a note for HTML, turning ```x``` into ``<code>x</code>``."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(note, quote=False))


def rosetta_table(pair: MirrorPair, torch_source: str, tf_source: str,
                  language: str | None) -> str:
    """The aligned two-column table of one pair as HTML, with a note row after each hunk."""
    torch_html, tf_html = highlighted_lines(torch_source), highlighted_lines(tf_source)
    hunk_end = {stop - 1: (start, stop) for start, stop in hunks(pair.rows)}
    parts = ['<div class="rosetta highlight"><table class="rosetta-table">',
             f'<thead><tr><th class="rosetta-lineno">#</th><th>backends/torch/{pair.name}.py'
             f'</th><th class="rosetta-mark"></th><th class="rosetta-lineno">#</th>'
             f'<th>backends/tf/{pair.name}.py</th></tr></thead><tbody>']
    torch_no = tf_no = 0
    said: set[str] = set()  # each note once a page, under the first block that shows it
    for index, row in enumerate(pair.rows):
        cells = []
        for line, numbers, lines in ((row.torch_line, "torch", torch_html),
                                     (row.tf_line, "tf", tf_html)):
            if line is None:
                cells.append('<td class="rosetta-lineno"></td><td class="rosetta-code"></td>')
                continue
            if numbers == "torch":
                torch_no += 1
                number = torch_no
            else:
                tf_no += 1
                number = tf_no
            cells.append(f'<td class="rosetta-lineno">{number}</td>'
                         f'<td class="rosetta-code"><code>{lines[number - 1]}</code></td>')
        mark = "" if row.tag == "=" else html.escape(row.tag)
        parts.append(f'<tr class="{ROW_CLASS[row.tag]}">{cells[0]}'
                     f'<td class="rosetta-mark">{mark}</td>{cells[1]}</tr>')
        if index in hunk_end:
            start, stop = hunk_end[index]
            block = pair.rows[start:stop]
            notes = notes_for([r.torch_line for r in block if r.torch_line is not None],
                              [r.tf_line for r in block if r.tf_line is not None], language)
            notes = [note for note in notes if note not in said]
            said.update(notes)
            if notes:
                items = "".join(f"<li>{inline_code(note)}</li>" for note in notes)
                parts.append(f'<tr class="rosetta-note"><td colspan="5"><ul>{items}</ul>'
                             "</td></tr>")
    parts.append("</tbody></table></div>")
    return "\n".join(parts)


def rosetta_page(name: str, language: str | None) -> str:
    """The Rosetta stone page of mirrored file ``name``."""
    from duetrl.core.mirror import MIRROR_EXCEPTIONS, MIRROR_LIMIT, backend_folder, compare_pair

    pair = compare_pair(name)
    torch_source = (backend_folder("torch") / f"{name}.py").read_text()
    tf_source = (backend_folder("tf") / f"{name}.py").read_text()
    summary = text("summary", language).format(
        torch=pair.torch_lines, tf=pair.tf_lines, only_torch=pair.only_torch,
        only_tf=pair.only_tf, differing=pair.differing, name=name,
        limit=MIRROR_EXCEPTIONS.get(name, MIRROR_LIMIT))
    title = text("rosetta_page", language).format(name=markdown_escape(name))
    table = rosetta_table(pair, torch_source, tf_source, language)
    return (f"# {title}\n\n{summary}\n\n{{doc}}`API <../api/backends.{name}>`\n\n"
            f"```{{raw}} html\n{table}\n```\n")


START_HERE = ("attention", "returns", "reinforce", "ppo", "gpt", "generation", "rlhf")
"""The reading order the Rosetta index suggests: each file builds on the ones before it."""


def rosetta_index_page(language: str | None) -> str:
    """The ``duetrl diff --all`` table, each file linked to its page."""
    from duetrl.core.mirror import MIRROR_EXCEPTIONS, MIRROR_LIMIT, mirror_table

    pairs = mirror_table()
    keys = ("file", "torch_lines", "tf_lines", "only_torch", "only_tf", "differing")
    header = [text(key, language) for key in keys]
    known = {p.name for p in pairs}
    order = ", ".join(f"{{doc}}`{name} <{name}>`" for name in START_HERE if name in known)
    lines = [f"# {text('rosetta', language)}", "", text("rosetta_intro", language), "",
             f"{text('start_here', language)} {order}.", "",
             "| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for p in pairs:
        limit = MIRROR_EXCEPTIONS.get(p.name, MIRROR_LIMIT)
        flag = "" if p.differing < limit else f" (> {limit:.0%})"
        lines.append(f"| {{doc}}`{p.name} <{p.name}>` | {p.torch_lines} | {p.tf_lines} | "
                     f"{p.only_torch} | {p.only_tf} | {p.differing:.0%}{flag} |")
    total_long = sum(max(p.torch_lines, p.tf_lines) for p in pairs)
    total_diff = sum(max(p.only_torch, p.only_tf) for p in pairs)
    lines.append(f"| {text('all', language)} | | | | | {total_diff / total_long:.0%} |")
    lines += ["", "```{toctree}", ":hidden:", ":maxdepth: 1", "", *[p.name for p in pairs],
              "```", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- CLI pages


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """``{name: sub-parser}`` of a parser's sub-commands (aliases once), in definition order."""
    import argparse

    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen = set()
            for name, sub in action.choices.items():
                if id(sub) not in seen:
                    seen.add(id(sub))
                    found[name] = sub
    return found


def _sibling(name: str) -> ModuleType:
    """A module of this folder (docs/_ext), imported by name whether or not the folder is on
    ``sys.path`` (Sphinx puts it there, the tests load this file by its path)."""
    import sys

    folder = str(Path(__file__).resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module(name)


def help_text(parser: argparse.ArgumentParser) -> str:
    """``parser.format_help()`` at a fixed width of 100 columns (the same on every machine)."""
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        return parser.format_help()
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous


def help_sections(parser: argparse.ArgumentParser, level: int) -> list[str]:
    """The parser's help, then each sub-command's, one heading level deeper."""
    lines = ["```text", help_text(parser).rstrip(), "```", ""]
    for sub in subcommands(parser).values():
        lines += [f"{'#' * level} {sub.prog}", ""] + help_sections(sub, level + 1)
    return lines


def cli_pages(language: str | None) -> dict[str, str]:
    """``{docname under generated/cli: page}``: the index and one page per command."""
    from duetrl.core.cli import build_parser

    cli_help = _sibling("duetrl_cli_help")

    language = language_of(language)
    # the help's strings in the page's language: docs/locale/<language>/cli_help.po
    table = {} if language == "en" else cli_help.read_catalogue(cli_help.catalogue_path(language))
    with cli_help.argparse_words(table):  # argparse's own words, at build and at format time
        parser = build_parser()
        if table:
            cli_help.translate_parser(parser, table, language)
        commands = subcommands(parser)
        index = [f"# {text('cli', language)}", "", text("cli_intro", language), "",
                 "```text", help_text(parser).rstrip(), "```", "",
                 f"## {text('subcommands', language)}", ""]
        index += [f"- {{doc}}`duetrl {name} <{name}>`" for name in commands]
        index += ["", "```{toctree}", ":hidden:", ":maxdepth: 1", "", *commands, "```", ""]
        pages = {"index": "\n".join(index)}
        for name, sub in commands.items():
            title = text("cli_page", language).format(name=markdown_escape(name))
            pages[name] = "\n".join([f"# {title}", "", *help_sections(sub, 2)])
    return pages


# ---------------------------------------------------------------------------- docstrings

TABLE_BORDER = re.compile(r"^\s*=+( +=+)+\s*$")
"""A border line of a reST simple table (``=====  =====``)."""

MARKUP_START = re.compile(r"^\s*(\.\. |:[^:]+:|[-*+] |\d+[.)] |>>>)")
"""Lines whose indented continuation is reST structure (directive, field, list, doctest)."""


LITERAL = ".. code-block:: text"
"""Opens the literal blocks made here: monospace, and not coloured as if it were Python."""


def indent_of(line: str) -> int:
    """Number of leading spaces."""
    return len(line) - len(line.lstrip(" "))


def escape_bars(line: str) -> str:
    """``|x|`` is a reST substitution; in plain-text docstrings it is an absolute value or a
    conditional bar. Escape every ``|`` outside ````literal```` spans."""
    parts = re.split(r"(``.*?``)", line)
    return "".join(part if i % 2 else part.replace("|", "\\|") for i, part in enumerate(parts))


def table_is_valid(table: list[str]) -> bool:
    """Whether docutils will parse this simple table: no text in the gaps between the border's
    columns (the last column may run on) and no ``|`` outside literals (a substitution)."""
    border = table[0].rstrip()
    gaps = [i for i, char in enumerate(border) if char == " " and i >= indent_of(border)]
    for row in table:
        if TABLE_BORDER.match(row):
            continue
        if any(i < len(row) and row[i] != " " for i in gaps):
            return False
        if escape_bars(row) != row:
            return False
    return True


def table_lines(table: list[str]) -> list[str]:
    """A simple table as it is if docutils can read it, else as a literal block."""
    if table_is_valid(table):
        return table
    indent = " " * indent_of(table[0])
    return [f"{indent}{LITERAL}", "", *(f"{indent}    {row}" for row in table), ""]


def readable_docstring(lines: list[str]) -> list[str]:
    """Make a plain-text docstring (after Napoleon) valid reST without changing its words.

    The docstrings write equations as indented blocks under a sentence, often with no blank
    line, and tables as reST simple tables. Here an indented block that is not the body of a
    directive, field, list or ``::`` paragraph becomes a literal block (monospace: the
    equation's alignment is kept), blank lines go where reST needs them, ``|`` is escaped
    outside literals, and a table docutils would reject is shown as a literal block."""
    out: list[str] = []
    literal_indent = None  # indentation of the paragraph that opened a literal block
    table: list[str] = []  # lines of the simple table being read
    paragraph_first = ""  # first line of the current paragraph
    for line in [*lines, ""]:  # a blank line at the end closes a table or a literal block
        blank = not line.strip()
        if table:
            if blank and TABLE_BORDER.match(table[-1]):  # a blank after a border ends it
                out += table_lines(table)
                table = []
            else:
                table.append(line)
                continue
        previous = out[-1] if out else ""
        if literal_indent is not None:
            if blank or indent_of(line) > literal_indent:
                out.append(line)
                continue
            literal_indent = None  # the literal block ends: reST wants a blank line first
            if previous.strip():
                out.append("")
            previous = ""
        if TABLE_BORDER.match(line):
            table = [line]
            continue
        if blank:
            out.append(line)
            continue
        deeper = paragraph_first and indent_of(line) > indent_of(paragraph_first)
        if deeper and not MARKUP_START.match(paragraph_first):
            last_text = next((x for x in reversed(out) if x.strip()), "")
            if previous.strip():
                out.append("")
            if not last_text.rstrip().endswith("::"):
                out += [" " * indent_of(paragraph_first) + LITERAL, ""]
            literal_indent = indent_of(paragraph_first)
            out.append(line)
            continue
        if not previous.strip():
            paragraph_first = line
        out.append(escape_bars(line))
    return out + table  # a table still open at the end (no closing border): as written


def on_process_docstring(app: Sphinx, what: str, name: str, obj: object, options: dict,
                          lines: list[str]) -> None:
    """Sphinx hook (after Napoleon): rewrite ``lines`` in place with readable_docstring."""
    lines[:] = readable_docstring(lines)


def skip_module_members(app: Sphinx, what: str, name: str, obj: object, skip: bool,
                        options: dict) -> bool | None:
    """Sphinx hook: a module held as an attribute (``objectives = objectives`` on a learner) is
    not documented: its value would print as ``<module '...' from '/path/of/the/build'>``, a
    path of the machine that built the book."""
    import types

    return True if isinstance(obj, types.ModuleType) else None


# ---------------------------------------------------------------------------- writing


def all_pages(language: str | None) -> dict[str, str]:
    """Every generated page: ``{path relative to docs/generated (no suffix): MyST text}``."""
    from duetrl.core.mirror import mirror_names

    core = core_modules()
    mirrored = mirror_names()
    for name in mirrored:  # torch before tensorflow (DESIGN.md), and fail here, named
        import_or_fail(backend_module("torch", name))
    for name in mirrored:
        import_or_fail(backend_module("tf", name))
    pages = {"api/index": api_index_page(core, mirrored, language)}
    pages.update({f"api/{api_docname(m)}": core_api_page(  # the index holds core's children
        m, language, children_of(m, core) if m != "duetrl.core" else ()) for m in core})
    pages.update({f"api/backends.{n}": backend_api_page(n, language) for n in mirrored})
    pages["rosetta/index"] = rosetta_index_page(language)
    pages.update({f"rosetta/{n}": rosetta_page(n, language) for n in mirrored})
    pages.update({f"cli/{k}": v for k, v in cli_pages(language).items()})
    return pages


def write_pages(folder: Path, pages: dict[str, str]) -> list[Path]:
    """Write ``pages`` as ``.md`` files under ``folder``; a file whose text is unchanged is left
    alone (Sphinx then does not re-read it), and stale ``.md`` files are removed."""
    from duetrl.core.checkpoint import atomic_write

    folder.mkdir(parents=True, exist_ok=True)
    gitignore = folder / ".gitignore"
    if not gitignore.exists() or gitignore.read_text() != GITIGNORE:
        gitignore.write_text(GITIGNORE)
    written = []
    for relative, page in pages.items():
        path = folder / f"{relative}.md"
        written.append(path)
        if path.exists() and path.read_text(encoding="utf-8") == page:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp, page=page: Path(tmp).write_text(page, encoding="utf-8"))
    keep = set(written)
    for stale in folder.rglob("*.md"):
        if stale not in keep:
            stale.unlink()
    return written


def on_builder_inited(app: Sphinx) -> None:
    """Sphinx hook: (re)write every generated page in the build's language."""
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    write_pages(Path(app.srcdir) / "generated", all_pages(app.config.language))


def setup(app: Sphinx) -> dict:
    """Register the hook, autodoc (with Google-style sections) and ``reference.css``."""
    app.setup_extension("sphinx.ext.autodoc")
    app.setup_extension("sphinx.ext.napoleon")
    _sibling("duetrl_book")  # the pages' script, torch / tf tabs, notebook downloads
    app.setup_extension("duetrl_book")
    app.connect("builder-inited", on_builder_inited)
    app.connect("autodoc-process-docstring", on_process_docstring, priority=600)
    app.connect("autodoc-skip-member", skip_module_members)
    app.connect("config-inited", _add_static_path)
    app.add_css_file("reference.css")
    _repair_chinese_search(app)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}


def _repair_chinese_search(app: Sphinx) -> None:
    """Sphinx 9.0's Chinese search writes ``window.Stemmer = ChineseStemmer;`` into
    ``language_data.js`` but bundles only the English stemmer (the one its Python side uses for
    Latin words): every zh_CN page then throws a ReferenceError and the search finds nothing
    (the browser test caught it). The same search, naming the stemmer it really ships."""
    from sphinx.search.zh import SearchChinese

    class ChineseSearch(SearchChinese):
        language_name = "English"  # only used to name the JavaScript stemmer (and in logs)

    app.add_search_language(ChineseSearch)


def _add_static_path(app: Sphinx, config: Config) -> None:
    """Copy ``docs/_static`` (with reference.css) whatever conf.py lists, and document only a
    member's own docstring: torch's ``Module.forward`` text is no help on our ``forward``."""
    config.autodoc_inherit_docstrings = False
    # the two backends define the same names on purpose (a mirror), so a type hint such as
    # ``Agent`` has several targets; that is the design, not a broken reference
    config.suppress_warnings = [*config.suppress_warnings, "ref.python"]
    # pydata-sphinx-theme logs "Got invalid theme mode" (a console error) on a first visit
    # unless a default colour mode is set (a template variable, so in html_context)
    config.html_context = {"default_mode": "auto", **config.html_context}
    listed = {(Path(app.confdir) / p).resolve() for p in config.html_static_path}
    if STATIC.resolve() not in listed:
        config.html_static_path.append(str(STATIC))
