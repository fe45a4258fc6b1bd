"""Markdown of the text-activity summary: per SAE and category, how many features the category's texts use."""

from __future__ import annotations

from typing import Any

from layers_core.reports.formats import MISSING, fmt_text
from layers_core.reports.markdown import md_table
from sae_features.artefact_schema import TEXT_ACTIVITY
from sae_features.reports.md_common import fmt_count, fmt_feature, fmt_score, sae_heading
from sae_features.reports.run_artefacts import SaeModel
from sae_features.reports.text_activity import category_activity

INTRO = ("From the text-activity CSV (one row per SAE and text, both halves, tokens after each text's first). Active "
         "per token: the category's mean number of active features per counted token (token-weighted). Features "
         "per text: the mean over its texts of the features firing on at least one of the text's tokens. Top "
         "feature: the feature with the largest mean activation on the most of the category's texts, with how many.")


def activity_rows(model: SaeModel, entry: dict[str, Any]) -> list[list[str]]:
    """One row per category of one SAE."""
    rows = model.rows_of(TEXT_ACTIVITY, int(entry["layer"]))
    out = []
    for category in model.categories:
        found = category_activity(rows, category)
        top = (MISSING if found.top_feature is None
               else f"{fmt_feature(entry, found.top_feature)} ({found.top_feature_texts} of {found.texts})")
        out.append([f"`{fmt_text(category)}`", fmt_count(found.texts), fmt_count(found.tokens),
                    fmt_score(found.active_per_token), fmt_score(found.features_active_per_text), top])
    return out


def text_activity_section(model: SaeModel) -> str:
    """The text-activity section: one table per SAE."""
    header = ["Category", "Texts", "Tokens", "Active per token", "Features per text", "Top feature (texts)"]
    parts = ["## Feature activity per category", INTRO]
    for entry in model.saes:
        parts += [f"### Activity at {sae_heading(entry)}", md_table(header, activity_rows(model, entry))]
    return "\n\n".join(parts)
