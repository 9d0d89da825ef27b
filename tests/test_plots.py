"""Figures show every series their legend names (core/plots.py), checked on rendered pixels.

Issue 23: a frontier figure named "RLOO, beta = 0.1" in its legend and drew nothing (one point
as a line with no marker), and where torch and tf agreed the tf curve covered the torch one.
Each check renders a small figure and looks for each labelled series' colour in its pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from duetrl.core import plots


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
