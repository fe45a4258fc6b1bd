"""``heatmaps-<name>-L<layer>.png``: per card of one SAE, the feature's activation over its heatmap texts.

The cards are stacked in their order, each under a header line (feature, category,
holds, its colour scale): rows are the card's ``texts`` (labelled by text_id, half and
the positions shown), columns token positions, at most ``HEATMAP_TOKENS`` per row around
the row's peak (fewer when every text is shorter); each cell holds its token (spaces as
``␣``, newlines ``↵``, characters the font lacks as U+FFFD, cut to a few characters).
Each card has its own colour scale, from 0 to the card's largest activation (contexts
included, as the HTML's shading): the cells show value / that largest, on one colour
bar. Past a text's end a cell is blank. One axes, a fixed layout and no per-card colour
bar keep the figure quick to draw.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from layers_core.reports.formats import fmt_at
from layers_core.reports.plot_style import new_figure, plot_label, save_png, text_colour
from sae_features.reports.card_common import (
    HEATMAP_TOKENS,
    card_title,
    fmt_activation,
    heatmap_slice,
    heatmaps_path,
)
from sae_features.reports.feature_card_data import FeatureCard
from sae_features.reports.token_text import visible

CMAP = "Oranges"
CELL_CHARS = 6
LABEL_INCHES, CELL_INCHES, ROW_INCHES = 2.8, 0.3, 0.42
MIN_COLUMNS = 12  # room for the title over short texts


def heatmap_rows(cards: list[FeatureCard], cap: int) -> tuple[np.ndarray, list[str], list[list[str]]]:
    """The stacked grid (value / card's largest; NaN: blank), a label per row and the tokens per row.

    Each card takes a header row (its label is the card's title) and one row per text, ``cap`` columns.
    """
    grid: list[np.ndarray] = []
    labels: list[str] = []
    tokens: list[list[str]] = []
    for card in cards:
        top = card.top_activation if card.top_activation > 0 else 1.0
        grid.append(np.full(cap, np.nan))
        labels.append(f"{card_title(card)}: colour 0 to {fmt_activation(top)}" if card.texts
                      else f"{card_title(card)}: no text")
        tokens.append([])
        for text in card.texts:
            shown = heatmap_slice(text.values, cap)
            row = np.full(cap, np.nan)
            row[:shown.stop - shown.start] = np.array(text.values[shown]) / top
            grid.append(row)
            labels.append(f"{plot_label(text.text_id, 18)} ({text.half}) {shown.start + 1}-{shown.stop} of "
                          f"{len(text.values)}")
            tokens.append([plot_label(visible(t), CELL_CHARS) for t in text.tokens[shown]])
    return np.array(grid), labels, tokens


def heatmaps_figure(entry: dict[str, Any], cards: list[FeatureCard], title: str) -> Figure:
    """All cards of one SAE, stacked on one axes (module doc)."""
    columns = max(MIN_COLUMNS, min(HEATMAP_TOKENS, max((len(t.values) for c in cards for t in c.texts), default=0)))
    grid, labels, tokens = heatmap_rows(cards, columns)
    width, height = LABEL_INCHES + CELL_INCHES * columns + 1.2, 1.1 + ROW_INCHES * len(labels)
    fig = new_figure(width, height)
    fig.set_layout_engine("none")
    ax = fig.add_axes((LABEL_INCHES / width, 0.35 / height, CELL_INCHES * columns / width,
                       (height - 1.0) / height))
    cmap = colormaps[CMAP].with_extremes(bad="white")
    image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto",
                      interpolation="nearest")
    for r, row in enumerate(tokens):
        for c, token in enumerate(row):
            ax.text(c, r, token, ha="center", va="center", rotation=90, fontsize=5.5,
                    color=text_colour(cmap(float(grid[r, c]))))
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    for label, row in zip(ax.get_yticklabels(), tokens, strict=True):
        if not row:
            label.set_fontweight("bold")
    ax.set_xticks([])
    ax.set_xlabel(f"token positions (at most {HEATMAP_TOKENS} per text, around its peak)", fontsize=7)
    bar = fig.add_axes(((LABEL_INCHES + CELL_INCHES * columns + 0.25) / width, 0.35 / height,
                        0.15 / width, (height - 1.0) / height))
    fig.colorbar(image, cax=bar).set_label("activation / the card's largest", fontsize=7)
    bar.tick_params(labelsize=6)
    fig.suptitle(f"{title}, residual {fmt_at(entry.get('layer'), entry.get('rel_depth'))}", fontsize=9)
    return fig


def write_heatmaps_plot(name: str, entry: dict[str, Any], cards: list[FeatureCard], run_dir: Path) -> Path:
    """Draw the heatmaps of one SAE's cards (at least one)."""
    title = f"{name}: each specialist's activation on test-half texts (bold: the card, its colour scale)"
    return save_png(heatmaps_figure(entry, cards, title), heatmaps_path(run_dir, name, int(entry["layer"])))
