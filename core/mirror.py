"""The mirror between ``backends/torch`` and ``backends/tf``, measured and shown side by side.

Each backend file has a twin of the same name. A line is *shared* when the two files align it
with an identical line (``difflib.SequenceMatcher`` over whole lines); the rest are lines only
in torch or only in tf. The share of differing lines of a pair is

    differing = max(only_in_torch, only_in_tf) / max(len(torch_file), len(tf_file))

and the house rule is ``differing < 0.30``: above it, a reader of ``duetrl diff`` sees more
than the framework differences. A file where a framework truly forces more says why at its
top (docstring or comment) and has its own limit in MIRROR_EXCEPTIONS.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

MIRROR_LIMIT = 0.30
"""Largest share of differing lines allowed for a mirrored pair."""

MIRROR_EXCEPTIONS: dict[str, float] = {
    "gpt": 0.33,  # Keras builds each layer in __init__ and takes **kwargs: 32%
    "optim": 0.42,  # torch steps one flat buffer, TF one fused kernel per parameter: 40%
}
"""Pairs allowed above MIRROR_LIMIT, with their own limit (the file's header says why)."""


@dataclass(frozen=True)
class AlignedRow:
    """One row of the side-by-side view: ``tag`` is ``=`` (same), ``|`` (changed),
    ``<`` (torch only) or ``>`` (tf only); a missing side is ``None``."""

    tag: str
    torch_line: str | None
    tf_line: str | None


@dataclass(frozen=True)
class MirrorPair:
    """The comparison of one pair of backend files."""

    name: str
    torch_lines: int
    tf_lines: int
    only_torch: int
    only_tf: int
    rows: list[AlignedRow]

    @property
    def differing(self) -> float:
        """max(lines only in torch, lines only in tf) / longer file."""
        longest = max(self.torch_lines, self.tf_lines)
        return max(self.only_torch, self.only_tf) / longest if longest else 0.0


def backend_folder(backend: str) -> Path:
    """Folder of a backend's source files (in the checkout or in site-packages)."""
    import duetrl.backends

    if backend not in ("torch", "tf"):
        raise ValueError(f"backend: expected 'torch' or 'tf', got {backend!r}")
    return Path(duetrl.backends.__file__).parent / backend


def mirror_names() -> list[str]:
    """Names (without ``.py``) of the mirrored backend files, sorted."""
    return sorted(path.stem for path in backend_folder("torch").glob("*.py"))


def compare_pair(name: str) -> MirrorPair:
    """Align ``backends/torch/NAME.py`` with ``backends/tf/NAME.py`` line by line."""
    names = mirror_names()
    stem = name.removesuffix(".py")
    if stem not in names:
        raise ValueError(f"NAME: expected one of {', '.join(names)}, got {name!r}")
    torch_lines = (backend_folder("torch") / f"{stem}.py").read_text().splitlines()
    tf_lines = (backend_folder("tf") / f"{stem}.py").read_text().splitlines()
    matcher = difflib.SequenceMatcher(a=torch_lines, b=tf_lines, autojunk=False)
    rows: list[AlignedRow] = []
    only_torch = only_tf = 0
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            rows += [AlignedRow("=", torch_lines[i], tf_lines[j])
                     for i, j in zip(range(i1, i2), range(j1, j2))]
            continue
        only_torch += i2 - i1
        only_tf += j2 - j1
        for k in range(max(i2 - i1, j2 - j1)):
            left = torch_lines[i1 + k] if i1 + k < i2 else None
            right = tf_lines[j1 + k] if j1 + k < j2 else None
            if left is not None and right is not None:
                rows.append(AlignedRow("|", left, right))
            else:
                rows.append(AlignedRow("<" if right is None else ">", left, right))
    return MirrorPair(stem, len(torch_lines), len(tf_lines), only_torch, only_tf, rows)


def mirror_table() -> list[MirrorPair]:
    """Every mirrored pair, sorted by name."""
    return [compare_pair(name) for name in mirror_names()]


def side_by_side(pair: MirrorPair, width: int = 160, only_differences: bool = False) -> str:
    """The two files in two columns, differing rows marked ``|``, ``<`` or ``>``."""
    column = (width - 3) // 2
    lines = [f"{'backends/torch/' + pair.name + '.py':<{column}} | backends/tf/{pair.name}.py"]
    lines.append("-" * width)

    def cell(text: str | None) -> str:
        text = (text or "").expandtabs(4)
        return text if len(text) <= column else text[: column - 1] + "…"

    for row in pair.rows:
        if only_differences and row.tag == "=":
            continue
        mark = " " if row.tag == "=" else row.tag
        lines.append(f"{cell(row.torch_line):<{column}} {mark} {cell(row.tf_line)}")
    lines.append("-" * width)
    lines.append(
        f"{pair.name}: {pair.torch_lines} lines torch, {pair.tf_lines} lines tf; "
        f"only in torch {pair.only_torch}, only in tf {pair.only_tf}; "
        f"differing {pair.differing:.0%} "
        f"(limit {MIRROR_EXCEPTIONS.get(pair.name, MIRROR_LIMIT):.0%})"
    )
    return "\n".join(lines)
