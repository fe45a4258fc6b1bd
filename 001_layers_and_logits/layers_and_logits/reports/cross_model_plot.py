"""``cross-model.png``: the models side by side on a 0-1 relative-depth axis.

Top row, main prompt of each model at the answer position: p(answer), answer
rank, KL to the last layer. Bottom row, when any model ran the fact battery:
the relative depth where each fact first reaches each milestone, one box and
one dot per fact for every model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from layers_and_logits.reports.milestones import milestone_label
from layers_and_logits.reports.run_artefacts import LensModel
from layers_core.reports.plot_style import new_figure, save_png
from layers_core.reports.run_reader import ReportInputError

TOP_PANELS = (("p_answer", "p(answer)", False), ("answer_rank", "answer rank (log; 1 at the top)", True),
              ("kl_to_final_bits", "KL(last layer ‖ layer) (bits)", False))


def fact_depths(model: LensModel) -> dict[str, list[float]]:
    """Per milestone key, the relative depths of the facts that reached it (JSON facts.per_fact)."""
    out: dict[str, list[float]] = {}
    for fact in (model.summary.get("facts") or {}).get("per_fact") or []:
        for key, value in fact.items():
            if isinstance(value, dict) and "layer" in value:
                depths = out.setdefault(key, [])
                if value.get("rel_depth") is not None:
                    depths.append(float(value["rel_depth"]))
    return out


def _main_rows(model: LensModel) -> pd.DataFrame:
    pure = model.pure
    if pure is None:
        raise ReportInputError(f"{model.name}: no pure next-token CSV to plot")
    return pure[pure["prompt_id"] == model.main_prompt_id].sort_values("layer")


def _draw_top(ax: Axes, models: list[LensModel], column: str, log: bool) -> None:
    for i, model in enumerate(models):
        rows = _main_rows(model)
        if rows[column].notna().any():
            ax.plot(rows["rel_depth"], rows[column], color=f"C{i}", linewidth=2, marker="o", markersize=2.5,
                    label=f"{model.name} ({model.n_layers} layers, prompt '{model.main_prompt_id}')")
    if log:
        ax.set_yscale("log")
        ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("relative depth (layer / L)")
    ax.grid(True, alpha=0.3)


def _draw_facts(ax: Axes, models: list[LensModel]) -> None:
    depths = {m.name: fact_depths(m) for m in models}
    keys = list(dict.fromkeys(k for d in depths.values() for k in d))
    width = 0.8 / max(1, len(models))
    rng = np.random.default_rng(316)  # fixed jitter: the same artefacts give the same picture
    for i, model in enumerate(models):
        for j, key in enumerate(keys):
            values = depths[model.name].get(key, [])
            x = j - 0.4 + width * (i + 0.5)
            if values:
                ax.boxplot([values], positions=[x], widths=width * 0.8, showfliers=False,
                           medianprops={"color": f"C{i}", "linewidth": 2})
                ax.scatter(x + rng.uniform(-width / 4, width / 4, len(values)), values, s=12, color=f"C{i}",
                           alpha=0.7, zorder=3, label=model.name if j == 0 else None)
    ax.set_xticks(range(len(keys)), [milestone_label(k) for k in keys])
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("relative depth first reached")
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_title("Fact battery: one dot per fact (facts that never reach a milestone are left out; counts in "
                 "evaluation-cross-model.md)", fontsize=10, loc="left")
    ax.legend(fontsize=9, loc="lower right")


def cross_model_figure(models: list[LensModel]) -> Figure:
    """The comparison figure for the models with status ok and a pure next-token CSV."""
    with_facts = [m for m in models if fact_depths(m)]
    fig = new_figure(15.0, 9.5 if with_facts else 5.5)
    grid = fig.add_gridspec(2 if with_facts else 1, 3)
    for col, (column, label, log) in enumerate(TOP_PANELS):
        ax = fig.add_subplot(grid[0, col])
        _draw_top(ax, models, column, log)
        ax.set_ylabel(label)
    fig.axes[0].legend(fontsize=8, loc="upper left")
    if with_facts:
        _draw_facts(fig.add_subplot(grid[1, :]), with_facts)
    fig.suptitle("Models side by side at the answer position of their main prompt (relative depth = layer / L)",
                 fontsize=11)
    return fig


def cross_model_plot_path(run_dir: Path) -> Path:
    """Where the cross-model figure goes."""
    return run_dir / "cross-model.png"


def write_cross_model_plot(models: list[LensModel], run_dir: Path) -> list[Path]:
    """Draw the figure for the ok models that have a pure next-token CSV; none when there are none."""
    drawable = [m for m in models if m.ok and m.pure is not None]
    if not drawable:
        return []
    return [save_png(cross_model_figure(drawable), cross_model_plot_path(run_dir))]
