"""``ablation-<name>.png``: the mean change in the answer's log-probability per SAE layer and kind of feature.

Two panels, math items and non-math items, each a layer x kind matrix
(``ablation_summary``): colour = the mean delta (nats) over the kind's features on one
scale symmetric about 0 shared by both panels (blue: removing the features hurts the
answer), the delta and the mean and largest flip rate written in each cell. The
controls (random, cross-domain) sit next to the specialists.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from layers_core.reports.formats import fmt_at
from layers_core.reports.plot_style import new_figure, save_png, text_colour
from semantics_syntax.artefact_schema import ABLATION
from semantics_syntax.reports.ablation_summary import DOMAINS, effects, kinds_of
from semantics_syntax.reports.run_artefacts import SemanticsModel

CMAP = "RdBu_r"  # negative (the answer less likely) blue, positive red
NO_FEATURE = "lightgrey"


def ablation_figure(model: SemanticsModel) -> Figure:
    """The two matrices with their cell labels and one colour bar."""
    table = model.csv(ABLATION)
    kinds = kinds_of(table)
    cells = {(e.layer, e.kind, e.domain): e for e in effects(table, model.layers)}
    grids = {d: np.array([[cells[(layer, k, d)].mean_delta for k in kinds] for layer in model.layers])
             for d in DOMAINS}
    finite = np.concatenate([g[np.isfinite(g)] for g in grids.values()])
    top = max(float(np.abs(finite).max()) if finite.size else 0.0, 1e-6)
    cmap = colormaps[CMAP].with_extremes(bad=NO_FEATURE)
    fig = new_figure(max(8.0, 3.2 * len(kinds) + 2.0), 1.6 + 0.9 * len(model.layers))
    axes = fig.subplots(1, len(DOMAINS), squeeze=False)[0]
    image = None
    for ax, domain in zip(axes, DOMAINS, strict=True):
        grid = grids[domain]
        image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=-top, vmax=top, aspect="auto",
                          interpolation="nearest")
        for i, layer in enumerate(model.layers):
            for j, kind in enumerate(kinds):
                e = cells[(layer, kind, domain)]
                if not e.features:
                    ax.text(j, i, "none", ha="center", va="center", fontsize=7, color="dimgrey")
                    continue
                shade = cmap((grid[i, j] + top) / (2 * top)) if np.isfinite(grid[i, j]) else (0.8, 0.8, 0.8)
                ax.text(j, i, f"{grid[i, j]:+.4f}\nflip {100 * e.mean_flip:.1f}% (max {100 * e.max_flip:.1f}%)",
                        ha="center", va="center", fontsize=7, color=text_colour(shade))
        ax.set_xticks(range(len(kinds)), kinds, fontsize=8)
        ax.set_yticks(range(len(model.layers)), [fmt_at(layer, model.rel_depth(layer)) for layer in model.layers],
                      fontsize=8)
        ax.set_title(f"{domain} items", fontsize=9)
        ax.set_ylabel("SAE: residual layer (rel. depth)")
    if image is not None:
        fig.colorbar(image, ax=list(axes), shrink=0.8, pad=0.02, label="mean delta log-prob of the answer (nats)")
    fig.suptitle(f"{model.name}: one feature removed at a time, mean over the features of each kind\n(blue: the "
                 "answer becomes less likely; mean and largest flip rate in each cell)", fontsize=10)
    return fig


def ablation_path(run_dir: Path, name: str) -> Path:
    """Where the ablation plot of a model goes."""
    return run_dir / f"ablation-{name}.png"


def write_ablation_plot(model: SemanticsModel, run_dir: Path) -> Path:
    """Draw the ablation matrices of one ok model."""
    return save_png(ablation_figure(model), ablation_path(run_dir, model.name))
