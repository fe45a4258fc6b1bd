"""``cross-model.png``: the key measures of every model against relative depth, beside the seed's numbers.

Six panels, one line per model (its SAEs as markers), from the hypotheses CSVs:
the overlap of a topic's specialists across forms (dashed: within a form name), the
share of specialist activation on syntactic tokens, the topic clustering effect (solid:
SAE features; dashed: residual), the math correlation (solid: raw; dashed: controlled
for answer tokens), the signal-to-noise of specialist ablations (log scale), and the
largest specialist flip rate. Grey lines and bands: the seed's numbers (other models,
SAEs and texts; a reference, not a model of this run).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from layers_core.reports.plot_style import new_figure, save_png
from semantics_syntax.reports.run_artefacts import SemanticsModel
from semantics_syntax.reports.seed_claims import SEED_RANGES, SEED_SNR


@dataclass(frozen=True)
class Panel:
    """One panel: its title, the measures drawn (solid, then dashed), and the seed's reference."""

    title: str
    measures: tuple[str, ...]
    seed: str | None
    log: bool = False
    limits: tuple[float, float] | None = None  # fixed y range (shares), else matplotlib's
    zero: bool = False  # a line at 0 (effects and correlations)


PANELS = (
    Panel("specialist overlap across forms\n(dashed: same form name, other topics)",
          ("form_jaccard", "same_form_jaccard"), "form_jaccard"),
    Panel("share of specialist activation\non syntactic tokens", ("syntactic_activation_share",),
          "syntactic_activation_share", limits=(0.0, 1.0)),
    Panel("topic clustering effect\n(solid: SAE features; dashed: residual)",
          ("topic_clustering_sae", "topic_clustering_residual"), "topic_clustering_sae", zero=True),
    Panel("math: activation vs log-prob rho\n(dashed: answer tokens controlled)",
          ("activation_logprob_rho_math", "activation_logprob_partial_rho_math"), "activation_logprob_rho_math",
          zero=True),
    Panel("signal-to-noise of specialist ablation\n(math items; log scale)", ("signal_to_noise_math",), None, True),
    Panel("largest specialist flip rate\n(math items)", ("max_flip_rate_math",), "max_flip_rate_math"),
)
STYLES = ("-", "--")


def points(model: SemanticsModel, measure: str) -> list[tuple[float, float]]:
    """(relative depth, value) of one measure at each SAE, finite values only (and positive on a log scale)."""
    return [(c.rel_depth, c.value) for c in model.claims
            if c.measure == measure and not math.isnan(c.rel_depth) and not math.isnan(c.value)]


def _seed(ax: Axes, panel: Panel) -> None:
    if panel.log:
        for model, value in SEED_SNR.items():
            ax.axhline(value, color="grey", linestyle=":", linewidth=1.2)
            ax.text(0.01, value, f"seed, {model}", color="grey", fontsize=7, va="bottom")
        return
    if panel.seed is None:
        return
    low, high = SEED_RANGES[panel.seed]
    if high > low:
        ax.axhspan(low, high, color="grey", alpha=0.25)
    else:
        ax.axhline(low, color="grey", linestyle=":", linewidth=1.2)


def cross_model_figure(models: list[SemanticsModel]) -> Figure:
    """The six panels, one colour per model."""
    fig = new_figure(12.0, 7.0)
    axes = fig.subplots(2, 3).ravel()
    for ax, panel in zip(axes, PANELS, strict=True):
        _seed(ax, panel)
        for i, model in enumerate(models):
            for measure, style in zip(panel.measures, STYLES, strict=False):
                found = [(x, y) for x, y in points(model, measure) if y > 0 or not panel.log]
                if not found:
                    continue
                ax.plot([x for x, _ in found], [y for _, y in found], color=f"C{i}", linestyle=style, marker="o",
                        markersize=4, linewidth=1.4, label=model.name if style == STYLES[0] else None)
        if panel.log:
            ax.set_yscale("log")
        if panel.limits:
            ax.set_ylim(*panel.limits)
        if panel.zero:
            ax.axhline(0.0, color="black", linewidth=0.6)
        ax.set_xlim(0, 1.02)
        ax.set_title(panel.title, fontsize=9)
        ax.set_xlabel("relative depth (layer / L)", fontsize=8)
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8, loc="best")
    fig.suptitle("Key measures by relative depth, per model (grey: the seed's numbers)", fontsize=10)
    return fig


def cross_model_plot_path(run_dir: Path) -> Path:
    """Where the cross-model figure goes."""
    return run_dir / "cross-model.png"


def write_cross_model_plot(models: list[SemanticsModel], run_dir: Path) -> list[Path]:
    """Draw the figure for the ok models; none when there are none."""
    drawable = [m for m in models if m.ok and m.claims]
    if not drawable:
        return []
    return [save_png(cross_model_figure(drawable), cross_model_plot_path(run_dir))]
