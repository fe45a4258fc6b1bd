"""Figures without pyplot: Agg canvas, fixed font, reproducible PNG bytes.

Figures are built on ``matplotlib.figure.Figure`` with an explicit Agg canvas,
so no global pyplot state, no GUI backend, and nothing to close.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ft2font import FT2Font

FONT = "DejaVu Sans"  # ships with matplotlib: the same glyphs on every machine
SPACE_MARK = "\u2423"  # open box: makes a token's leading space visible
MISSING_GLYPH = "\ufffd"  # shown for a character the font cannot draw
ELLIPSIS = "\u2026"
DPI = 110


def new_figure(width: float, height: float) -> Figure:
    """A blank figure of the given size in inches, with an Agg canvas."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_png(fig: Figure, path: Path) -> Path:
    """Write a PNG without the software/version stamp, so equal figures give equal bytes."""
    fig.savefig(path, format="png", dpi=DPI, metadata={"Software": None})
    return path


@lru_cache(maxsize=1)
def _font() -> FT2Font:
    return FT2Font(font_manager.findfont(FONT, fallback_to_default=True))


@lru_cache(maxsize=4096)
def _drawable(char: str) -> bool:
    return _font().get_char_index(ord(char)) != 0


def plot_label(token: str, max_chars: int = 9) -> str:
    """Token text as drawn in a plot: spaces shown as an open box, long text cut with an ellipsis.

    Characters the plot font lacks (e.g. CJK) become U+FFFD; the CSV keeps the exact text.
    """
    text = "".join(c if _drawable(c) else MISSING_GLYPH for c in str(token).replace(" ", SPACE_MARK))
    if len(text) > max_chars:
        return text[: max_chars - 1] + ELLIPSIS
    return text


def text_colour(rgba: tuple[float, ...]) -> str:
    """Black or white, whichever reads better on a cell of this colour."""
    r, g, b = rgba[:3]
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"
