"""Markdown of the specialists: per SAE and category, the feature chosen on the find half and its held-out test."""

from __future__ import annotations

from typing import Any

from layers_core.reports.formats import MISSING, fmt_text
from layers_core.reports.markdown import md_table
from sae_features.reports.md_common import fmt_act, fmt_feature, fmt_score, sae_heading
from sae_features.reports.run_artefacts import SaeModel
from sae_features.reports.run_rules import SaeRules, fmt_share


def intro_text(rules: SaeRules) -> str:
    """How a specialist is chosen and tested; the presence a candidate needs is the run's ``rules``."""
    return ("Each category's texts alternate between a find half and a test half. A text's value for a feature is "
            "its mean activation over the text's counted tokens. On the find half, score = (mean over the category's "
            "texts - mean over the other texts) / (standard deviation over all find texts), among features firing on "
            f"at least {fmt_share(rules.min_presence)} of the category's find texts; the best is the category's "
            "specialist. Its threshold maximises F1 on the find half. On the test half, never seen in the choice: "
            "precision and recall at that threshold, and AUROC of the values (0.5 = chance, ties count one half).")


def none_text(rules: SaeRules) -> str:
    """The row of a category without a specialist."""
    return (f"none: no feature fires on at least {fmt_share(rules.min_presence)} of the category's find texts "
            "with a positive score")


def fmt_holds(value: Any) -> str:
    """``**yes**`` for a specialist that holds, ``no`` for one that does not, ``n/a`` when not recorded."""
    return "**yes**" if value is True else ("no" if value is False else MISSING)


def specialist_row(entry: dict[str, Any], category: str, found: dict[str, Any] | None, rules: SaeRules) -> list[str]:
    """One category's specialist at one SAE, or a row saying there is none."""
    if not found:
        return [f"`{fmt_text(category)}`", none_text(rules), *([""] * 8)]
    return [f"`{fmt_text(category)}`", fmt_feature(entry, found.get("feature")), fmt_score(found.get("score")),
            fmt_act(found.get("find_mean_in")), fmt_act(found.get("find_mean_out")), fmt_act(found.get("threshold")),
            fmt_score(found.get("heldout_precision")), fmt_score(found.get("heldout_recall")),
            fmt_score(found.get("heldout_auroc")), fmt_holds(found.get("holds"))]


def specialists_table(model: SaeModel, entry: dict[str, Any]) -> str:
    """One row per category of one SAE, in the dataset's order."""
    found = dict(entry.get("specialists") or {})
    rows = [specialist_row(entry, c, found.get(c), model.rules) for c in model.categories]
    header = ["Category", "Feature", "Score", "Find mean in", "Find mean out", "Threshold", "Held-out precision",
              "Held-out recall", "Held-out AUROC", "Holds"]
    return md_table(header, rows)


def specialists_section(model: SaeModel) -> str:
    """The specialists section: the method, the rule, one table per SAE."""
    parts = ["## Specialists per layer", intro_text(model.rules),
             f"A specialist holds when: {fmt_text(model.specialist_rule)}."]
    for entry in model.saes:
        parts += [f"### Specialists at {sae_heading(entry)}", specialists_table(model, entry)]
    return "\n\n".join(parts)
