"""Plot labels and reproducible figures."""

from __future__ import annotations

from pathlib import Path

from layers_core.reports.plot_style import new_figure, plot_label, save_png, text_colour


def test_plot_label_marks_spaces_and_cuts_long_tokens() -> None:
    assert plot_label(" Berlin") == "\u2423Berlin"
    assert plot_label(" internationalisation") == "\u2423interna\u2026"
    assert len(plot_label("x" * 40)) == 9
    assert plot_label("\u4e2d") == "\ufffd"  # the plot font has no CJK glyphs


def test_equal_figures_give_equal_png_bytes(tmp_path: Path) -> None:
    paths = []
    for i in range(2):
        fig = new_figure(3.0, 2.0)
        fig.add_subplot().plot([0, 1], [1, 0])
        paths.append(save_png(fig, tmp_path / f"{i}.png"))
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert text_colour((0.0, 0.0, 0.0, 1.0)) == "white" and text_colour((1.0, 1.0, 0.8, 1.0)) == "black"
