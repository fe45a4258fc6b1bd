"""Per-model trajectories against layer: p(answer), answer rank, entropy, KL to final.

One line per battery prompt from the pure next-token CSV; the main prompt is
drawn thicker. Prompts whose answer could not be aligned to a token have no
answer columns and appear only in the entropy and KL panels.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from layers_and_logits.reports.run_artefacts import LensModel
from layers_core.reports.plot_style import new_figure, save_png

PANELS = (
    ("p_answer", "p(answer)", False),
    ("answer_rank", "answer rank (log scale; 1 = top-1, at the top)", True),
    ("entropy_bits", "entropy of the lens distribution (bits)", False),
    ("kl_to_final_bits", "KL(last layer ‖ layer) (bits)", False),
)
ANSWER_COLUMNS = ("p_answer", "answer_rank")


def prompt_series(pure: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The pure next-token rows of each prompt, sorted by layer, in CSV order of first appearance."""
    return {str(pid): rows.sort_values("layer") for pid, rows in pure.groupby("prompt_id", sort=False)}


def has_answer(rows: pd.DataFrame) -> bool:
    """True when the prompt's answer was aligned (its answer columns hold numbers)."""
    return bool(rows["answer_rank"].notna().any())


def _draw_panel(ax: Axes, series: dict[str, pd.DataFrame], column: str, log_rank: bool, main: str,
                colours: dict[str, str], labels: dict[str, str]) -> None:
    for pid, rows in series.items():
        if column in ANSWER_COLUMNS and not has_answer(rows):
            continue
        ax.plot(rows["layer"], rows[column], color=colours[pid], label=labels[pid],
                linewidth=2.6 if pid == main else 1.3, marker="o" if pid == main else None, markersize=3)
    if log_rank:
        ax.set_yscale("log")
        ax.invert_yaxis()
    ax.grid(True, alpha=0.3)
    ax.set_xlabel("layer")


def trajectory_figure(pure: pd.DataFrame, main_prompt_id: str, roles: dict[str, str], title: str,
                      vocab_size: int | None) -> Figure:
    """Four panels against layer, one line per prompt of the pure next-token CSV."""
    series = prompt_series(pure)
    palette = [f"C{i}" for i in range(10)]
    colours = {pid: palette[i % len(palette)] for i, pid in enumerate(series)}
    labels = {pid: pid + ("" if roles.get(pid) == pid else f" ({roles.get(pid, '?')})")
              + ("" if has_answer(rows) else ", no aligned answer")
              + (", main" if pid == main_prompt_id else "") for pid, rows in series.items()}
    fig = new_figure(12.0, 8.5)
    axes = fig.subplots(2, 2, sharex=True)
    for ax, (column, ylabel, log_rank) in zip(axes.flat, PANELS, strict=True):
        _draw_panel(ax, series, column, log_rank, main_prompt_id, colours, labels)
        ax.set_ylabel(ylabel)
    axes[0, 0].set_ylim(-0.02, 1.02)
    if vocab_size:
        axes[1, 0].axhline(math.log2(vocab_size), color="grey", linestyle="--", linewidth=1)
        top = math.log2(vocab_size)
        axes[1, 0].annotate(f"uniform: log2(vocab) = {top:.2f}", (float(pure["layer"].max()), top),
                            textcoords="offset points", xytext=(-4, 3), ha="right", va="bottom",
                            fontsize=8, color="grey")
        axes[1, 0].set_ylim(0.0, top * 1.1)
    handles, names = axes[1, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncols=min(3, len(names)), fontsize=9)
    fig.suptitle(title, fontsize=11)
    return fig


def trajectory_path(run_dir: Path, name: str) -> Path:
    """Where the trajectory plot of a model goes."""
    return run_dir / f"trajectory-{name}.png"


def write_trajectory(model: LensModel, run_dir: Path) -> list[Path]:
    """Draw the trajectory plot; none when the pure next-token CSV is absent."""
    if model.pure is None:
        return []
    roles = {str(p["prompt_id"]): str(p.get("role", "?")) for p in model.summary.get("prompts", [])}
    lens = model.summary.get("provenance", {}).get("lens_mode", "?")
    title = (f"{model.name}: {lens} lens at the answer position, {model.n_layers} layers "
             f"(layer 0 = embeddings, {model.n_layers} = last block output)")
    fig = trajectory_figure(model.pure, model.main_prompt_id, roles, title,
                            model.summary["diagnostics"].get("vocab_size"))
    return [save_png(fig, trajectory_path(run_dir, model.name))]
