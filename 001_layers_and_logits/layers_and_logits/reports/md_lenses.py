"""The ``## Lenses compared`` section of a run with ``--lens tuned`` or ``--lens linear``.

Factual like the rest of the evaluation markdown: the numbers are copied from the
JSON's ``lens_comparison`` (mean KL over layers 0..L-1, the battery's first-rank-1
distribution under each lens, the fits' provenance) and the lens-kl CSV (KL at
layer L). The one sentence per fitted lens states how far it moves the battery's
median rank-1 depth from the norm lens's, computed from the depths as printed
(3 decimals), so the sentence and the table never disagree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from layers_and_logits.artefact_schema import LENS_KL
from layers_and_logits.reports.lens_names import LENS_WHAT, NORM, lens_name, ordered_lenses
from layers_and_logits.reports.milestones import fmt_reached
from layers_and_logits.reports.run_artefacts import LensModel
from layers_core.reports.formats import MISSING, fmt_bits, fmt_depth, fmt_exact, fmt_int, fmt_text, fmt_token
from layers_core.reports.markdown import md_image, md_table
from layers_core.runs.artefacts import artefact_path

MEAN_KL = "mean_kl_bits_layers_0_to_L_minus_1"
BATTERY_RANK1 = "battery_first_rank1"
LENS_PLOT = "lenses"  # the plot kind of ``lens_kl_plot``, linked from this section
CACHE_STATES = {
    "hit": "loaded from the cache",
    "fitted": "fitted in this run",
    "refitted": "fitted again in this run (the cached maps were damaged or did not match)",
}


def compared_lenses(comparison: dict[str, Any], lens_kl: pd.DataFrame | None) -> list[str]:
    """Every lens the comparison names (JSON means, battery, fits, CSV), norm first."""
    names = list(comparison.get(MEAN_KL) or {}) + list(comparison.get(BATTERY_RANK1) or {})
    names += list(comparison.get("fits") or {})
    if lens_kl is not None:
        names += [str(n) for n in lens_kl["lens"]]
    return ordered_lenses(names)


def fitted_lenses(comparison: dict[str, Any], lens_kl: pd.DataFrame | None) -> list[str]:
    """The compared lenses other than the norm lens."""
    return [lens for lens in compared_lenses(comparison, lens_kl) if lens != NORM]


def kl_at_last_layer(lens_kl: pd.DataFrame | None, lens: str, n_layers: int) -> float | None:
    """KL at layer L of one lens from the CSV (0 by construction), or None when absent."""
    if lens_kl is None:
        return None
    rows = lens_kl[(lens_kl["lens"] == lens) & (lens_kl["layer"] == n_layers)]
    return None if rows.empty else float(rows["kl_bits"].iloc[0])


def lens_table(model: LensModel, comparison: dict[str, Any]) -> str:
    """One row per lens: mean KL over layers 0..L-1, KL at layer L, the battery's first-rank-1 distribution."""
    means, battery = comparison.get(MEAN_KL) or {}, comparison.get(BATTERY_RANK1)
    rows = []
    for lens in compared_lenses(comparison, model.lens_kl):
        cells = [fmt_token(lens), fmt_bits(means.get(lens)),
                 fmt_bits(kl_at_last_layer(model.lens_kl, lens, model.n_layers))]
        stats = (battery or {}).get(lens)
        if battery is None:
            cells += ["not run"] * 4
        elif not isinstance(stats, dict):
            cells += [MISSING] * 4
        else:
            cells += [fmt_depth(stats.get("median")), fmt_depth(stats.get("q1")), fmt_depth(stats.get("q3")),
                      fmt_reached(stats, MISSING)]
        rows.append(cells)
    header = ["Lens", "Mean KL, layers 0..L-1 (bits)", "KL at layer L (bits)", "Rank-1 median depth", "Q1", "Q3",
              "Facts reaching rank 1"]
    return md_table(header, rows)


def _stats(battery: dict[str, Any], lens: str) -> dict[str, Any] | None:
    stats = battery.get(lens)
    return stats if isinstance(stats, dict) else None


def rank1_sentence(lens: str, battery: dict[str, Any] | None) -> str:
    """How far ``lens`` moves the battery's median first-rank-1 depth from the norm lens's.

    Earlier, later or unchanged are read from the depths as printed (3 decimals);
    a lens under which no fact reaches rank 1 says so, with the counts.
    """
    name = lens_name(lens)
    if battery is None:
        return f"The fact battery was not run, so the {name}'s effect on the rank-1 depth is not measured."
    base, moved = _stats(battery, NORM), _stats(battery, lens)
    if base is None or moved is None:
        absent = lens_name(NORM) if base is None else name
        return f"The battery's rank-1 depth under the {absent} is not in the JSON, so the two are not compared."
    before, after = fmt_depth(base.get("median")), fmt_depth(moved.get("median"))
    base_count, moved_count = fmt_reached(base, MISSING), fmt_reached(moved, MISSING)
    if before == MISSING and after == MISSING:
        counts = (f"{base_count} facts under each" if base_count == moved_count
                  else f"{base_count} facts under the norm lens, {moved_count} under the {name}")
        return f"Under neither the norm lens nor the {name} does any fact of the battery reach rank 1 ({counts})."
    if after == MISSING:
        return (f"Under the {name} no fact of the battery reaches rank 1 ({moved_count}); under the norm lens the "
                f"median rank-1 depth is {before} ({base_count} facts reach rank 1).")
    if before == MISSING:
        return (f"Under the norm lens no fact of the battery reaches rank 1 ({base_count}); under the {name} the "
                f"median rank-1 depth is {after} ({moved_count} facts reach rank 1).")
    delta = float(after) - float(before)
    if before == after:
        text = f"The {name} leaves the battery's median rank-1 depth unchanged at {before}."
    else:
        direction = "earlier" if delta < 0 else "later"
        text = (f"The {name} moves the battery's median rank-1 depth from {before} to {after} "
                f"({direction} by {fmt_depth(abs(delta))}).")
    if base_count != moved_count:
        text += (f" The medians are over different facts: {base_count} reach rank 1 under the norm lens, "
                 f"{moved_count} under the {name}.")
    return text


