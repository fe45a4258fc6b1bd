"""Markdown of the feature cards in the evaluation: where they are, and per SAE each card in one line."""

from __future__ import annotations

from layers_core.reports.formats import fmt_at, fmt_text
from layers_core.reports.markdown import md_table
from sae_features.reports.card_common import CardReports, cards_of, md_link
from sae_features.reports.md_common import fmt_act, fmt_feature
from sae_features.reports.md_specialists import fmt_holds
from sae_features.reports.run_artefacts import SaeModel
from sae_features.reports.token_text import md_code

TOP_PROMOTED = 3


def cards_section(model: SaeModel, reports: CardReports) -> str:
    """Links to the cards and their figures, and a table of the cards (top promoted tokens, strongest context)."""
    files = (f"One card per SAE and category with a specialist: {md_link(reports.markdown.name, reports.markdown.name)}"
             f" (markdown) and {md_link(reports.html.name, reports.html.name)} (one static page, tokens shaded by "
             "activation). Contexts come from held-out corpus windows the SAE did not train on.")
    figures = [f"- residual {fmt_at(entry.get('layer'), entry.get('rel_depth'))}: "
               f"{md_link('heatmaps', reports.plots[int(entry['layer'])].heatmaps.name)}, "
               f"{md_link('histograms', reports.plots[int(entry['layer'])].histograms.name)}"
               for entry, cards in cards_of(model) if cards and int(entry["layer"]) in reports.plots]
    rows = [[fmt_at(entry.get("layer"), entry.get("rel_depth")), f"`{fmt_text(card.category)}`",
             fmt_feature(entry, card.feature), fmt_holds(card.holds),
             ", ".join(md_code(t.token) for t in card.promoted[:TOP_PROMOTED]) or "none",
             fmt_act(card.contexts[0].max) if card.contexts else "none"]
            for entry, cards in cards_of(model) for card in cards]
    parts = ["## Feature cards", files]
    if figures:
        parts.append("Figures per SAE:\n\n" + "\n".join(figures))
    header = ["Layer", "Category", "Feature", "Holds", f"Top {TOP_PROMOTED} promoted tokens",
              "Strongest context (peak activation)"]
    parts.append(md_table(header, rows) if rows else "No SAE has a specialist: no card.")
    return "\n\n".join(parts)
