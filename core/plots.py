"""Figures: attention heat maps and learning curves (matplotlib, saved as PNG, no screen).

Every figure goes through :func:`save_figure`, which first makes every series its legend
names visible (:func:`show_every_series`): a single point gets a marker (a line through one
point draws nothing), and a series that lies on an earlier one (torch and tf agreeing) is drawn
dashed, its legend entry saying so. A legend entry that still draws nothing is an error.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from duetrl.core.figure_language import (
    FIGURE_LANGUAGES,
    PNG_FIGURE_KEY,
    PNG_LANGUAGE_KEY,
    figure_languages,
    keep_verbatim,
    save_twin,
)
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


def _ring(line, ax, ring: dict[int, int]) -> int:
    """The ring of a marked ``line`` that lies on earlier ones: one wider than the widest ring
    among the earlier labelled lines of its kind that it lies on, whatever their group (two
    groups' members can meet where the groups' first series do not), so no two rings at one
    place have one size. ``ring`` holds the rings given so far, by ``id``: called in drawing
    order, every earlier line already has its own."""
    earlier = [other for other in ax.get_lines()[:ax.get_lines().index(line)]
               if _labelled(other) and _kind(other) == _kind(line)
               and _overlap(line, other, ax) >= 0.5]
    ring[id(line)] = 1 + max((ring.get(id(other), 0) for other in earlier), default=0)
    return ring[id(line)]


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
        ring: dict[int, int] = {}  # id(marked line on others) -> its ring, in drawing order
        covering = {id(line) for members in groups.values() for line in members[1:]}
        for line in ax.get_lines():
            if id(line) in covering and line.get_marker() not in NO_MARKER:
                _ring(line, ax, ring)
        for first, members in groups.items():
            n, dash = len(members), DASH
            for j, line in enumerate(members[1:], start=1):
                if len(_points(line)[0]) > 1:
                    line.set_linestyle((((n - j + 1) % n) * dash, (dash, (n - 1) * dash)))
                if line.get_marker() not in NO_MARKER:  # a ring around the markers it covers
                    line.set_markerfacecolor("none")
                    line.set_markersize(line.get_markersize() + 4.0 * ring[id(line)])
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
