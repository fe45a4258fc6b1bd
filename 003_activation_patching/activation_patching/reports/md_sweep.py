"""Markdown of the full sweeps: per pair, the strongest sites of each component in each direction."""

from __future__ import annotations

import pandas as pd

from activation_patching.artefact_schema import PATCHING
from activation_patching.reports.md_common import fmt_score
from activation_patching.reports.run_artefacts import PatchingModel
from activation_patching.reports.sweep_sites import COMPONENT_NAMES, COMPONENTS, effect, strongest
from layers_core.reports.formats import fmt_depth, fmt_head, fmt_int, fmt_token
from layers_core.reports.markdown import md_table

TOP_SITES = 3
DIRECTIONS = ("denoise", "noise")


def site_cells(row: pd.Series) -> list[str]:
    """Site (layer or head), position (``all`` for every position at once), token, relative depth."""
    site = fmt_head(row["layer"], row["head"]) if row["component"] == "head" else fmt_int(row["layer"])
    every = pd.isna(row["position"])
    return [site, "all" if every else fmt_int(row["position"]), "" if every else fmt_token(row["token"]),
            fmt_depth(row["rel_depth"])]


def sites_table(rows: pd.DataFrame, n: int = TOP_SITES) -> str:
    """The ``n`` strongest sites per component and direction."""
    out = []
    for direction in DIRECTIONS:
        for component in COMPONENTS:
            for rank, (_, row) in enumerate(strongest(rows, direction, component, n).iterrows(), 1):
                out.append([direction, COMPONENT_NAMES[component], str(rank), *site_cells(row),
                            fmt_score(row["restoration"]), fmt_score(effect(direction, float(row["restoration"])))])
    header = ["Direction", "Component", "Rank", "Layer / head", "Position", "Token", "Rel. depth", "Restoration",
              "Effect"]
    return md_table(header, out)


def sweep_section(model: PatchingModel) -> str:
    """The full-sweep section, one table per fully swept pair."""
    if not model.full_sweeps:
        return "## Full sweep\n\nNo pair was fully swept in this run (`--pairs 0`): only the battery's residual sweep."
    intro = (f"The {TOP_SITES} strongest sites per component and direction, each patched alone. Effect: the "
             "restoration when denoising, the damage 1 - restoration when noising. A residual or block output is "
             "patched at one position; a head's output at every position at once (`all`) or at the answer position. "
             "The residual's layer 0 (the input token itself) and layer L (the final residual) score 1 or 0 by "
             "construction and are left out.")
    parts = ["## Full sweep", intro]
    for pair_id in model.full_sweeps:
        parts += [f"### Pair {fmt_token(pair_id)}", sites_table(model.pair_rows(PATCHING, pair_id))]
    return "\n\n".join(parts)
