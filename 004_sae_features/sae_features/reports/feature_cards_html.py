"""``feature-cards-<name>.html``: every card of one model as one static page (inline CSS, no script, no fetch).

Each token of a context or text is a span shaded by its activation over the card's
largest (``FeatureCard.top_activation``), the peak outlined, the value in its ``title``
(shown on hover). Every string from the artefacts goes through ``html.escape`` after
``token_text.visible`` (newlines, tabs, controls drawn); each token is bidi-isolated, so
right-to-left text cannot reorder its neighbours. Images are the run folder's PNGs, by
relative path.
"""

from __future__ import annotations

from html import escape
from itertools import zip_longest
from typing import Any
from urllib.parse import quote

from layers_core.reports.formats import fmt_at
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
    specialist_of,
)
from sae_features.reports.feature_card_data import FeatureCard, TokenValue
from sae_features.reports.md_common import NEURONPEDIA, TITLE, fmt_act, fmt_score, neuronpedia_id
from sae_features.reports.run_artefacts import SaeModel
from sae_features.reports.token_text import spaced, visible

STYLE = """body{font-family:system-ui,sans-serif;max-width:75rem;margin:1rem auto;padding:0 1rem;color:#111}
.card{border:1px solid #bbb;border-radius:6px;padding:.2rem 1rem 1rem;margin:1rem 0}
table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #ddd;padding:2px 8px;text-align:left}
.run{font-family:ui-monospace,monospace;white-space:pre-wrap;line-height:1.9;margin:.2rem 0 .6rem}
.tok{unicode-bidi:isolate;border-radius:2px}.peak{outline:2px solid #000}
.code{font-family:ui-monospace,monospace;unicode-bidi:isolate;background:#f3f3f3;padding:0 3px}
.meta{color:#555;font-size:90%}img{max-width:100%;display:block;margin:.5rem 0}
.holds{color:#060;font-weight:bold}.fails{color:#900}"""
SHADE = "230,120,0"  # an orange: rgba(SHADE, value / the card's largest)


def token_span(token: str, value: float, top: float, peak: bool = False) -> str:
    """One token, shaded by ``value / top``, its value on hover, outlined when it is the peak."""
    style = f' style="background:rgba({SHADE},{min(1.0, value / top):.3f})"' if value > 0 and top > 0 else ""
    kind = "tok peak" if peak else "tok"
    return f'<span class="{kind}"{style} title="{escape(fmt_act(value))}">{escape(visible(token))}</span>'


def token_run(tokens: tuple[str, ...], values: tuple[float, ...], top: float, peak: int | None = None) -> str:
    """A context or a text as shaded spans."""
    spans = "".join(token_span(t, v, top, i == peak) for i, (t, v) in enumerate(zip(tokens, values, strict=True)))
    return f'<div class="run" dir="ltr">{spans}</div>'


def _cells(found: TokenValue | None) -> str:
    if found is None:
        return "<td></td><td></td>"
    return f'<td><span class="code">{escape(spaced(found.token))}</span></td><td>{escape(fmt_score(found.value))}</td>'


def tokens_table(card: FeatureCard) -> str:
    """Promoted and suppressed tokens side by side."""
    rows = "\n".join(f"<tr><td>{rank}</td>{_cells(up)}{_cells(down)}</tr>"
                   for rank, (up, down) in enumerate(zip_longest(card.promoted, card.suppressed), 1))
    return ("<table><tr><th>Rank</th><th>Promoted</th><th>Logit per unit</th><th>Suppressed</th>"
            f"<th>Logit per unit</th></tr>\n{rows}\n</table>")


def _feature(entry: dict[str, Any], feature: int) -> str:
    site = neuronpedia_id(entry)
    if site is None:
        return str(feature)
    return f'<a href="{escape(f"{NEURONPEDIA}/{site}/{feature}")}">{feature}</a>'


