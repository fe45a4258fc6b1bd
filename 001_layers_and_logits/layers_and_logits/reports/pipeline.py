"""Regenerate every report of a run folder from its artefacts (no model, no torch)."""

from __future__ import annotations

from pathlib import Path

from layers_and_logits.reports.cross_model import write_cross_model
from layers_and_logits.reports.cross_model_plot import write_cross_model_plot
from layers_and_logits.reports.evaluation_md import write_evaluation
from layers_and_logits.reports.heatmap import write_heatmaps
from layers_and_logits.reports.lens_kl_plot import write_lens_kl_plot
from layers_and_logits.reports.llm_prompts import PACK
from layers_and_logits.reports.md_lenses import LENS_PLOT
from layers_and_logits.reports.run_artefacts import LensModel, read_lens_run
from layers_and_logits.reports.trajectory import write_trajectory
from layers_core.reports.run_reports import write_run_reports


def write_model_reports(model: LensModel, run_dir: Path) -> list[Path]:
    """Plots, evaluation markdown and LLM prompt of one model (only the markdown when it did not run)."""
    if not model.ok:
        return [write_evaluation(model, run_dir, {})]
    plots = dict(zip(("heatmap", "heatmap-entropy"), write_heatmaps(model, run_dir), strict=False))
    plots.update(dict(zip(("trajectory",), write_trajectory(model, run_dir), strict=False)))
    plots.update(dict(zip((LENS_PLOT,), write_lens_kl_plot(model, run_dir), strict=False)))
    return [*plots.values(), write_evaluation(model, run_dir, plots), PACK.write_model(model, run_dir)]


def write_reports(run_dir: Path) -> list[Path]:
    """Regenerate every report in a run folder from the artefacts there.

    Per model: ``heatmap-<name>.png``, ``heatmap-entropy-<name>.png``, ``trajectory-<name>.png``,
    ``lenses-<name>.png`` (only for a run with the lens-kl CSV: ``--lens tuned`` or ``linear``),
    ``evaluation-<name>.md``, ``llm-prompt-<name>.md``. Across models: ``cross-model.png``,
    ``evaluation-cross-model.md``, ``llm-prompt-cross-model.md``; and ``llm-prompt-meta.md``
    when LLM evaluations (``llm-evaluation-*.md``) were saved into the folder.

    Args:
        run_dir: the folder holding ``output-<name>.json`` and the CSVs.

    Returns:
        The files written, in the order written.

    Raises:
        ReportInputError: the folder is missing, holds no output-*.json, or an artefact is damaged.
    """
    run = read_lens_run(Path(run_dir))
    return write_run_reports(run, write_model_reports, write_cross_model_plot, write_cross_model, PACK)
