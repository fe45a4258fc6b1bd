"""The classic logit-lens picture: top-1 token per layer and prompt position.

Rows are layers (0 = embeddings, at the bottom; L = last block, at the top),
columns are the input positions labelled with their tokens, each cell shows the
lens's top-1 token as text and is coloured by its probability (or, in the
second file, by the entropy of the lens distribution).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from layers_and_logits.reports.run_artefacts import SCHEMA, LensModel
from layers_core.reports.plot_style import new_figure, plot_label, save_png, text_colour
from layers_core.reports.run_reader import ReportInputError

CELL_CHARS = 9  # characters of a top-1 token drawn in a cell before the ellipsis
TICK_CHARS = 12  # characters of an input token drawn under its column
MAX_COLUMNS = 24  # beyond this (e.g. a chat template) only the last positions are drawn, to stay legible


def heatmap_grid(
    records: pd.DataFrame,
    prompt_id: str,
    value: str = "p_top1",
    fallback_tokens: list[str] | None = None,
) -> tuple[list[str], list[int], list[list[str]], np.ndarray]:
    """The data the heatmap draws, straight from the records CSV.

    Args:
        records: the ``output-<name>-records.csv`` table.
        prompt_id: the prompt to draw.
        value: the column that colours the cells (``p_top1`` or ``entropy_bits``).
        fallback_tokens: input tokens by position, used when the CSV has no ``token`` column.

    Returns:
        (tokens, layers, text_grid, value_grid): input token per position; layers in
        ascending order; ``text_grid[i][j]`` the top-1 token at ``layers[i]`` and position
        j; ``value_grid[i, j]`` the colouring value (NaN where the CSV has no row).

    Raises:
        ReportInputError: the prompt has no rows, or a (layer, pos) appears twice.
    """
    rows = records[records["prompt_id"] == prompt_id]
    if rows.empty:
        raise ReportInputError(f"the records CSV has no rows for prompt '{prompt_id}': {SCHEMA.rerun('this model')}.")
    if rows.duplicated(["layer", "pos"]).any():
        raise ReportInputError(f"the records CSV repeats a (layer, pos) for prompt '{prompt_id}': "
                               f"{SCHEMA.rerun('this model')}.")
    positions = sorted(int(p) for p in rows["pos"].unique())
    layers = sorted(int(x) for x in rows["layer"].unique())
    text = rows.pivot(index="layer", columns="pos", values="top1").reindex(index=layers, columns=positions)
    values = rows.pivot(index="layer", columns="pos", values=value).reindex(index=layers, columns=positions)
    if "token" in rows.columns:
        by_pos = rows.drop_duplicates("pos").set_index("pos")["token"]
        tokens = [str(by_pos[p]) for p in positions]
    else:
        fallback = fallback_tokens or []
        tokens = [fallback[p] if p < len(fallback) else str(p) for p in positions]
    text_grid = [["" if pd.isna(t) else str(t) for t in row] for row in text.to_numpy()]
    return tokens, layers, text_grid, values.to_numpy(dtype=float)


def heatmap_figure(
    tokens: list[str],
    layers: list[int],
    text_grid: list[list[str]],
    value_grid: np.ndarray,
    *,
    title: str,
    colour_label: str,
    vmax: float,
    cmap: str,
) -> Figure:
    """Draw the grid: one text cell per (layer, position), the last position boxed in red."""
    n_layers, n_pos = value_grid.shape
    fig = new_figure(max(6.5, 2.2 + 0.95 * n_pos), max(4.5, 2.2 + 0.27 * n_layers))
    ax = fig.add_subplot()
    image = ax.imshow(value_grid, origin="lower", aspect="auto", cmap=cmap, vmin=0.0, vmax=vmax,
                      interpolation="nearest")
    colours = image.cmap(image.norm(np.nan_to_num(value_grid, nan=0.0)))
    for i in range(n_layers):
        for j in range(n_pos):
            cell = ax.text(j, i, plot_label(text_grid[i][j], CELL_CHARS), ha="center", va="center",
                           fontsize=8, color=text_colour(tuple(float(c) for c in np.asarray(colours)[i, j])))
            cell.set_in_layout(False)  # inside the axes anyway; measuring every cell makes layout slow
    ax.add_patch(Rectangle((n_pos - 1.5, -0.5), 1.0, n_layers, fill=False, edgecolor="red", linewidth=2.5))
    ax.set_xticks(range(n_pos), [plot_label(t, TICK_CHARS) for t in tokens], fontsize=8,
                  rotation=45 if n_pos > 12 else 0, ha="right" if n_pos > 12 else "center")
    ax.set_yticks(range(n_layers), [str(x) for x in layers], fontsize=7)
    ax.set_xlabel("input token at each position (\u2423 = space)\n"
                  "red box: the answer position, whose top-1 is the predicted next token", fontsize=9)
    ax.set_ylabel("layer\n(0 = embeddings, at the bottom; L = last block output, at the top)", fontsize=9)
    ax.set_title(title, fontsize=10, loc="left")
    fig.colorbar(image, ax=ax, label=colour_label, shrink=0.6, pad=0.01)
    return fig


def last_columns(
    tokens: list[str], text_grid: list[list[str]], value_grid: np.ndarray, n: int = MAX_COLUMNS
) -> tuple[list[str], list[list[str]], np.ndarray]:
    """The last n positions of a grid (all of it when it has n or fewer)."""
    if len(tokens) <= n:
        return tokens, text_grid, value_grid
    return tokens[-n:], [row[-n:] for row in text_grid], value_grid[:, -n:]


def _title(model: LensModel, prompt: dict, what: str, n_shown: int, n_all: int) -> str:
    text = str(prompt.get("prompt", ""))
    text = text if len(text) <= 70 else text[:69] + "\u2026"
    lens = model.summary.get("provenance", {}).get("lens_mode", "?")
    shown = "" if n_shown == n_all else f" (last {n_shown} of {n_all} positions shown)"
    return (f"{model.name}: top-1 token of the {lens} lens, coloured by {what}\n"
            f"prompt '{prompt['prompt_id']}': {text!r}{shown}")


def heatmap_paths(run_dir: Path, name: str) -> tuple[Path, Path]:
    """Where the probability and the entropy heatmaps of a model go."""
    return run_dir / f"heatmap-{name}.png", run_dir / f"heatmap-entropy-{name}.png"


def write_heatmaps(model: LensModel, run_dir: Path) -> list[Path]:
    """Draw both heatmaps of the main prompt; none when the records CSV is absent."""
    if model.records is None:
        return []
    prompt = model.prompt(model.main_prompt_id)
    tokens = [str(t) for t in prompt.get("tokens") or []]
    vocab = model.summary["diagnostics"].get("vocab_size")
    prob_path, entropy_path = heatmap_paths(run_dir, model.name)
    all_tokens, layers, all_text, all_probs = heatmap_grid(model.records, model.main_prompt_id, "p_top1", tokens)
    tok, text, probs = last_columns(all_tokens, all_text, all_probs)
    n_shown, n_all = len(tok), len(all_tokens)
    fig = heatmap_figure(tok, layers, text, probs, title=_title(model, prompt, "its probability", n_shown, n_all),
                         colour_label="probability of the top-1 token", vmax=1.0, cmap="viridis")
    save_png(fig, prob_path)
    _, _, _, entropy = heatmap_grid(model.records, model.main_prompt_id, "entropy_bits", tokens)
    _, _, entropy = last_columns(all_tokens, all_text, entropy)
    top = math.log2(vocab) if vocab else float(np.nanmax(entropy))
    fig = heatmap_figure(tok, layers, text, entropy, title=_title(model, prompt, "entropy", n_shown, n_all),
                         colour_label="entropy of the lens distribution (bits)\n"
                         f"top of the scale: log2(vocab) = {top:.2f}, uniform",
                         vmax=top, cmap="viridis_r")
    save_png(fig, entropy_path)
    return [prob_path, entropy_path]
