"""``tracing-<name>.png``: causal tracing of the first fully swept pair, layer x position, per component.

Columns: the residual (``resid_pre``, layers 0..L), the attention output and the MLP
output (blocks 0..L-1); rows: denoising (clean into corrupted: bright = the site
alone restores the answer) and noising (corrupted into clean: dark = the site alone
destroys it). One colour scale for every panel. The clean prompt's tokens run along
the position axis; the corrupted positions' labels are red.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.ticker import MaxNLocator

from activation_patching.artefact_schema import PATCHING
from activation_patching.reports.run_artefacts import PatchingModel
from layers_core.reports.plot_style import new_figure, plot_label, save_png

COMPONENTS = (("resid_pre", "residual (resid_pre)"), ("attn_out", "attention output"), ("mlp_out", "MLP output"))
DIRECTIONS = (("denoise", "denoise: clean into corrupted"), ("noise", "noise: corrupted into clean"))
CMAP = "viridis"


def position_grid(rows: pd.DataFrame, direction: str, component: str, n_rows: int, n_pos: int) -> np.ndarray:
    """``[layer, position]`` restoration of one direction and component (NaN where the CSV has no row)."""
    grid = np.full((n_rows, n_pos), np.nan)
    chosen = rows[(rows["direction"] == direction) & (rows["component"] == component) & rows["position"].notna()]
    for layer, position, value in chosen[["layer", "position", "restoration"]].itertuples(index=False):
        if 0 <= int(layer) < n_rows and 0 <= int(position) < n_pos:
            grid[int(layer), int(position)] = float(value)
    return grid


def position_tokens(rows: pd.DataFrame, n_pos: int) -> list[str]:
    """The clean prompt's token at each position, as the CSV records it."""
    placed = rows[rows["position"].notna()]
    found = {int(p): str(t) for p, t in zip(placed["position"], placed["token"], strict=True)}
    return [found.get(p, "") for p in range(n_pos)]


def colour_range(grids: list[np.ndarray]) -> tuple[float, float]:
    """One scale covering 0..1 and every value drawn."""
    values = np.concatenate([g[np.isfinite(g)] for g in grids]) if grids else np.array([])
    low = min(0.0, float(values.min())) if values.size else 0.0
    high = max(1.0, float(values.max())) if values.size else 1.0
    return low, high


def _panel(ax: Axes, grid: np.ndarray, tokens: list[str], marked: set[int], span: tuple[float, float]) -> AxesImage:
    image = ax.imshow(grid, origin="lower", aspect="auto", cmap=CMAP, vmin=span[0], vmax=span[1],
                      interpolation="nearest")
    ax.set_xticks(range(len(tokens)), [plot_label(t) for t in tokens], fontsize=7, rotation=45, ha="right")
    for position, label in enumerate(ax.get_xticklabels()):
        if position in marked:
            label.set_color("red")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    return image


def tracing_figure(grids: dict[tuple[str, str], np.ndarray], tokens: list[str], marked: set[int],
                   title: str) -> Figure:
    """The 2 x 3 panels with one shared colour bar."""
    span = colour_range(list(grids.values()))
    n_layers = max(g.shape[0] for g in grids.values())
    fig = new_figure(max(9.0, 3.0 + 3 * (0.9 + 0.4 * len(tokens))), max(6.0, 2.0 + 2 * (1.0 + 0.12 * n_layers)))
    axes = fig.subplots(2, 3, squeeze=False)
    images = []
    for i, (direction, row_label) in enumerate(DIRECTIONS):
        for j, (component, label) in enumerate(COMPONENTS):
            ax = axes[i][j]
            images.append(_panel(ax, grids[(direction, component)], tokens, marked, span))
            ax.set_title(f"{label}\n{row_label}", fontsize=9, loc="left")
            ax.set_ylabel("residual layer (enters block)" if component == "resid_pre" else "block")
    fig.colorbar(images[-1], ax=axes, label="restoration (0: corrupted run, 1: clean run)", shrink=0.6, pad=0.01)
    fig.suptitle(title, fontsize=10)
    return fig


def tracing_path(run_dir: Path, name: str) -> Path:
    """Where the tracing plot of a model goes."""
    return run_dir / f"tracing-{name}.png"


def write_tracing_plot(model: PatchingModel, run_dir: Path) -> Path | None:
    """Draw the tracing of the first fully swept pair; None when no pair was fully swept."""
    pair_id = model.first_full
    if pair_id is None:
        return None
    rows, pair = model.pair_rows(PATCHING, pair_id), model.pair(pair_id)
    n_pos = int(pair.get("n_tokens") or int(rows["position"].max()) + 1)
    grids = {(d, c): position_grid(rows, d, c, model.n_layers + (c == "resid_pre"), n_pos)
             for d, _ in DIRECTIONS for c, _ in COMPONENTS}
    marked = {int(p) for p in pair.get("corrupt_positions") or []}
    title = (f"{model.name}: causal tracing of pair '{pair_id}' ({pair.get('corruption')}), each site patched alone\n"
             f"clean {str(pair.get('clean_prompt', ''))!r} vs corrupt {str(pair.get('corrupt_prompt', ''))!r}; "
             "red tokens: corrupted positions")
    return save_png(tracing_figure(grids, position_tokens(rows, n_pos), marked, title),
                    tracing_path(run_dir, model.name))
