"""``cross-model.png``: each model's battery medians against relative depth, subject and answer position.

Two panels (denoising, noising); per model one colour, the subject's last token
solid, the answer position dashed, its handover a dotted vertical line. The
headline summary of each model (swap pairs when it has them) is drawn.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from activation_patching.reports.run_artefacts import PatchingModel
from layers_core.reports.formats import json_number
from layers_core.reports.plot_style import new_figure, save_png

PANELS = (("denoise", "denoise: clean residual into the corrupted run"),
          ("noise", "noise: corrupted residual into the clean run"))
SITES = (("subject", "subject", "-"), ("answer", "answer pos.", "--"))


def cross_model_figure(models: list[PatchingModel]) -> Figure:
    """Two panels, one colour per model, against relative depth."""
    fig = new_figure(12.0, 5.0)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, (direction, label) in zip(axes, PANELS, strict=True):
        for i, model in enumerate(models):
            summary = model.headline or {}
            medians = [e for e in summary.get("medians") or [] if json_number(e.get("rel_depth")) is not None]
            for site, site_label, style in SITES:
                points = [(float(e["rel_depth"]), v) for e in medians
                          if (v := json_number(e.get(f"{direction}_{site}"))) is not None]
                ax.plot([p[0] for p in points], [p[1] for p in points], color=f"C{i}", linestyle=style,
                        linewidth=1.6, label=f"{model.name} ({summary.get('corruption')}): {site_label}")
            found = (summary.get("handover") or {}).get(direction)
            if found and json_number(found.get("rel_depth")) is not None:
                ax.axvline(float(found["rel_depth"]), color=f"C{i}", linestyle=":", linewidth=1.2)
        ax.axhline(0.0, color="grey", linewidth=0.6)
        ax.axhline(1.0, color="grey", linewidth=0.6)
        ax.set_xlim(0, 1.02)
        ax.set_xlabel("relative depth of the residual (layer / L); dotted: handover")
        ax.set_title(label, fontsize=10, loc="left")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("median restoration over the resolvable pairs")
    axes[0].legend(fontsize=7, loc="best")
    fig.suptitle("Where each model moves the fact from the subject to the answer position", fontsize=11)
    return fig


def cross_model_plot_path(run_dir: Path) -> Path:
    """Where the cross-model figure goes."""
    return run_dir / "cross-model.png"


def write_cross_model_plot(models: list[PatchingModel], run_dir: Path) -> list[Path]:
    """Draw the figure for the ok models with a battery summary; none when there are none."""
    drawable = [m for m in models if m.ok and m.headline is not None]
    if not drawable:
        return []
    return [save_png(cross_model_figure(drawable), cross_model_plot_path(run_dir))]
