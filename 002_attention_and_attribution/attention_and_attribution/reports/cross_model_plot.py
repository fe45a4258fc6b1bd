"""``cross-model.png``: each model's median attention and MLP DLA per layer, on a relative-depth axis."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from attention_and_attribution.reports.run_artefacts import AttributionModel
from layers_core.reports.plot_style import new_figure, save_png

PANELS = (("median_attn_dla_logit_diff", "attention: median DLA"), ("median_mlp_dla_logit_diff", "MLP: median DLA"))


def cross_model_figure(models: list[AttributionModel]) -> Figure:
    """Two panels (attention, MLP), one line per model against relative depth."""
    fig = new_figure(12.0, 4.8)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, (key, label) in zip(axes, PANELS, strict=True):
        for i, model in enumerate(models):
            rows = [e for e in model.layers_summary if e.get(key) is not None and e.get("rel_depth") is not None]
            ax.plot([float(e["rel_depth"]) for e in rows], [float(e[key]) for e in rows], color=f"C{i}", marker="o",
                    markersize=2.5, linewidth=1.8, label=f"{model.name} ({model.n_layers} layers)")
        ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.set_xlim(0, 1.02)
        ax.set_xlabel("relative depth after the block ((layer + 1) / L)")
        ax.set_title(label, fontsize=10, loc="left")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("DLA on logit(answer) - logit(foil)")
    axes[0].legend(fontsize=8, loc="upper left")
    fig.suptitle("Where each model writes the answer (medians over its battery, or its prompts)", fontsize=11)
    return fig


def cross_model_plot_path(run_dir: Path) -> Path:
    """Where the cross-model figure goes."""
    return run_dir / "cross-model.png"


def write_cross_model_plot(models: list[AttributionModel], run_dir: Path) -> list[Path]:
    """Draw the figure for the ok models with a layers summary; none when there are none."""
    drawable = [m for m in models if m.ok and m.layers_summary]
    if not drawable:
        return []
    return [save_png(cross_model_figure(drawable), cross_model_plot_path(run_dir))]
