"""Markdown of feature discovery: per SAE, the features each criterion found, with their category profile.

The lists are the JSON's ``discovery`` (best first); each feature's profile comes from
the features CSV (``feature_profile``). Discovery runs over every text, both halves:
unlike the specialists, nothing here is tested on held-out texts.
"""

from __future__ import annotations

from typing import Any

from layers_core.reports.formats import MISSING, fmt_text
from layers_core.reports.markdown import md_table
from sae_features.artefact_schema import FEATURES
from sae_features.reports.feature_profile import feature_profile
from sae_features.reports.md_common import fmt_csv_act, fmt_feature, fmt_pct, sae_heading
from sae_features.reports.run_artefacts import SaeModel
from sae_features.reports.run_rules import SaeRules, fmt_share

CRITERIA = ("strongest", "frequent", "selective")


def criteria_text(rules: SaeRules) -> dict[str, str]:
    """What each list ranks by; the selective list's minimum is the run's ``rules.selective_min_texts``."""
    return {"strongest": "the largest activation on any counted token",
            "frequent": "the share of all counted tokens it fires on",
            "selective": "the share of its summed category means that falls in its top category (features firing "
                         f"on at least {rules.selective_min_texts} texts)"}


def intro_text(rules: SaeRules) -> str:
    """How the lists were made and what the profile columns are, with the run's rules."""
    return ("Over every text (both halves, so not a held-out test): " + "; ".join(
        f"`{name}` ranks features by {what}" for name, what in criteria_text(rules).items()) + ". `category` ranks, "
        "per category, the features by the specialist score on all texts, among features firing on at least "
        f"{fmt_share(rules.min_presence)} of the category's texts. Profile, from the features CSV: the category "
        "with the largest mean activation, that mean's share of the feature's summed category means, the share of "
        "that category's texts the feature fires on, the runner-up category, and the largest activation on any "
        "token.")


def criterion_rows(model: SaeModel, entry: dict[str, Any]) -> list[list[str]]:
    """One row per feature of the strongest, frequent and selective lists of one SAE, best first."""
    rows_csv = model.rows_of(FEATURES, int(entry["layer"]))
    found = dict(entry.get("discovery") or {})
    rows = []
    for name in CRITERIA:
        for rank, feature in enumerate(found.get(name) or [], 1):
            profile = feature_profile(rows_csv, int(feature))
            if profile is None:
                rows.append([name, str(rank), fmt_feature(entry, feature), "not in the features CSV",
                             *([MISSING] * 5)])
                continue
            runner = (MISSING if profile.runner_up is None
                      else f"`{fmt_text(profile.runner_up)}` ({fmt_pct(profile.runner_up_share)})")
            rows.append([name, str(rank), fmt_feature(entry, feature), f"`{fmt_text(profile.top_category)}`",
                         fmt_pct(profile.top_share), fmt_csv_act(profile.top_mean), fmt_pct(profile.top_text_frequency),
                         runner, fmt_csv_act(profile.max_activation)])
    return rows


def category_lines(model: SaeModel, entry: dict[str, Any]) -> str:
    """The ``category`` criterion's features per category, best first."""
    found = dict((entry.get("discovery") or {}).get("category") or {})
    return "\n".join(f"- `{fmt_text(c)}`: " + (", ".join(fmt_feature(entry, f) for f in found.get(c) or []) or "none")
                     for c in model.categories)


def discovery_section(model: SaeModel) -> str:
    """The discovery section: the criteria, one profile table and one category list per SAE."""
    header = ["Criterion", "Rank", "Feature", "Top category", "Share", "Mean in top category",
              "Top category's texts fired on", "Runner-up (share)", "Max activation"]
    parts = ["## Discovered features", intro_text(model.rules)]
    for entry in model.saes:
        rows = criterion_rows(model, entry)
        parts += [f"### Discovered at {sae_heading(entry)}",
                  md_table(header, rows) if rows else "No feature found by these criteria.",
                  "By category (`category` criterion):\n\n" + category_lines(model, entry)]
    return "\n\n".join(parts)
