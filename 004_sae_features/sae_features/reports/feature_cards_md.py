"""``feature-cards-<name>.md``: every card of one model as markdown (what a card holds: ``card_common``).

Tokens are decoded strings of any kind: a context's running text is backslash-escaped
(``token_text.md_escape``) with newlines, tabs and control characters drawn visibly; its
peak is in ``<b>``, which renders bold whatever characters the token starts or ends
with (``**`` does not next to punctuation); every token it fires on carries its
activation as ``⟨1.3⟩``. Single tokens are code spans with ``|`` escaped for tables.
"""

from __future__ import annotations

from itertools import zip_longest
from typing import Any

from layers_core.reports.formats import fmt_at, fmt_text
from layers_core.reports.markdown import md_image, md_table
from sae_features.reports.card_common import (
    CONTEXTS_NOTE,
    HEATMAP_NOTE,
    HEATMAP_TOKENS,
    HISTOGRAM_NOTE,
    WHAT_A_CARD_SHOWS,
    CardReports,
    SaeCardPlots,
    cards_of,
    fmt_activation,
    holds_rule,
    md_link,
    specialist_of,
)
from sae_features.reports.feature_card_data import CardContext, FeatureCard, TokenValue
from sae_features.reports.md_common import GENERATED_BY, TITLE, fmt_feature, fmt_score, sae_heading
from sae_features.reports.md_specialists import fmt_holds
from sae_features.reports.run_artefacts import SaeModel
from sae_features.reports.token_text import md_code, md_escape, visible


def context_text(context: CardContext) -> str:
    """A context's tokens as one markdown line: the peak in bold, each firing token followed by ``⟨value⟩``."""
    parts = []
    for i, (token, value) in enumerate(zip(context.tokens, context.values, strict=True)):
        text = md_escape(visible(token))
        if i == context.peak:
            text = f"<b>{text}</b>"
        parts.append(f"{text}\u27e8{fmt_activation(value)}\u27e9" if value > 0 or i == context.peak else text)
    return "".join(parts)


def _logit_cells(found: TokenValue | None) -> list[str]:
    return ["", ""] if found is None else [md_code(found.token), fmt_score(found.value)]


def tokens_table(card: FeatureCard) -> str:
    """Promoted and suppressed tokens side by side, strongest first."""
    rows = [[str(rank), *_logit_cells(up), *_logit_cells(down)]
            for rank, (up, down) in enumerate(zip_longest(card.promoted, card.suppressed), 1)]
    return md_table(["Rank", "Promoted", "Promoted logit per unit", "Suppressed", "Suppressed logit per unit"], rows)


def card_markdown(model: SaeModel, entry: dict[str, Any], card: FeatureCard) -> str:
    """One card: heading, the specialist's numbers, the tokens, the contexts."""
    found = specialist_of(entry, card)
    verdict = "holds" if card.holds else "does not hold"
    facts = md_table(["Feature", "Category", "Holds", "Score", "Held-out precision", "Held-out recall",
                      "Held-out AUROC"],
                     [[fmt_feature(entry, card.feature), f"`{fmt_text(card.category)}`", fmt_holds(card.holds),
                       fmt_score(found.get("score")), fmt_score(found.get("heldout_precision")),
                       fmt_score(found.get("heldout_recall")), fmt_score(found.get("heldout_auroc"))]])
    contexts = "\n".join(f"{i}. window {c.window}, max {fmt_activation(c.max)}: {context_text(c)}"
                         for i, c in enumerate(card.contexts, 1)) or "No context: it fires on no held-out window."
    parts = [f"### Feature {card.feature}, `{fmt_text(card.category)}`, residual "
             f"{fmt_at(entry.get('layer'), entry.get('rel_depth'))}: {verdict}",
             facts, f"The run's rule: a specialist holds when {holds_rule(model.rules)}.",
             tokens_table(card) if card.promoted or card.suppressed else "No promoted or suppressed tokens recorded.",
             "Top contexts (held-out corpus windows):", contexts]
    return "\n\n".join(parts)


def sae_markdown(model: SaeModel, entry: dict[str, Any], cards: list[FeatureCard],
                 plots: SaeCardPlots | None) -> str:
    """One SAE's section: its two figures, then its cards."""
    parts = [f"## Cards at {sae_heading(entry)}"]
    if not cards:
        return "\n\n".join(parts + ["No category has a specialist at this SAE: no card."])
    if plots is not None:
        layer = entry.get("layer")
        parts += [md_image(f"heatmaps, residual {layer}", plots.heatmaps.name),
                  md_image(f"histograms, residual {layer}", plots.histograms.name)]
    return "\n\n".join(parts + [card_markdown(model, entry, card) for card in cards])


def build_cards_markdown(model: SaeModel, reports: CardReports) -> str:
    """The whole markdown file of one model's cards."""
    parts = [f"# {TITLE}: feature cards of {model.name}", GENERATED_BY, WHAT_A_CARD_SHOWS, CONTEXTS_NOTE,
             "In a context, the peak token is **bold** and every token the feature fires on is followed by its "
             "activation, `token⟨1.3⟩`; newlines are drawn `↵` and tabs `⇥`. Single tokens are code spans with "
             f"spaces drawn `␣`. The same cards with shaded tokens: {md_link(reports.html.name, reports.html.name)}.",
             HEATMAP_NOTE.format(cap=HEATMAP_TOKENS), HISTOGRAM_NOTE]
    parts += [sae_markdown(model, entry, cards, reports.plots.get(int(entry["layer"])))
              for entry, cards in cards_of(model)]
    return "\n\n".join(parts) + "\n"
