"""``head-grid-<name>.png``: every head's median DLA on the logit difference, layer x head.

Diverging colours centred at 0 (red writes towards the answer, blue towards the
foil); the heads meeting the retrieval criterion are boxed in black.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from attention_and_attribution.reports.run_artefacts import AttributionModel
from layers_core.reports.plot_style import new_figure, save_png


def head_grid(summary: pd.DataFrame, n_layers: int, n_heads: int) -> np.ndarray:
    """``[layer, head]`` median dla_logit_diff from the head-summary CSV (NaN where it has no row)."""
    grid = np.full((n_layers, n_heads), np.nan)
    for layer, head, value in summary[["layer", "head", "median_dla_logit_diff"]].itertuples(index=False):
        if 0 <= int(layer) < n_layers and 0 <= int(head) < n_heads:
            grid[int(layer), int(head)] = float(value)
    return grid


def head_grid_figure(grid: np.ndarray, marked: list[tuple[int, int]], title: str) -> Figure:
    """Draw the grid: layers up the y axis (0 at the bottom), heads along x, marked heads boxed."""
    n_layers, n_heads = grid.shape
    fig = new_figure(max(5.5, 2.5 + 0.32 * n_heads), max(4.5, 1.8 + 0.2 * n_layers))
    ax = fig.add_subplot()
    bound = float(np.nanmax(np.abs(grid))) if np.isfinite(grid).any() else 1.0
    bound = bound if bound > 0 else 1.0
    image = ax.imshow(grid, origin="lower", aspect="auto", cmap="RdBu_r", interpolation="nearest",
                      norm=TwoSlopeNorm(vcenter=0.0, vmin=-bound, vmax=bound))
    for layer, head in marked:
        ax.add_patch(Rectangle((head - 0.5, layer - 0.5), 1.0, 1.0, fill=False, edgecolor="black", linewidth=2))
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("head" + ("\nblack boxes: retrieval heads (criterion in evaluation-*.md)" if marked else ""))
    ax.set_ylabel("layer (0 = first block, at the bottom)")
    ax.set_title(title, fontsize=10, loc="left")
    fig.colorbar(image, ax=ax, label="median DLA on logit(answer) - logit(foil)\n(red: towards the answer)",
                 shrink=0.7, pad=0.01)
    return fig


def head_grid_path(run_dir: Path, name: str) -> Path:
    """Where the head grid of a model goes."""
    return run_dir / f"head-grid-{name}.png"


def write_head_grid(model: AttributionModel, run_dir: Path) -> Path:
    """Draw the head grid of one ok model."""
    grid = head_grid(model.head_summary, model.n_layers, model.n_heads)
    marked = [(int(h["layer"]), int(h["head"])) for h in model.retrieval_heads]
    title = (f"{model.name}: median direct logit attribution\nof each head over the {model.summary_over}, "
             f"{model.n_layers} layers x {model.n_heads} heads")
    return save_png(head_grid_figure(grid, marked, title), head_grid_path(run_dir, model.name))
