"""``specialists-<name>.png``: each category's specialist at each SAE, category x SAE layer.

Colour: the specialist's held-out AUROC on one fixed 0..1 scale (0.5 = chance), so
plots of different models compare; the feature id is written in each cell; a thick
black frame marks a specialist that holds (the run's rule); a grey cell means the
category has no specialist at that SAE. SAE columns whose quality is below the
thresholds get a red label.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from layers_core.reports.formats import fmt_at, json_number
from layers_core.reports.plot_style import new_figure, plot_label, save_png, text_colour
from sae_features.reports.quality_verdict import sae_verdicts
from sae_features.reports.run_artefacts import SaeModel

CMAP = "viridis"
NO_SPECIALIST = "lightgrey"


def auroc_grid(model: SaeModel) -> tuple[np.ndarray, list[list[str]], np.ndarray]:
    """``[category, sae]`` AUROC (NaN: no specialist), the feature ids as text, and where the specialist holds."""
    categories = list(model.categories)
    values = np.full((len(categories), len(model.saes)), np.nan)
    labels = [["" for _ in model.saes] for _ in categories]
    holds = np.zeros(values.shape, dtype=bool)
    for j, entry in enumerate(model.saes):
        found = dict(entry.get("specialists") or {})
        for i, category in enumerate(categories):
            specialist = found.get(category)
            if not specialist:
                continue
            area = json_number(specialist.get("heldout_auroc"))
            values[i, j] = np.nan if area is None else area
            labels[i][j] = str(specialist.get("feature"))
            holds[i, j] = specialist.get("holds") is True
    return values, labels, holds


def specialists_figure(model: SaeModel, title: str) -> Figure:
    """The grid with a colour bar, the feature ids and the frames."""
    values, labels, holds = auroc_grid(model)
    n_rows, n_cols = values.shape
    fig = new_figure(max(8.0, 3.0 + 1.1 * n_cols), max(3.5, 1.5 + 0.45 * n_rows))
    ax = fig.subplots()
    cmap = colormaps[CMAP].with_extremes(bad=NO_SPECIALIST)
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto",
                      interpolation="nearest")
    for i in range(n_rows):
        for j in range(n_cols):
            if not labels[i][j]:
                ax.text(j, i, "none", ha="center", va="center", fontsize=7, color="dimgrey")
                continue
            ax.text(j, i, labels[i][j], ha="center", va="center", fontsize=8,
                    color=text_colour(cmap(float(values[i, j])) if np.isfinite(values[i, j]) else (0.8, 0.8, 0.8)))
            if holds[i, j]:
                ax.add_patch(Rectangle((j - 0.46, i - 0.46), 0.92, 0.92, fill=False, edgecolor="black", linewidth=2.4))
    good = {v.layer: v.ok for v in sae_verdicts(model)}
    ax.set_xticks(range(n_cols), [fmt_at(e.get("layer"), e.get("rel_depth")) for e in model.saes], fontsize=8)
    for label, entry in zip(ax.get_xticklabels(), model.saes, strict=True):
        if not good.get(int(entry["layer"]), False):
            label.set_color("red")
    ax.set_yticks(range(n_rows), [plot_label(c, 16) for c in model.categories], fontsize=8)
    ax.set_xlabel("SAE: residual layer (relative depth); red: below the quality thresholds")
    fig.colorbar(image, ax=ax, label="held-out AUROC (0.5 = chance)", shrink=0.8, pad=0.02)
    fig.suptitle(title, fontsize=10)
    return fig


def specialists_path(run_dir: Path, name: str) -> Path:
    """Where the specialists plot of a model goes."""
    return run_dir / f"specialists-{name}.png"


def write_specialists_plot(model: SaeModel, run_dir: Path) -> Path:
    """Draw the specialists grid of one ok model."""
    title = (f"{model.name}: each category's specialist feature per SAE\n(chosen on the find half, tested on the "
             "test half; framed: holds by the run's rule; grey: none)")
    return save_png(specialists_figure(model, title), specialists_path(run_dir, model.name))
