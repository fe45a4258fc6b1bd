"""Markdown of attribution patching's agreement with exact patching (the JSON's ``attribution.agreement``)."""

from __future__ import annotations

from typing import Any

from activation_patching.reports.md_common import fmt_score
from activation_patching.reports.run_artefacts import PatchingModel
from layers_core.reports.formats import fmt_exact, fmt_int, fmt_text, fmt_token, json_number
from layers_core.reports.markdown import md_table

INTRO = ("Attribution patching estimates every site's patched restoration from one forward and one backward pass "
         "(plain: `approx`), or with gradients averaged along the path from the base run's input to the "
         "source's (`approx_ig`). r is Pearson's correlation of the estimates with the exact restorations over "
         "the sites of one pair, direction and component (`all`: every site together). A high r says the ranking "
         "of sites agrees, not that the estimated values are right.")


def agreement_table(rows: list[dict[str, Any]]) -> str:
    """One row per pair, direction and component: sites, both r, and the seconds each method took."""
    out = [[fmt_token(r.get("pair_id")), fmt_text(str(r.get("direction"))), fmt_text(str(r.get("component"))),
            fmt_int(r.get("n_sites")), fmt_score(r.get("r_approx")), fmt_score(r.get("r_approx_ig")),
            fmt_exact(r.get("seconds_approx")), fmt_exact(r.get("seconds_approx_ig"))] for r in rows]
    header = ["Pair", "Direction", "Component", "Sites", "r plain", "r path-averaged",
              "Seconds plain (pair, both directions)", "Seconds path-averaged (pair, both directions)"]
    return md_table(header, out)


def comparison_line(rows: list[dict[str, Any]]) -> str:
    """How often the path-averaged estimate agrees better than the plain one, and the weakest r of each."""
    both = [(p, g) for r in rows if (p := json_number(r.get("r_approx"))) is not None
            and (g := json_number(r.get("r_approx_ig"))) is not None]
    if not both:
        return "No group has both correlations (too few sites, or constant values)."
    better = sum(g > p for p, g in both)
    return (f"The path-averaged estimate agrees better than the plain one in {better} of {len(both)} groups; "
            f"the weakest r: plain {fmt_score(min(p for p, _ in both))}, path-averaged "
            f"{fmt_score(min(g for _, g in both))}.")


def attribution_section(model: PatchingModel) -> str:
    """The section: what is compared, the line, the table (or why there is nothing)."""
    methods = ", ".join(str(m) for m in (model.summary.get("attribution") or {}).get("methods") or []) or "none"
    rows = model.agreement
    if not rows:
        return "## Attribution patching\n\nNo agreement rows: no pair was fully swept, so nothing was compared."
    return "\n\n".join(["## Attribution patching", INTRO, f"Methods run: {fmt_text(methods)}.",
                        comparison_line(rows), agreement_table(rows)])
