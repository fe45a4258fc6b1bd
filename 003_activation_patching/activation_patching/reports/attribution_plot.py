"""``attribution-<name>.png``: attribution patching's estimates against the exact restorations.

Left: plain attribution patching (``approx``); right: with path-averaged gradients
(``approx_ig``). One point per site of every fully swept pair (the attribution CSV),
one colour per pair and direction; the legend gives Pearson r over all that pair's
sites in that direction, as the JSON's ``attribution.agreement`` stores it (component
``all``). The diagonal is perfect agreement.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from activation_patching.artefact_schema import ATTRIBUTION
from activation_patching.reports.md_common import fmt_score
from activation_patching.reports.run_artefacts import PatchingModel
from layers_core.reports.plot_style import new_figure, save_png

METHODS = (("approx", "plain attribution patching"), ("approx_ig", "path-averaged gradients"))


def stored_r(model: PatchingModel, pair_id: str, direction: str, method: str) -> str:
    """The JSON's r of one method over all sites of a pair and direction, formatted (``n/a`` when absent)."""
    row = next((r for r in model.agreement if r.get("pair_id") == pair_id and r.get("direction") == direction
                and r.get("component") == "all"), {})
    return fmt_score(row.get(f"r_{method}"))


def attribution_figure(model: PatchingModel, rows: pd.DataFrame, title: str) -> Figure:
    """Two scatter panels sharing the exact axis."""
    fig = new_figure(12.0, 5.6)
    axes = fig.subplots(1, 2, sharex=True, sharey=True)
    groups = list(rows.groupby(["pair_id", "direction"], sort=True))
    values = rows[["exact", *(m for m, _ in METHODS)]].to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    for ax, (method, label) in zip(axes, METHODS, strict=True):
        for i, ((pair_id, direction), group) in enumerate(groups):
            r = stored_r(model, str(pair_id), str(direction), method)
            ax.scatter(group["exact"], group[method], s=6, alpha=0.5, color=f"C{i}",
                       label=f"{pair_id}, {direction}: r = {r}")
        ax.plot([low, high], [low, high], color="grey", linewidth=0.8, linestyle="--")
        ax.set_xlabel("exact restoration (patched run)")
        ax.set_title(label, fontsize=10, loc="left")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    axes[0].set_ylabel("estimated restoration")
    fig.suptitle(title, fontsize=10)
    return fig


def attribution_path(run_dir: Path, name: str) -> Path:
    """Where the attribution plot of a model goes."""
    return run_dir / f"attribution-{name}.png"


def write_attribution_plot(model: PatchingModel, run_dir: Path) -> Path | None:
    """Draw the scatter; None when the attribution CSV has no rows."""
    rows = model.csv(ATTRIBUTION)
    if rows.empty:
        return None
    title = f"{model.name}: attribution patching against exact patching, every site of the fully swept pairs"
    return save_png(attribution_figure(model, rows, title), attribution_path(run_dir, model.name))
