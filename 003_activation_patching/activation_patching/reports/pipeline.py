"""Regenerate every report of a 003 run folder from its artefacts (no model, no torch)."""

from __future__ import annotations

from pathlib import Path

from activation_patching.reports.attribution_plot import write_attribution_plot
from activation_patching.reports.battery_plot import write_battery_plot
from activation_patching.reports.cross_model import write_cross_model
from activation_patching.reports.cross_model_plot import write_cross_model_plot
from activation_patching.reports.evaluation_md import write_evaluation
from activation_patching.reports.head_plot import write_head_plot
from activation_patching.reports.llm_prompts import PACK
from activation_patching.reports.run_artefacts import PatchingModel, read_patching_run
from activation_patching.reports.tracing_plot import write_tracing_plot
from layers_core.reports.run_reports import write_run_reports


def write_model_reports(model: PatchingModel, run_dir: Path) -> list[Path]:
    """Plots, evaluation markdown and LLM prompt of one model (only the markdown when it did not run)."""
    if not model.ok:
        return [write_evaluation(model, run_dir, {})]
    drawn = {"tracing": write_tracing_plot(model, run_dir), "heads": write_head_plot(model, run_dir),
             "battery": write_battery_plot(model, run_dir), "attribution": write_attribution_plot(model, run_dir)}
    plots = {kind: path for kind, path in drawn.items() if path is not None}
    return [*plots.values(), write_evaluation(model, run_dir, plots), PACK.write_model(model, run_dir)]


def write_reports(run_dir: Path) -> list[Path]:
    """Regenerate every report in a 003 run folder from the artefacts there.

    Per model: ``tracing-<name>.png``, ``heads-<name>.png``, ``battery-<name>.png``,
    ``attribution-<name>.png``, ``evaluation-<name>.md``, ``llm-prompt-<name>.md`` (a
    skipped or failed model: only its ``evaluation-<name>.md``; a model without a fully
    swept pair: no tracing, heads or attribution plot). Across models: ``cross-model.png``,
    ``evaluation-cross-model.md``, ``llm-prompt-cross-model.md``; and ``llm-prompt-meta.md``
    when LLM evaluations (``llm-evaluation-*.md``) were saved into the folder.

    Args:
        run_dir: the folder holding ``output-<name>.json`` and the CSVs.

    Returns:
        The files written, in the order written.

    Raises:
        ReportInputError: the folder is missing or holds no output-*.json, or an artefact is damaged,
            missing, or of a newer schema_version.
    """
    run = read_patching_run(Path(run_dir))
    return write_run_reports(run, write_model_reports, write_cross_model_plot, write_cross_model, PACK)
