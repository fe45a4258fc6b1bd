"""``battery-<name>.png``: per residual layer, the battery's median restoration at the subject vs the answer.

One row per summary (swap pairs, noise pairs), one column per direction. The lines
are the JSON's medians (``battery.summaries[].medians``, what the handover is
computed from); the bands are the interquartile ranges over the same pairs (the
resolvable pairs of that corruption), computed here from the battery CSV because
the summaries hold medians only. The handover layer is a dashed vertical line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from activation_patching.artefact_schema import BATTERY
from activation_patching.reports.run_artefacts import PatchingModel
from layers_core.reports.formats import json_number
from layers_core.reports.plot_style import new_figure, save_png

SITES = (("subject", "subject's last token", "C0"), ("answer", "answer position", "C1"))
DIRECTIONS = (("denoise", "denoise: clean residual into the corrupted run"),
              ("noise", "noise: corrupted residual into the clean run"))


def quartiles(rows: pd.DataFrame, direction: str, site: str, layers: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per layer, the 25th and 75th percentile of ``restoration_<site>`` over ``rows`` (NaN where none)."""
    chosen = rows[rows["direction"] == direction]
    low, high = np.full(len(layers), np.nan), np.full(len(layers), np.nan)
    for i, layer in enumerate(layers):
        values = chosen.loc[chosen["layer"] == layer, f"restoration_{site}"].dropna().to_numpy(dtype=float)
        if values.size:
            low[i], high[i] = np.percentile(values, [25, 75])
    return low, high


def summary_rows(model: PatchingModel, corruption: str) -> pd.DataFrame:
    """The battery CSV's rows the summary of ``corruption`` is over: its resolvable pairs."""
    usable = {p.get("pair_id") for p in model.pairs if p.get("resolvable") and p.get("corruption") == corruption}
    table = model.csv(BATTERY)
    return table[(table["corruption"] == corruption) & table["pair_id"].isin(usable)]


def _draw(ax: Axes, summary: dict[str, Any], rows: pd.DataFrame, direction: str) -> None:
    medians = list(summary.get("medians") or [])
    layers = [int(e["layer"]) for e in medians]
    for site, label, colour in SITES:
        values = [json_number(e.get(f"{direction}_{site}")) for e in medians]
        ax.plot(layers, [np.nan if v is None else v for v in values], color=colour, marker="o", markersize=2.5,
                linewidth=1.8, label=f"{label}: median")
        low, high = quartiles(rows, direction, site, layers)
        ax.fill_between(layers, low, high, color=colour, alpha=0.2, linewidth=0, label=f"{label}: IQR")
    found = (summary.get("handover") or {}).get(direction)
    if found:
        ax.axvline(float(found["layer"]), color="black", linestyle="--", linewidth=1.0,
                   label=f"handover: layer {found['layer']}")
    ax.axhline(0.0, color="grey", linewidth=0.6)
    ax.axhline(1.0, color="grey", linewidth=0.6)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="best")


def battery_figure(model: PatchingModel, title: str) -> Figure:
    """One row per summary, one column per direction."""
    summaries = model.summaries
    fig = new_figure(12.0, 1.2 + 3.6 * len(summaries))
    axes = fig.subplots(len(summaries), 2, squeeze=False, sharex=True)
    for i, summary in enumerate(summaries):
        rows = summary_rows(model, str(summary.get("corruption")))
        for j, (direction, label) in enumerate(DIRECTIONS):
            ax = axes[i][j]
            _draw(ax, summary, rows, direction)
            ax.set_title(f"{summary.get('corruption')} pairs ({summary.get('n_pairs')}), {label}", fontsize=9,
                         loc="left")
            ax.set_ylabel("restoration")
            ax.set_xlabel(f"residual layer (0..{model.n_layers}; {model.n_layers} = final residual)")
    fig.suptitle(title, fontsize=10)
    return fig


def battery_path(run_dir: Path, name: str) -> Path:
    """Where the battery plot of a model goes."""
    return run_dir / f"battery-{name}.png"


def write_battery_plot(model: PatchingModel, run_dir: Path) -> Path | None:
    """Draw the battery's medians; None when no pair was resolvable (no summary)."""
    if not model.summaries:
        return None
    title = (f"{model.name}: the residual patched at one position, medians over the resolvable pairs "
             "(bands: interquartile range)")
    return save_png(battery_figure(model, title), battery_path(run_dir, model.name))
