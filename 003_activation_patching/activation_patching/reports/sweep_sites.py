"""The strongest sites of a full sweep, read from the patching CSV.

"Strongest" means the largest effect in the direction's own sense: denoising, the
largest restoration (the site alone brings the clean answer back); noising, the
smallest restoration (the site alone does the most damage, ``1 - restoration``).
Ties keep the CSV's order (layer, then position), so the choice is deterministic.
The residual's layer 0 (the input embedding: patching it swaps the token itself)
and layer L (the final residual: at the answer position it is the output, elsewhere
it reaches nothing) score exactly 1 or 0 by construction and are left out of the ranking.
"""

from __future__ import annotations

import pandas as pd

COMPONENTS = ("resid_pre", "attn_out", "mlp_out", "head")
COMPONENT_NAMES = {"resid_pre": "residual", "attn_out": "attention output", "mlp_out": "MLP output",
                   "head": "head output (hook_z)"}


def informative(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows without the residual's first and last layer, whose restorations are fixed by construction."""
    layers = rows.loc[rows["component"] == "resid_pre", "layer"]
    if layers.empty:
        return rows
    edge = (rows["component"] == "resid_pre") & rows["layer"].isin([layers.min(), layers.max()])
    return rows[~edge]


def strongest(rows: pd.DataFrame, direction: str, component: str, n: int) -> pd.DataFrame:
    """The ``n`` rows of one direction and component with the largest effect (module docstring)."""
    chosen = informative(rows)
    chosen = chosen[(chosen["direction"] == direction) & (chosen["component"] == component)]
    chosen = chosen[chosen["restoration"].notna()]
    return chosen.sort_values("restoration", ascending=direction != "denoise", kind="stable").head(n)


def effect(direction: str, restoration: float) -> float:
    """The effect of a site: its restoration when denoising, the damage ``1 - restoration`` when noising."""
    return restoration if direction == "denoise" else 1.0 - restoration


def head_grid_rows(rows: pd.DataFrame, direction: str, answer_position: int | None) -> pd.DataFrame:
    """Head rows of one direction, at every position together (``None``) or at the answer position."""
    heads = rows[(rows["component"] == "head") & (rows["direction"] == direction)]
    if answer_position is None:
        return heads[heads["position"].isna()]
    return heads[heads["position"] == answer_position]
