"""Markdown of specialists across depth: per SAE, how many categories have a specialist that holds, against the seed.

The counts are the JSON's ``depth`` (a specialist holds by the run's ``specialist_rule``,
on the test half). The comparison with the seed takes the SAE nearest relative depth
0.5 and the deepest one and says whether the deeper has more, fewer or the same share
of categories with a holding specialist, as the seed's 5 of 7 at depth 0.5 and 7 of 7
at 0.83-0.92 did; it claims no more than that direction.
"""

from __future__ import annotations

from layers_core.reports.formats import fmt_at, fmt_depth, fmt_int, fmt_text
from layers_core.reports.markdown import md_table
from sae_features.reports.quality_verdict import sae_verdicts
from sae_features.reports.run_artefacts import SaeModel
from sae_features.reports.seed_reference import (
    SEED_CATEGORIES,
    SEED_DEPTH,
    SEED_LAYERS,
    SEED_MODEL,
    deepest,
    depth_points,
    nearest_to_mid,
    trend_word,
)


def holding_categories(model: SaeModel, layer: int) -> list[str]:
    """The categories whose specialist holds at one SAE, in the dataset's order."""
    entry = next((e for e in model.saes if int(e["layer"]) == layer), {})
    found = dict(entry.get("specialists") or {})
    return [c for c in model.categories if (found.get(c) or {}).get("holds") is True]


def depth_table(model: SaeModel) -> str:
    """One row per SAE: categories with a specialist that holds, which ones, and whether the SAE may be read."""
    good = {v.layer: v.ok for v in sae_verdicts(model)}
    rows = []
    for point in depth_points(model.depth):
        names = holding_categories(model, point.layer)
        rows.append([fmt_at(point.layer, point.rel_depth), f"{point.holding} of {point.categories}",
                     ", ".join(f"`{fmt_text(n)}`" for n in names) or "none",
                     "yes" if good.get(point.layer, False) else "**NO**"])
    return md_table(["Layer", "Categories with a specialist that holds", "Which", "SAE meets thresholds"], rows)


def seed_line() -> str:
    """What the seed reported across depth."""
    found = ", ".join(f"{n} of {SEED_CATEGORIES} at layer {layer} ({fmt_depth(layer / SEED_LAYERS)})"
                      for layer, n in SEED_DEPTH)
    return (f"The seed prototype reported, on {SEED_MODEL} ({SEED_LAYERS} layers) with its own SAEs, 10 texts per "
            f"category and its own criterion: {found}.")


def comparison_lines(model: SaeModel) -> list[str]:
    """This run's mid-depth and deepest counts, and the direction set beside the seed's, with its limits."""
    points = depth_points(model.depth)
    mid, deep = nearest_to_mid(points), deepest(points)
    if mid is None or deep is None:
        return ["No SAE has a depth entry: nothing to compare."]
    lines = [f"This run: nearest depth 0.5, residual {fmt_at(mid.layer, mid.rel_depth)} has {mid.holding} of "
             f"{mid.categories}; the deepest SAE, residual {fmt_at(deep.layer, deep.rel_depth)}, has {deep.holding} "
             f"of {deep.categories}."]
    if mid.layer == deep.layer:
        lines.append("The SAE nearest depth 0.5 is also the deepest, so this run has no trend with depth to set "
                     "beside the seed's.")
    else:
        word = trend_word(mid, deep)
        agree = "As in the seed" if word == "more" else "Unlike the seed"
        lines.append(f"{agree}, the deepest SAE has {word} categories with a holding specialist than the one "
                     f"nearest depth 0.5 ({deep.holding} of {deep.categories} against {mid.holding} of "
                     f"{mid.categories}), on {len(points)} SAEs.")
    lines.append("Another model, other SAEs, other texts and a held-out rule: the counts are not comparable "
                 "one for one, only the direction is; a few SAEs make a few points, not a curve.")
    weak = [v for v in sae_verdicts(model) if not v.ok]
    if weak:
        lines.append(f"{len(weak)} of these SAEs are below the quality thresholds (the warning at the top): their "
                     "counts say little about the model.")
    return lines


def depth_section(model: SaeModel) -> str:
    """The across-depth section: the rule, the table, the seed and this run side by side."""
    rule = f"A specialist holds when: {fmt_text(model.specialist_rule)}."
    n_layers = model.n_layers
    shape = (f"The model has {fmt_int(n_layers)} layers (recovered from the SAEs' relative depths)."
             if n_layers else "")
    parts = ["## Specialists across depth", rule, *([shape] if shape else []), depth_table(model), seed_line(),
             " ".join(comparison_lines(model))]
    return "\n\n".join(parts)
