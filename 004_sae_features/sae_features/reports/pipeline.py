"""Regenerate every report of a 004 run folder from its artefacts (no model, no torch)."""

from __future__ import annotations

from pathlib import Path

from layers_core.reports.run_reports import write_run_reports
from sae_features.reports.cross_model import write_cross_model
from sae_features.reports.cross_model_plot import write_cross_model_plot
from sae_features.reports.evaluation_md import write_evaluation
from sae_features.reports.feature_cards import card_files, write_card_plots, write_feature_cards
from sae_features.reports.llm_prompts import PACK
from sae_features.reports.quality_plot import write_quality_plot
from sae_features.reports.run_artefacts import SaeModel, read_sae_run
from sae_features.reports.specialists_plot import write_specialists_plot


def write_model_reports(model: SaeModel, run_dir: Path) -> list[Path]:
    """Plots, feature cards, evaluation markdown and LLM prompt of one model (only the markdown when it did not run)."""
    if not model.ok:
        return [write_evaluation(model, run_dir, {})]
    plots = {"specialists": write_specialists_plot(model, run_dir), "quality": write_quality_plot(model, run_dir)}
    cards = write_feature_cards(model, run_dir, write_card_plots(model, run_dir))
    return [*plots.values(), *card_files(cards), write_evaluation(model, run_dir, plots, cards),
            PACK.write_model(model, run_dir)]


def write_reports(run_dir: Path) -> list[Path]:
    """Regenerate every report in a 004 run folder from the artefacts there.

    Per model: ``specialists-<name>.png``, ``quality-<name>.png``; per SAE with feature cards
    ``heatmaps-<name>-L<layer>.png`` and ``histograms-<name>-L<layer>.png``; ``feature-cards-<name>.md``,
    ``feature-cards-<name>.html``, ``evaluation-<name>.md``, ``llm-prompt-<name>.md`` (a skipped or failed
    model: only its ``evaluation-<name>.md``).
    Across models: ``cross-model.png``, ``evaluation-cross-model.md``, ``llm-prompt-cross-model.md``;
    and ``llm-prompt-meta.md`` when LLM evaluations (``llm-evaluation-*.md``) were saved into the folder.

    Args:
        run_dir: the folder holding ``output-<name>.json`` and the CSVs.

    Returns:
        The files written, in the order written.

    Raises:
        ReportInputError: the folder is missing or holds no output-*.json, or an artefact is damaged,
            missing, inconsistent with the JSON, or of a newer schema_version.
    """
    run = read_sae_run(Path(run_dir))
    return write_run_reports(run, write_model_reports, write_cross_model_plot, write_cross_model, PACK)
