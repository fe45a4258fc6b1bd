"""``histograms-<name>-L<layer>.png``: per card of one SAE, how its per-token activations are distributed.

Small multiples, one per card in the cards' order: step histograms of the feature's
nonzero activations on tokens of the card's category texts, of the other categories'
texts and of held-out corpus tokens, each bin as a share of its group's tokens (zeros
included in the total), so groups of different sizes compare; the y axis is
logarithmic, as the shares span decades. The legend gives each group's tokens and zeros.
A fixed grid (no constrained layout) and no minor ticks keep the figure quick to draw.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullLocator

from layers_core.reports.formats import fmt_at
from layers_core.reports.plot_style import new_figure, plot_label, save_png
from sae_features.reports.card_common import card_title, histograms_path
from sae_features.reports.feature_card_data import GROUPS, FeatureCard
from sae_features.reports.md_common import fmt_count

COLUMNS = 3
PANEL_WIDTH, PANEL_HEIGHT = 4.2, 3.0
COLOURS = {"category": "C3", "other": "C0", "corpus": "C7"}


def group_label(card: FeatureCard, group: str) -> str:
    """What a group is, in the legend."""
    return {"category": f"{plot_label(card.category, 16)} texts", "other": "other categories' texts",
            "corpus": "held-out corpus"}[group]


def draw_card(ax: Axes, card: FeatureCard) -> None:
    """One card's three step histograms on ``ax``."""
    hist = card.histogram
    edges = np.array(hist.edges)
    drawn = False
    for group in GROUPS:
        counts = np.array(hist.counts[group], dtype=float)
        total = counts.sum() + hist.zeros[group]
        share = counts / total if total else counts
        label = (f"{group_label(card, group)}: {fmt_count(total)} tokens, {fmt_count(hist.zeros[group])} zero")
        if edges[-1] > edges[0] and (share > 0).any():
            ax.stairs(np.where(share > 0, share, np.nan), edges, color=COLOURS[group], linewidth=1.4, label=label,
                      baseline=None)
            drawn = True
        else:
            ax.plot([], [], color=COLOURS[group], label=label)
    if drawn:
        ax.set_yscale("log")
        ax.yaxis.set_minor_locator(NullLocator())
    else:
        counted = any(sum(hist.counts[g]) for g in GROUPS)
        ax.text(0.5, 0.5, "bins too narrow to draw (rounded edges)" if counted else "no nonzero activation",
                transform=ax.transAxes, ha="center", va="center", fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.set_title(card_title(card), fontsize=8, loc="left")
    ax.set_xlabel("activation", fontsize=7)
    ax.set_ylabel("share of the group's tokens", fontsize=7)
    ax.tick_params(labelsize=7)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=6, loc="best")


def histograms_figure(entry: dict[str, Any], cards: list[FeatureCard], title: str) -> Figure:
    """A grid of ``COLUMNS`` panels per row, one per card; unused panels hidden."""
    columns = min(COLUMNS, len(cards))
    rows = math.ceil(len(cards) / columns)
    width, height = 0.3 + PANEL_WIDTH * columns, 0.5 + PANEL_HEIGHT * rows
    fig = new_figure(width, height)
    fig.set_layout_engine("none")
    axes = fig.subplots(rows, columns, squeeze=False, gridspec_kw={
        "left": 0.75 / width, "right": 1 - 0.2 / width, "bottom": 0.55 / height, "top": 1 - 0.75 / height,
        "wspace": 0.35, "hspace": 0.55}).ravel()
    for ax, card in zip(axes, cards, strict=False):
        draw_card(ax, card)
    for ax in axes[len(cards):]:
        ax.set_visible(False)
    fig.suptitle(f"{title}, residual {fmt_at(entry.get('layer'), entry.get('rel_depth'))}", fontsize=10)
    return fig


def write_histograms_plot(name: str, entry: dict[str, Any], cards: list[FeatureCard], run_dir: Path) -> Path:
    """Draw the histograms of one SAE's cards (at least one)."""
    title = f"{name}: each specialist's per-token activations (share of each group's tokens, log scale)"
    return save_png(histograms_figure(entry, cards, title), histograms_path(run_dir, name, int(entry["layer"])))
