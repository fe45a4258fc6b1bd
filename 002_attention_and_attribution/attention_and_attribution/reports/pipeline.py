"""Regenerate every report of a 002 run folder from its artefacts (no model, no torch)."""

from __future__ import annotations

from pathlib import Path

from attention_and_attribution.reports.attention_plot import write_attention_plot
from attention_and_attribution.reports.cross_model import write_cross_model
from attention_and_attribution.reports.cross_model_plot import write_cross_model_plot
from attention_and_attribution.reports.evaluation_md import write_evaluation
from attention_and_attribution.reports.head_grid import write_head_grid
from attention_and_attribution.reports.layers_plot import write_layers_plot
from attention_and_attribution.reports.llm_prompts import PACK
from attention_and_attribution.reports.run_artefacts import AttributionModel, read_attribution_run
from layers_core.reports.run_reports import write_run_reports


def write_model_reports(model: AttributionModel, run_dir: Path) -> list[Path]:
    """Plots, evaluation markdown and LLM prompt of one model (only the markdown when it did not run)."""
    if not model.ok:
        return [write_evaluation(model, run_dir, {})]
    drawn = {"head-grid": write_head_grid(model, run_dir), "attention": write_attention_plot(model, run_dir),
             "layers": write_layers_plot(model, run_dir)}
    plots = {kind: path for kind, path in drawn.items() if path is not None}
    return [*plots.values(), write_evaluation(model, run_dir, plots), PACK.write_model(model, run_dir)]


def write_reports(run_dir: Path) -> list[Path]:
    """Regenerate every report in a 002 run folder from the artefacts there.

    Per model: ``head-grid-<name>.png``, ``attention-<name>.png``, ``layers-<name>.png``,
    ``evaluation-<name>.md``, ``llm-prompt-<name>.md`` (a skipped or failed model: only
    its ``evaluation-<name>.md``). Across models: ``cross-model.png``,
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
    run = read_attribution_run(Path(run_dir))
    return write_run_reports(run, write_model_reports, write_cross_model_plot, write_cross_model, PACK)
