"""One model's feature cards: the two figures per SAE with cards, then ``feature-cards-<name>.md`` and ``.html``.

The cards are the JSON's ``saes[i].cards`` (read and checked by ``run_artefacts``:
``SaeModel.cards``). What a card shows is said at the top of both files
(``card_common``); the markdown is ``feature_cards_md``, the page ``feature_cards_html``,
the figures ``feature_heatmaps_plot`` and ``histogram_plot``.
"""

from __future__ import annotations

from pathlib import Path

from sae_features.reports.card_common import (
    CardReports,
    SaeCardPlots,
    cards_html_path,
    cards_markdown_path,
    cards_of,
)
from sae_features.reports.feature_cards_html import build_cards_html
from sae_features.reports.feature_cards_md import build_cards_markdown
from sae_features.reports.feature_heatmaps_plot import write_heatmaps_plot
from sae_features.reports.histogram_plot import write_histograms_plot
from sae_features.reports.run_artefacts import SaeModel


def write_card_plots(model: SaeModel, run_dir: Path) -> dict[int, SaeCardPlots]:
    """Per SAE with at least one card (by residual layer), its heatmaps and histograms."""
    return {int(entry["layer"]): SaeCardPlots(write_heatmaps_plot(model.name, entry, cards, run_dir),
                                              write_histograms_plot(model.name, entry, cards, run_dir))
            for entry, cards in cards_of(model) if cards}


def write_feature_cards(model: SaeModel, run_dir: Path, plots: dict[int, SaeCardPlots]) -> CardReports:
    """Write the markdown and HTML cards of one ok model, linking the figures already drawn."""
    reports = CardReports(cards_markdown_path(run_dir, model.name), cards_html_path(run_dir, model.name), plots)
    reports.markdown.write_text(build_cards_markdown(model, reports), encoding="utf-8")
    reports.html.write_text(build_cards_html(model, reports), encoding="utf-8")
    return reports


def card_files(reports: CardReports) -> list[Path]:
    """Every file of a model's cards, in the order written."""
    return [path for plots in reports.plots.values() for path in (plots.heatmaps, plots.histograms)] + [
        reports.markdown, reports.html]
