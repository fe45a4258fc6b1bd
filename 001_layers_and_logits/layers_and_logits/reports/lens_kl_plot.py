"""``lenses-<name>.png``: KL(last layer ‖ lens) in bits against relative depth, one line per lens.

The tuned-lens paper's main figure (Belrose et al. 2023), drawn from
``output-<name>-lens-kl.csv``: the mean over held-out text of the bundled corpus,
for the norm lens and every fitted lens the run compared. Written only for a run
that has that CSV (``--lens tuned`` or ``--lens linear``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from layers_and_logits.reports.lens_names import LENS_COLOURS, lens_name, ordered_lenses
from layers_and_logits.reports.run_artefacts import LensModel
from layers_core.reports.plot_style import new_figure, save_png


def lens_series(lens_kl: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The rows of each lens, sorted by layer, lenses in report order (norm, linear, tuned)."""
    groups = {str(lens): rows.sort_values("layer") for lens, rows in lens_kl.groupby("lens", sort=False)}
    return {lens: groups[lens] for lens in ordered_lenses(groups)}


def lens_kl_figure(lens_kl: pd.DataFrame, title: str, run_lens: str | None = None) -> Figure:
    """One line per lens: mean KL to the last layer (bits) against relative depth.

    Args:
        lens_kl: the lens-kl CSV (lens, layer, rel_depth, kl_bits).
        title: the figure's title.
        run_lens: the run's own lens (provenance.lens_mode), marked in the legend.
    """
    fig = new_figure(8.0, 5.0)
    ax = fig.add_subplot()
    for i, (lens, rows) in enumerate(lens_series(lens_kl).items()):
        label = lens_name(lens) + (" (this run's lens)" if lens == run_lens else "")
        ax.plot(rows["rel_depth"], rows["kl_bits"], color=LENS_COLOURS.get(lens, f"C{4 + i}"), linewidth=2,
                marker="o", markersize=3, label=label)
    ax.set_xlim(0, 1)
    # Linear below 1 bit, logarithmic above: the norm lens starts hundreds of bits off on small models, the
    # fitted lenses a few bits, and both must stay readable on one axis.
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("relative depth (layer / L; 0 = embeddings, 1 = last block output)")
    ax.set_ylabel("KL(last layer ‖ lens) (bits; log scale above 1), mean over held-out tokens")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=9, loc="upper right")
    ax.set_title(title, fontsize=10)
    return fig


def lens_kl_plot_path(run_dir: Path, name: str) -> Path:
    """Where the lens comparison plot of a model goes."""
    return run_dir / f"lenses-{name}.png"


def write_lens_kl_plot(model: LensModel, run_dir: Path) -> list[Path]:
    """Draw the lens comparison plot; none when the run has no lens-kl CSV."""
    lens_kl = model.lens_kl
    if lens_kl is None or lens_kl.empty:
        return []
    heldout = (model.lens_comparison or {}).get("heldout") or {}
    text = f", {heldout['tokens']} held-out tokens" if heldout.get("tokens") is not None else ""
    title = f"{model.name}: the lenses compared, {model.n_layers} layers{text}"
    run_lens = (model.summary.get("provenance") or {}).get("lens_mode")
    return [save_png(lens_kl_figure(lens_kl, title, run_lens), lens_kl_plot_path(run_dir, model.name))]
