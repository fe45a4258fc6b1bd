"""Every report of a run folder, in the order every experiment writes them.

Per model the experiment's own plots, evaluation markdown and LLM prompt; then
across models its plot, its cross-model markdown, the cross-model LLM prompt,
and the meta-evaluation prompt once LLM answers are saved in the folder.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from layers_core.reports.prompt_pack import PromptPack
from layers_core.reports.run_reader import ModelArtefacts, RunArtefacts

M = TypeVar("M", bound=ModelArtefacts)


def write_run_reports(
    run: RunArtefacts[M],
    per_model: Callable[[M, Path], list[Path]],
    cross_plot: Callable[[list[M], Path], list[Path]],
    cross_markdown: Callable[[RunArtefacts[M], Path | None], Path],
    pack: PromptPack,
) -> list[Path]:
    """Write every report of ``run``; returns the files written, in the order written.

    Args:
        run: The run folder as read by ``run_reader.read_run``.
        per_model: One model's reports (only its markdown when it did not run).
        cross_plot: The cross-model plot of the ok models (an empty list when there is none).
        cross_markdown: ``evaluation-cross-model.md`` from the run and the cross-model plot, if any.
        pack: The experiment's LLM prompts.
    """
    written: list[Path] = []
    for model in run.models:
        written += per_model(model, run.run_dir)
    plot = cross_plot(run.ok_models, run.run_dir)
    written += plot
    written.append(cross_markdown(run, plot[0] if plot else None))
    extra = (pack.write_cross(run.ok_models, run.run_dir), pack.write_meta(run.run_dir))
    return written + [path for path in extra if path is not None]
