"""``heads-<name>.png``: each head's output patched alone, layer x head, for the first fully swept pair.

Columns: the head's output (``hook_z``) at every position at once, and at the
answer position alone; rows: denoising and noising. One colour scale for every
panel (the tracing plot's), layers up the y axis.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from activation_patching.artefact_schema import PATCHING
from activation_patching.reports.run_artefacts import PatchingModel
from activation_patching.reports.sweep_sites import head_grid_rows
from activation_patching.reports.tracing_plot import CMAP, DIRECTIONS, colour_range
from layers_core.reports.plot_style import new_figure, save_png

COLUMNS = (("all", "every position at once"), ("answer", "answer position alone"))


def head_grid(rows: pd.DataFrame, n_layers: int, n_heads: int) -> np.ndarray:
    """``[layer, head]`` restoration of the given head rows (NaN where there is none)."""
    grid = np.full((n_layers, n_heads), np.nan)
    for layer, head, value in rows[["layer", "head", "restoration"]].itertuples(index=False):
        if 0 <= int(layer) < n_layers and 0 <= int(head) < n_heads:
            grid[int(layer), int(head)] = float(value)
    return grid


def heads_figure(grids: dict[tuple[str, str], np.ndarray], title: str) -> Figure:
    """The 2 x 2 panels with one shared colour bar."""
    span = colour_range(list(grids.values()))
    n_layers, n_heads = next(iter(grids.values())).shape
    fig = new_figure(max(8.0, 3.0 + 2 * (1.0 + 0.3 * n_heads)), max(6.0, 2.0 + 2 * (1.0 + 0.15 * n_layers)))
    axes = fig.subplots(2, 2, squeeze=False)
    images = []
    for i, (direction, row_label) in enumerate(DIRECTIONS):
        for j, (column, label) in enumerate(COLUMNS):
            ax = axes[i][j]
            images.append(ax.imshow(grids[(direction, column)], origin="lower", aspect="auto", cmap=CMAP, vmin=span[0],
                              vmax=span[1], interpolation="nearest"))
            ax.set_title(f"{label}\n{row_label}", fontsize=9, loc="left")
            ax.set_xlabel("head")
            ax.set_ylabel("layer (block)")
            for axis in (ax.xaxis, ax.yaxis):
                axis.set_major_locator(MaxNLocator(integer=True))
    fig.colorbar(images[-1], ax=axes, label="restoration (0: corrupted run, 1: clean run)", shrink=0.6, pad=0.01)
    fig.suptitle(title, fontsize=10)
    return fig


def heads_path(run_dir: Path, name: str) -> Path:
    """Where the head plot of a model goes."""
    return run_dir / f"heads-{name}.png"


def write_head_plot(model: PatchingModel, run_dir: Path) -> Path | None:
    """Draw the head grids of the first fully swept pair; None when no pair was fully swept."""
    pair_id = model.first_full
    if pair_id is None:
        return None
    rows, pair = model.pair_rows(PATCHING, pair_id), model.pair(pair_id)
    answer = int(pair.get("n_tokens") or 0) - 1
    grids = {(d, c): head_grid(head_grid_rows(rows, d, None if c == "all" else answer), model.n_layers,
                               model.n_heads) for d, _ in DIRECTIONS for c, _ in COLUMNS}
    title = (f"{model.name}: each head's output patched alone, pair '{pair_id}' ({pair.get('corruption')}), "
             f"{model.n_layers} layers x {model.n_heads} heads")
    return save_png(heads_figure(grids, title), heads_path(run_dir, model.name))