def card_html(model: SaeModel, entry: dict[str, Any], card: FeatureCard) -> str:
    """One card as an ``<article>``."""
    found, top = specialist_of(entry, card), card.top_activation
    verdict = ('<span class="holds">holds</span>' if card.holds else '<span class="fails">does not hold</span>')
    numbers = "".join(f"<th>{escape(label)}</th><td>{escape(fmt_score(found.get(key)))}</td>" for label, key in (
        ("Score", "score"), ("Held-out precision", "heldout_precision"), ("Held-out recall", "heldout_recall"),
        ("Held-out AUROC", "heldout_auroc")))
    contexts = "\n".join(
        f'<li><span class="meta">window {c.window}, max {escape(fmt_activation(c.max))}</span>'
        f"{token_run(c.tokens, c.values, top, c.peak)}</li>" for c in card.contexts)
    texts = "\n".join(f'<li><span class="meta">{escape(visible(t.text_id))} ({escape(visible(t.category))}, '
                    f"{escape(visible(t.half))} half)</span>{token_run(t.tokens, t.values, top)}</li>"
                    for t in card.texts)
    return (f"<article class=\"card\">\n<h3>Feature {_feature(entry, card.feature)}, "
            f"<span class=\"code\">{escape(visible(card.category))}</span>: {verdict}</h3>"
            f"\n<table><tr>{numbers}</tr></table>\n"
            f"<p>The run's rule: a specialist holds when {escape(holds_rule(model.rules))}.</p>\n{tokens_table(card)}\n"
            "<h4>Top contexts (held-out corpus windows)</h4>"
            + (f"\n<ol>\n{contexts}\n</ol>" if contexts else "\n<p>It fires on no held-out window.</p>")
            + "\n<details><summary>Heatmap texts (test half), whole</summary>"
            + (f"\n<ul>\n{texts}\n</ul>" if texts else "<p>None.</p>") + "\n</details>\n</article>")


def _image(alt: str, name: str) -> str:
    return f'<img src="{escape(quote(name))}" alt="{escape(alt)}">'


def sae_html(model: SaeModel, entry: dict[str, Any], cards: list[FeatureCard], plots: SaeCardPlots | None) -> str:
    """One SAE's section: its figures, then its cards."""
    head = (f"<h2>Cards at residual {escape(fmt_at(entry.get('layer'), entry.get('rel_depth')))}, "
            f"<span class=\"code\">{escape(visible(str(entry.get('sae'))))}</span></h2>")
    if not cards:
        return f"<section>{head}<p>No category has a specialist at this SAE: no card.</p></section>"
    layer = entry.get("layer")
    images = ("" if plots is None else _image(f"heatmaps, residual {layer}", plots.heatmaps.name)
              + _image(f"histograms, residual {layer}", plots.histograms.name))
    body = "\n".join(card_html(model, entry, card) for card in cards)
    return f"<section>{head}\n{images}\n{body}\n</section>"


def build_cards_html(model: SaeModel, reports: CardReports) -> str:
    """The whole page of one model's cards."""
    title = escape(f"{TITLE}: feature cards of {model.name}")
    notes = "\n".join(f"<p>{escape(note)}</p>" for note in (
        WHAT_A_CARD_SHOWS, CONTEXTS_NOTE,
        "Each token is shaded by its activation over the card's largest; the peak is outlined; hover a token for "
        "its activation. Newlines are drawn \u21b5 and tabs \u21e5. Generated by 004_sae_features/report.py from "
        "the artefacts in this folder; no LLM is involved.",
        HEATMAP_NOTE.format(cap=HEATMAP_TOKENS), HISTOGRAM_NOTE))
    sections = "\n".join(sae_html(model, entry, cards, reports.plots.get(int(entry["layer"])))
                       for entry, cards in cards_of(model))
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{title}</title>\n'
            f"<style>\n{STYLE}\n</style>\n</head>\n<body>\n<h1>{title}</h1>\n{notes}\n{sections}\n</body>\n</html>\n")
