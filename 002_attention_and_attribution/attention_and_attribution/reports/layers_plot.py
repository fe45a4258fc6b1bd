"""``layers-<name>.png``: per layer, what attention and MLPs write into the logit difference, beside the lens.

Top: bars of each layer's attention and MLP DLA on the main prompt, with the
battery (or prompt) medians and quartiles as markers when the JSON has them.
Bottom: the norm lens's p(answer) after each block on the main prompt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from attention_and_attribution.artefact_schema import LAYERS
from attention_and_attribution.reports.run_artefacts import AttributionModel
from layers_core.reports.plot_style import new_figure, save_png

PARTS = (("attn", "attention", "C0", "navy"), ("mlp", "MLP", "C1", "saddlebrown"))  # bar colour, marker colour


def _draw_bars(ax: Axes, rows: pd.DataFrame, summary: list[dict[str, Any]], over: str) -> None:
    layers = rows["layer"].to_numpy(dtype=float)
    for shift, (part, label, colour, marker) in zip((-0.2, 0.2), PARTS, strict=True):
        ax.bar(layers + shift, rows[f"{part}_dla_logit_diff"], width=0.4, color=colour, label=f"{label}, main prompt")
        if summary:
            x = np.array([float(e["layer"]) for e in summary]) + shift
            median = np.array([_float(e.get(f"median_{part}_dla_logit_diff")) for e in summary])
            low = median - np.array([_float(e.get(f"q25_{part}_dla_logit_diff")) for e in summary])
            high = np.array([_float(e.get(f"q75_{part}_dla_logit_diff")) for e in summary]) - median
            ax.errorbar(x, median, yerr=np.abs(np.vstack([low, high])), fmt="D", markersize=3.5, color=marker,
                        ecolor=marker, elinewidth=1, label=f"{label}: median and IQR over the {over}")
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_ylabel("DLA on logit(answer) - logit(foil)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")


def _float(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else float("nan")


def _draw_lens(ax: Axes, rows: pd.DataFrame) -> None:
    ax.plot(rows["layer"], rows["p_answer"], color="C2", marker="o", markersize=3, linewidth=2)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("p(answer), norm lens\nafter the block")
    ax.set_xlabel("layer (0-based block index)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)


def layers_figure(rows: pd.DataFrame, summary: list[dict[str, Any]], over: str, title: str) -> Figure:
    """The two panels sharing the layer axis."""
    fig = new_figure(max(8.0, 3.0 + 0.3 * len(rows)), 7.5)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    _draw_bars(top, rows, summary, over)
    _draw_lens(bottom, rows)
    top.set_title(title, fontsize=10, loc="left")
    return fig


def layers_path(run_dir: Path, name: str) -> Path:
    """Where the layers plot of a model goes."""
    return run_dir / f"layers-{name}.png"


def write_layers_plot(model: AttributionModel, run_dir: Path) -> Path:
    """Draw the layers plot of the main prompt (with the battery's medians when the battery ran)."""
    rows = model.main_rows(LAYERS).sort_values("layer")
    summary = model.layers_summary if model.battery is not None else []
    title = (f"{model.name}: per layer, attention and MLP direct contributions to the logit difference\n"
             f"main prompt '{model.main_prompt_id}'" + (f"; markers: over the {model.summary_over}" if summary else ""))
    return save_png(layers_figure(rows, summary, model.summary_over, title), layers_path(run_dir, model.name))
