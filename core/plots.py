"""Figures: attention heat maps and learning curves (matplotlib, saved as PNG, no screen)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from duetrl.core.tutorial import show_saved_figure


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (no screen needed)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: works on a machine with no screen
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path) -> Path:
    """Write ``fig`` to ``path`` (folders created), free it, and show it if in a notebook."""
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
    show_saved_figure(path)  # inline in a notebook (and in the book); nothing in a script
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
        if key_labels is not None:
            ax.set_xticks(range(len(key_labels)), key_labels, rotation=90, fontsize=7)
        if query_labels is not None:
            ax.set_yticks(range(len(query_labels)), query_labels, fontsize=7)
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
