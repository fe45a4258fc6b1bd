"""What the feature cards' markdown, HTML and plots share: what a card shows, its header facts, the files' names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sae_features.reports.feature_card_data import FeatureCard
from sae_features.reports.run_artefacts import SaeModel
from sae_features.reports.run_rules import SaeRules

WHAT_A_CARD_SHOWS = (
    "One card per SAE and category that has a specialist (the feature chosen on the category's find half), "
    "whether or not it holds. A card shows the specialist's score and its held-out precision, recall and AUROC "
    "(copied from the specialists in the JSON); the 10 tokens whose logits the feature's decoder direction raises "
    "most (promoted) and lowers most (suppressed), read through the final norm's weight and the unembedding (logit "
    "per unit of activation, up to the final norm's positive scale); the contexts where it fires most, with every "
    "token it fires on marked; a heatmap of its activation over test-half category texts; and a histogram of its "
    "per-token activations.")
CONTEXTS_NOTE = (
    "Contexts come from held-out corpus windows the SAE did not train on (not from the category texts): slices of up "
    "to 24 tokens around the feature's peak in a window, strongest first.")
HEATMAP_NOTE = (
    "Heatmaps: per card, up to 3 test-half texts of its category (those where it peaks highest), then the test-half "
    "text of another category where it fires most, if any; counted tokens only, at most {cap} per row around the "
    "row's peak; colour from 0 to the card's largest activation (contexts and texts alike).")
HISTOGRAM_NOTE = (
    "Histograms: the feature's nonzero per-token activations on the category's texts, on the other categories' "
    "texts and on held-out corpus tokens, each as a share of its group's tokens (so groups of different sizes "
    "compare; log scale); the legend counts each group's tokens and its zeros.")
HEATMAP_TOKENS = 40


@dataclass(frozen=True)
class SaeCardPlots:
    """The two figures of one SAE's cards."""

    heatmaps: Path
    histograms: Path


@dataclass(frozen=True)
class CardReports:
    """The card files of one model: markdown, HTML, and per SAE with cards (by residual layer) its figures."""

    markdown: Path
    html: Path
    plots: dict[int, SaeCardPlots]


def cards_markdown_path(run_dir: Path, name: str) -> Path:
    """Where a model's markdown cards go."""
    return run_dir / f"feature-cards-{name}.md"


def cards_html_path(run_dir: Path, name: str) -> Path:
    """Where a model's HTML cards go."""
    return run_dir / f"feature-cards-{name}.html"


def heatmaps_path(run_dir: Path, name: str, layer: int) -> Path:
    """Where the heatmaps of one SAE's cards go."""
    return run_dir / f"heatmaps-{name}-L{layer}.png"


def histograms_path(run_dir: Path, name: str, layer: int) -> Path:
    """Where the histograms of one SAE's cards go."""
    return run_dir / f"histograms-{name}-L{layer}.png"


def md_link(text: str, file_name: str) -> str:
    """A markdown link to a file in the run folder; odd file names go in angle brackets (as ``md_image``)."""
    target = f"<{file_name}>" if any(c in file_name for c in " ()<>") else file_name
    return f"[{text}]({target})"


def card_title(card: FeatureCard) -> str:
    """How a plot panel names a card: ``feature 5, code (holds)``."""
    return f"feature {card.feature}, {card.category} ({'holds' if card.holds else 'does not hold'})"


def fmt_activation(x: float) -> str:
    """An activation in a token's mark: 3 significant digits (``4.21``, ``0.0123``)."""
    return f"{x:.3g}"


def specialist_of(entry: dict[str, Any], card: FeatureCard) -> dict[str, Any]:
    """The SAE's specialists entry the card belongs to (its score and held-out test)."""
    return dict((entry.get("specialists") or {}).get(card.category) or {})


def holds_rule(rules: SaeRules) -> str:
    """The run's rule as a phrase: ``held-out AUROC >= 0.9 and held-out precision >= 0.8``."""
    return f"held-out AUROC >= {rules.min_auroc:g} and held-out precision >= {rules.min_precision:g}"


def cards_of(model: SaeModel) -> list[tuple[dict[str, Any], list[FeatureCard]]]:
    """Every SAE entry with its cards, in the run's order."""
    return [(entry, model.cards[int(entry["layer"])]) for entry in model.saes]


def heatmap_slice(values: tuple[float, ...], cap: int = HEATMAP_TOKENS) -> slice:
    """The ``cap`` positions of a row shown in its heatmap: centred on its peak, inside the row."""
    if len(values) <= cap:
        return slice(0, len(values))
    peak = max(range(len(values)), key=lambda i: (values[i], -i))
    start = min(max(0, peak - cap // 2), len(values) - cap)
    return slice(start, start + cap)
