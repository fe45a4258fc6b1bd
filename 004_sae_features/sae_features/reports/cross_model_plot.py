"""``cross-model.png``: per model, the categories with a specialist that holds against relative depth.

One line per model (its SAEs as markers; hollow where the SAE is below the quality
thresholds). The seed prototype's reported counts on GPT-2 small (its own SAEs, texts and
criterion) are drawn as grey crosses for reference, not as a model of this run.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from layers_core.reports.plot_style import new_figure, save_png
from sae_features.reports.quality_verdict import sae_verdicts
from sae_features.reports.run_artefacts import SaeModel
from sae_features.reports.seed_reference import SEED_DEPTH, SEED_LAYERS, SEED_MODEL, depth_points


def cross_model_figure(models: list[SaeModel]) -> Figure:
    """One line per model, the seed's points in grey."""
    fig = new_figure(8.0, 4.8)
    ax = fig.subplots()
    most = 0
    for i, model in enumerate(models):
        points = depth_points(model.depth)
        good = {v.layer: v.ok for v in sae_verdicts(model)}
        xs, ys = [p.rel_depth for p in points], [p.holding for p in points]
        ax.plot(xs, ys, color=f"C{i}", linewidth=1.6, label=model.name)
        for p in points:
            ok = good.get(p.layer, False)
            ax.scatter([p.rel_depth], [p.holding], s=40, color=f"C{i}", facecolors=f"C{i}" if ok else "none",
                       linewidths=1.4, zorder=3)
        most = max([most, *(p.categories for p in points)])
    ax.scatter([layer / SEED_LAYERS for layer, _ in SEED_DEPTH], [n for _, n in SEED_DEPTH], marker="x",
               color="grey", s=45, zorder=2, label=f"seed prototype, {SEED_MODEL} (its own rule)")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(-0.3, max(most, 7) + 0.5)
    ax.set_xlabel("relative depth of the SAE's residual (layer / L)")
    ax.set_ylabel("categories with a specialist that holds")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.suptitle("Category specialists that hold on held-out texts, by depth (hollow: SAE below the quality "
                 "thresholds)", fontsize=10)
    return fig


def cross_model_plot_path(run_dir: Path) -> Path:
    """Where the cross-model figure goes."""
    return run_dir / "cross-model.png"


def write_cross_model_plot(models: list[SaeModel], run_dir: Path) -> list[Path]:
    """Draw the figure for the ok models with SAEs; none when there are none."""
    drawable = [m for m in models if m.ok and depth_points(m.depth)]
    if not drawable:
        return []
    return [save_png(cross_model_figure(drawable), cross_model_plot_path(run_dir))]
