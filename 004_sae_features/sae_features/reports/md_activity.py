"""Markdown of feature activity on the category texts, per SAE (the JSON's ``activity``), beside the seed's numbers.

Counted over every category text (both halves), on each text's tokens after its first
(``layers_core.sae.text_features``). A feature is active when it fires on at least one counted
token; sparsity is the share of the SAE's features that never fires on any text (the
seed's measure), not the share of zeros per token; active per token is L0 on these texts.
"""

from __future__ import annotations

from layers_core.reports.formats import fmt_at, fmt_text
from layers_core.reports.markdown import md_table
from sae_features.reports.md_common import fmt_count, fmt_pct, fmt_score
from sae_features.reports.run_artefacts import SaeModel
from sae_features.reports.seed_reference import SEED_ACTIVE, SEED_D_SAE, SEED_MODEL, SEED_SPARSITY

INTRO = ("Over every category text (both halves), counting each text's tokens after the first. Features active: "
         "features that fire on at least one counted token. Sparsity: the share of the SAE's features that never "
         "fire on any text (the seed's measure; not the share of zeros per token). Active per token: the mean "
         "number of features firing on a token (L0 on these texts; the quality table's L0 is on corpus text).")
SEED_LINE = (f"For reference, the seed prototype reported {SEED_SPARSITY * 100:.2f}% sparsity, "
             f"{SEED_ACTIVE:,} of {SEED_D_SAE:,} features active, on {SEED_MODEL} with its own texts and SAEs; "
             "the share depends on the SAE's width, its sparsity penalty and the texts, so it is a reference, "
             "not a target.")


def activity_table(model: SaeModel) -> str:
    """One row per SAE: features active of its width, sparsity, active per token, tokens counted."""
    rows = []
    for entry in model.saes:
        activity = dict(entry.get("activity") or {})
        rows.append([fmt_at(entry.get("layer"), entry.get("rel_depth")), fmt_text(str(entry.get("sae"))),
                     f"{fmt_count(activity.get('features_active'))} of {fmt_count(entry.get('d_sae'))}",
                     fmt_pct(activity.get("features_active_frac")), fmt_pct(activity.get("sparsity")),
                     fmt_score(activity.get("active_per_token")), fmt_count(activity.get("tokens"))])
    header = ["Layer", "SAE", "Features active", "Active share", "Sparsity", "Active per token", "Tokens"]
    return md_table(header, rows)


def activity_lines(model: SaeModel) -> str:
    """Each SAE's numbers in the seed's words: ``87.35% sparsity, 3,108 of 24,576 features active``."""
    lines = []
    for entry in model.saes:
        activity = dict(entry.get("activity") or {})
        lines.append(f"- Residual {fmt_at(entry.get('layer'), entry.get('rel_depth'))}: "
                     f"{fmt_pct(activity.get('sparsity'))} sparsity, {fmt_count(activity.get('features_active'))} "
                     f"of {fmt_count(entry.get('d_sae'))} features active.")
    return "\n".join(lines)


def activity_section(model: SaeModel) -> str:
    """The activity section: what is counted, per SAE in the seed's words and as a table, the seed's reference."""
    return "\n\n".join(["## Feature activity on the category texts", INTRO, activity_lines(model), SEED_LINE,
                        activity_table(model)])
