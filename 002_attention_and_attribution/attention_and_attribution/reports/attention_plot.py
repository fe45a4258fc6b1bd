"""``attention-<name>.png``: where the best-ranked heads look from the answer position of the main prompt.

One row per head (the best by rank in the head summary), one column per token of
the main prompt, coloured and labelled by the attention weight; each column's
token role is written under its token.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from attention_and_attribution.artefact_schema import ATTENTION
from attention_and_attribution.reports.run_artefacts import AttributionModel
from layers_core.reports.formats import fmt_head
from layers_core.reports.plot_style import new_figure, plot_label, save_png, text_colour

N_HEADS = 4
MAX_COLUMNS = 24  # beyond this (a chat template) only the last positions are drawn


def attention_grid(rows: pd.DataFrame, heads: list[tuple[int, int]]) -> tuple[list[str], list[str], np.ndarray]:
    """Tokens, roles and ``[head, position]`` weights of one prompt's attention rows (last positions only)."""
    positions = sorted(int(p) for p in rows["pos"].unique())[-MAX_COLUMNS:]
    by_pos = rows.drop_duplicates("pos").set_index("pos")
    grid = np.full((len(heads), len(positions)), np.nan)
    for i, (layer, head) in enumerate(heads):
        chosen = rows[(rows["layer"] == layer) & (rows["head"] == head)].set_index("pos")["weight"]
        grid[i] = [float(chosen.get(p, np.nan)) for p in positions]
    return [str(by_pos.at[p, "token"]) for p in positions], [str(by_pos.at[p, "role"]) for p in positions], grid


def attention_figure(tokens: list[str], roles: list[str], grid: np.ndarray, labels: list[str], title: str) -> Figure:
    """Draw the weights as a grid of labelled cells."""
    n_heads, n_pos = grid.shape
    fig = new_figure(max(6.5, 2.2 + 0.8 * n_pos), 2.4 + 0.55 * n_heads)
    ax = fig.add_subplot()
    image = ax.imshow(grid, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
    colours = np.asarray(image.cmap(image.norm(np.nan_to_num(grid, nan=0.0))))
    for i in range(n_heads):
        for j in range(n_pos):
            if np.isfinite(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color=text_colour(tuple(colours[i, j]))).set_in_layout(False)
    ax.set_xticks(range(n_pos), [f"{plot_label(t)}\n{r}" for t, r in zip(tokens, roles, strict=True)], fontsize=7,
                  rotation=45 if n_pos > 12 else 0, ha="right" if n_pos > 12 else "center")
    ax.set_yticks(range(n_heads), labels, fontsize=8)
    ax.set_xlabel("key token and its role (\u2423 = space); the last column is the answer position", fontsize=9)
    ax.set_title(title, fontsize=10, loc="left")
    fig.colorbar(image, ax=ax, label="attention weight", shrink=0.8, pad=0.01)
    return fig


def attention_path(run_dir: Path, name: str) -> Path:
    """Where the attention plot of a model goes."""
    return run_dir / f"attention-{name}.png"


def write_attention_plot(model: AttributionModel, run_dir: Path) -> Path | None:
    """Draw the attention of the best-ranked heads on the main prompt; None when the CSV has no rows for it."""
    if model.main_rows(ATTENTION).empty:
        return None
    best = model.head_summary.head(N_HEADS)[["layer", "head", "rank"]].to_numpy(dtype=int)
    heads = [(int(layer), int(head)) for layer, head, _ in best]
    labels = [f"{fmt_head(layer, head)} (rank {rank})" for layer, head, rank in best]
    tokens, roles, grid = attention_grid(model.main_rows(ATTENTION), heads)
    text = str(model.prompt(model.main_prompt_id).get("prompt", ""))
    text = text if len(text) <= 70 else text[:69] + "\u2026"
    title = (f"{model.name}: attention from the answer position,\nthe {len(heads)} best heads by median DLA; "
             f"prompt '{model.main_prompt_id}':\n{text!r}")
    return save_png(attention_figure(tokens, roles, grid, labels, title), attention_path(run_dir, model.name))
