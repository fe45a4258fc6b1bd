"""``similarity-<name>.png``: per SAE layer, the mean similarity between the texts of each pair of groups.

One row of panels per SAE, one column per space (the pooled SAE features, the centred
residual), from the JSON's ``group_similarity``; groups (``topic/form``) in the JSON's
order, with lines between topics, so a topic block on the diagonal shows clustering by
topic and a bright off-diagonal cell between groups of one form name shows form.
The SAE space has one colour scale over every layer; the residual, one scale
symmetric about 0 (centred residuals can be dissimilar); one colour bar per space.
The numbers are in the JSON (``group_similarity``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

from layers_core.reports.formats import fmt_at
from layers_core.reports.plot_style import new_figure, plot_label, save_png
from semantics_syntax.reports.run_artefacts import SPACES, SemanticsModel

CMAPS = {"sae": "viridis", "residual": "RdBu_r"}
SPACE_TITLES = {"sae": "SAE features", "residual": "residual (centred)"}


def grids(model: SemanticsModel, space: str) -> list[np.ndarray]:
    """Each SAE's ``[group, group]`` matrix in one space."""
    return [np.asarray(e["group_similarity"][space], dtype=float) for e in model.saes]


def colour_range(space: str, found: list[np.ndarray]) -> tuple[float, float]:
    """One scale per space over every layer: min..max (SAE), symmetric about 0 (residual)."""
    values = np.concatenate([g.ravel() for g in found]) if found else np.zeros(1)
    if space == "residual":
        top = max(float(np.abs(values).max()), 1e-6)
        return -top, top
    low, high = float(values.min()), float(values.max())
    return low, high if high > low else low + 1e-6


def topic_edges(groups: list[str]) -> list[float]:
    """Positions between groups where the topic changes."""
    topics = [g.split("/", 1)[0] for g in groups]
    return [i - 0.5 for i in range(1, len(topics)) if topics[i] != topics[i - 1]]


def _panel(ax: Axes, grid: np.ndarray, groups: list[str], space: str, limits: tuple[float, float]) -> AxesImage:
    cmap = colormaps[CMAPS[space]]
    image = ax.imshow(grid, cmap=cmap, vmin=limits[0], vmax=limits[1], interpolation="nearest")
    for edge in topic_edges(groups):
        ax.axhline(edge, color="black", linewidth=0.8)
        ax.axvline(edge, color="black", linewidth=0.8)
    labels = [plot_label(g, 28) for g in groups]
    ax.set_xticks(range(len(groups)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(groups)), labels, fontsize=7)
    return image


def similarity_figure(model: SemanticsModel) -> Figure:
    """The panels: one row per SAE, the SAE space then the residual."""
    groups = model.groups
    side = max(3.5, 1.8 + 0.3 * len(groups))
    fig = new_figure(2 * side + 1.5, side * len(model.saes) + 0.8)
    axes = np.atleast_2d(fig.subplots(len(model.saes), len(SPACES), squeeze=False))
    for column, space in enumerate(SPACES):
        found = grids(model, space)
        limits = colour_range(space, found)
        for row, (entry, grid) in enumerate(zip(model.saes, found, strict=True)):
            ax = axes[row][column]
            image = _panel(ax, grid, groups, space, limits)
            ax.set_title(f"residual {fmt_at(entry.get('layer'), entry.get('rel_depth'))}: {SPACE_TITLES[space]}",
                         fontsize=9)
        fig.colorbar(image, ax=list(axes[:, column]), shrink=0.6, pad=0.02,
                     label=f"mean cosine similarity, {SPACE_TITLES[space]}")
    fig.suptitle(f"{model.name}: mean similarity between the texts of each pair of topic/form groups\n(diagonal: "
                 "distinct texts of one group; lines separate topics)", fontsize=10)
    return fig


def similarity_path(run_dir: Path, name: str) -> Path:
    """Where the similarity plot of a model goes."""
    return run_dir / f"similarity-{name}.png"


def write_similarity_plot(model: SemanticsModel, run_dir: Path) -> Path:
    """Draw the similarity matrices of one ok model."""
    return save_png(similarity_figure(model), similarity_path(run_dir, model.name))
