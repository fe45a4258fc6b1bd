"""``quality-<name>.png``: each SAE's quality on held-out text against the run's thresholds.

Top panel: explained variance and loss recovered per SAE (x: residual layer), with the
run's thresholds as dashed lines (0.8 and 0.9 by default); an undefined loss recovered
(zeroing the residual does not raise the loss) is drawn as a hollow marker. Bottom
panel: L0, the mean number of active features per token. SAE labels below the
thresholds are red.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from layers_core.reports.formats import fmt_at, json_number
from layers_core.reports.plot_style import new_figure, save_png
from sae_features.reports.quality_verdict import (
    EXPLAINED_VARIANCE,
    LOSS_RECOVERED,
    loss_recovered_defined,
    sae_verdicts,
)
from sae_features.reports.run_artefacts import SaeModel

SERIES = ((EXPLAINED_VARIANCE, "explained variance", "C0"), (LOSS_RECOVERED, "loss recovered", "C1"))


def _values(model: SaeModel, key: str) -> np.ndarray:
    found = [json_number((e.get("quality") or {}).get(key)) for e in model.saes]
    return np.array([np.nan if v is None else v for v in found], dtype=float)


def quality_figure(model: SaeModel, title: str) -> Figure:
    """Two panels sharing the SAE axis: the two quality measures with their thresholds, and L0."""
    x = np.arange(len(model.saes))
    fig = new_figure(max(6.0, 2.5 + 1.0 * len(x)), 6.0)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    thresholds = model.thresholds
    for key, label, colour in SERIES:
        values = _values(model, key)
        top.plot(x, values, color=colour, marker="o", linewidth=1.6, label=label)
        if key in thresholds:
            top.axhline(thresholds[key], color=colour, linestyle="--", linewidth=1.0,
                        label=f"threshold {thresholds[key]:g}")
    undefined = [i for i, e in enumerate(model.saes) if not loss_recovered_defined(dict(e.get("quality") or {}))]
    if undefined:
        top.scatter(x[undefined], _values(model, LOSS_RECOVERED)[undefined], s=120, facecolors="none",
                    edgecolors="red", linewidths=1.5, zorder=3, label="loss recovered undefined")
    top.axhline(0.0, color="grey", linewidth=0.6)
    top.axhline(1.0, color="grey", linewidth=0.6)
    top.set_ylabel("on held-out text")
    top.grid(True, alpha=0.3)
    top.legend(fontsize=7, loc="best")
    bottom.bar(x, _values(model, "l0"), color="C2", width=0.5)
    bottom.set_ylabel("L0 (active features per token)")
    bottom.grid(True, axis="y", alpha=0.3)
    bottom.set_xticks(x, [fmt_at(e.get("layer"), e.get("rel_depth")) for e in model.saes], fontsize=8)
    good = [v.ok for v in sae_verdicts(model)]
    for label, ok in zip(bottom.get_xticklabels(), good, strict=True):
        if not ok:
            label.set_color("red")
    bottom.set_xlabel("SAE: residual layer (relative depth); red: below the quality thresholds")
    fig.suptitle(title, fontsize=10)
    return fig


def quality_path(run_dir: Path, name: str) -> Path:
    """Where the quality plot of a model goes."""
    return run_dir / f"quality-{name}.png"


def write_quality_plot(model: SaeModel, run_dir: Path) -> Path:
    """Draw the quality of one ok model's SAEs."""
    title = f"{model.name}: SAE quality on held-out text (dashed: the run's thresholds)"
    return save_png(quality_figure(model, title), quality_path(run_dir, model.name))
