"""Regenerate every report of a 005 run folder from its artefacts (no model, no torch)."""

from __future__ import annotations

from pathlib import Path

from layers_core.reports.run_reports import write_run_reports
from semantics_syntax.reports.ablation_plot import write_ablation_plot
from semantics_syntax.reports.cross_model import write_cross_model
from semantics_syntax.reports.cross_model_plot import write_cross_model_plot
from semantics_syntax.reports.evaluation_md import write_evaluation
from semantics_syntax.reports.llm_prompts import PACK
from semantics_syntax.reports.run_artefacts import SemanticsModel, read_semantics_run
from semantics_syntax.reports.similarity_plot import write_similarity_plot
from semantics_syntax.reports.token_classes_plot import write_token_classes_plot


def write_model_reports(model: SemanticsModel, run_dir: Path) -> list[Path]:
    """Plots, evaluation markdown and LLM prompt of one model (only the markdown when it did not run)."""
    if not model.ok:
        return [write_evaluation(model, run_dir, {})]
    plots = {"similarity": write_similarity_plot(model, run_dir),
             "token-classes": write_token_classes_plot(model, run_dir),
             "ablation": write_ablation_plot(model, run_dir)}
    return [*plots.values(), write_evaluation(model, run_dir, plots), PACK.write_model(model, run_dir)]


def write_reports(run_dir: Path) -> list[Path]:
    """Regenerate every report in a 005 run folder from the artefacts there.

    Per model: ``similarity-<name>.png``, ``token-classes-<name>.png``, ``ablation-<name>.png``,
    ``evaluation-<name>.md``, ``llm-prompt-<name>.md`` (a skipped or failed model: only its
    ``evaluation-<name>.md``). Across models: ``cross-model.png``, ``evaluation-cross-model.md``,
    ``llm-prompt-cross-model.md``; and ``llm-prompt-meta.md`` when LLM evaluations
    (``llm-evaluation-*.md``) were saved into the folder.

    Args:
        run_dir: the folder holding ``output-<name>.json`` and the CSVs.

    Returns:
        The files written, in the order written.

    Raises:
        ReportInputError: the folder is missing or holds no output-*.json, or an artefact is damaged,
            missing, inconsistent with the JSON, or of a newer schema_version.
    """
    run = read_semantics_run(Path(run_dir))
    return write_run_reports(run, write_model_reports, write_cross_model_plot, write_cross_model, PACK)