def kl_sentence(lens: str, means: dict[str, Any]) -> str:
    """Whether ``lens``'s mean KL over layers 0..L-1 on held-out text is below the norm lens's."""
    name = lens_name(lens)
    base, value = means.get(NORM), means.get(lens)
    if base is None or value is None:
        absent = lens_name(NORM) if base is None else name
        return f"The mean KL of the {absent} is not in the JSON, so the two are not compared."
    if value < base:
        relation = f"below the norm lens's {fmt_bits(base)} bits (by {fmt_bits(base - value)} bits)"
    elif value > base:
        relation = f"above the norm lens's {fmt_bits(base)} bits (by {fmt_bits(value - base)} bits), not below it"
    else:
        relation = f"equal to the norm lens's {fmt_bits(base)} bits, not below it"
    return (f"The {name}'s mean KL to the last layer over layers 0..L-1 on held-out text, {fmt_bits(value)} bits, "
            f"is {relation}.")


def change_lines(comparison: dict[str, Any], lens_kl: pd.DataFrame | None) -> list[str]:
    """One bullet per fitted lens: its rank-1 sentence, then its KL sentence."""
    means, battery = comparison.get(MEAN_KL) or {}, comparison.get(BATTERY_RANK1)
    return [f"- {rank1_sentence(lens, battery)} {kl_sentence(lens, means)}"
            for lens in fitted_lenses(comparison, lens_kl)]


def recipe_summary(recipe: Any) -> str:
    """The recipe's plain settings as ``key value; ...``; nested ones are named, not expanded."""
    if not isinstance(recipe, dict) or not recipe:
        return MISSING
    plain = [f"{key} {fmt_exact(value)}" for key, value in recipe.items() if not isinstance(value, dict | list)]
    nested = [key for key, value in recipe.items() if isinstance(value, dict | list)]
    text = "; ".join(plain) + (f" (in the JSON: {', '.join(nested)})" if nested else "")
    return fmt_text(text)


def fits_table(fits: dict[str, Any]) -> str:
    """How each fitted lens's maps were obtained: cache state, seconds, recipe."""
    rows = []
    for lens in ordered_lenses(fits):
        fit = fits[lens] if isinstance(fits[lens], dict) else {}
        cache = fit.get("cache")
        rows.append([fmt_token(lens), fmt_text(CACHE_STATES.get(str(cache), fmt_exact(cache))),
                     fmt_exact(fit.get("seconds")), recipe_summary(fit.get("recipe"))])
    return md_table(["Lens", "Maps", "Seconds", "Recipe"], rows)


def heldout_line(comparison: dict[str, Any]) -> str:
    """What the lenses were compared on."""
    held = comparison.get("heldout") or {}
    source = fmt_text(held.get("source", MISSING))
    return (f"Held-out text: {fmt_int(held.get('windows'))} windows of {fmt_int(held.get('window'))} tokens "
            f"({fmt_int(held.get('tokens'))} tokens), {source}; no fit saw it. The KL is KL(last layer ‖ lens) in "
            "bits, averaged over those tokens.")


def lens_section(model: LensModel, plot: Path | None) -> str | None:
    """``## Lenses compared`` for a run with a ``lens_comparison``; None for a norm, raw or next-block run."""
    comparison = model.lens_comparison
    if comparison is None:
        return None
    lens_mode = (model.summary.get("provenance") or {}).get("lens_mode", MISSING)
    lenses = compared_lenses(comparison, model.lens_kl)
    what = "\n".join(f"- {fmt_token(lens)}: {LENS_WHAT.get(lens, 'not described')}." for lens in lenses)
    intro = (f"This run's lens is `{fmt_text(str(lens_mode))}` (provenance.lens_mode): every other table and plot "
             "in this report uses it. Here the norm lens and the fitted lenses are compared on the same model. "
             "Each fitted map acts on the residual before the model's own head; at layer L every lens is the head "
             "alone, so every KL there is 0 by construction.")
    battery = ("The rank-1 depth is the relative depth (layer / L) of the first layer where the lens ranks the "
               "answer top-1, over the fact battery's aligned facts; the median and quartiles are over the facts "
               "that reach rank 1.")
    parts = ["## Lenses compared", intro, what, heldout_line(comparison), battery,
             "### KL to the last layer and the battery's rank-1 depth", lens_table(model, comparison),
             "### What the fitted lenses change", "\n".join(change_lines(comparison, model.lens_kl))]
    if plot is not None:
        parts.append("KL(last layer ‖ lens) against relative depth, one line per lens (the CSV "
                     f"`{artefact_path(Path(), model.name, LENS_KL).name}`).\n\n{md_image(LENS_PLOT, plot.name)}")
    elif model.lens_kl is None:
        parts.append(f"`{artefact_path(Path(), model.name, LENS_KL).name}` is missing: no lens plot, no KL at "
                     "layer L.")
    parts += ["### The fitted maps", fits_table(comparison.get("fits") or {}),
              "File paths and the model and corpus fingerprints of the maps are in the JSON "
              "(lens_comparison.fits)."]
    return "\n\n".join(parts)
