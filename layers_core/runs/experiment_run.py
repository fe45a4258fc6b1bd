"""An experiment's run from parsed options to exit status: models -> staged run folder -> reports -> summary.

Every ``run.py`` ends the same way: resolve the models (a typo fails before any
model loads), run its analysis on each inside a staged run folder (it becomes
run-latest/ only when complete; the previous one is kept), write the reports,
print one short paragraph per model and return 0 when every model ran, 1 when
one was skipped or failed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from layers_core.runs.arguments import CommonOptions
from layers_core.runs.artefacts import OK
from layers_core.runs.model_loop import Analyse, ModelOutcome, exit_status, resolve_models, run_models
from layers_core.runs.run_folder import LATEST, staged_run_folder

Describe = Callable[[str, dict[str, Any]], list[str]]


def run_experiment(
    common: CommonOptions, analysis: Analyse, *, here: Path, schema_version: int,
    write_reports: Callable[[Path], object], describe: Describe, provenance: dict[str, Any] | None = None,
) -> int:
    """Run ``analysis`` on every model of ``common``, then the reports and the summary.

    Args:
        common: The shared flags (models, loading, ``--out``, ``--no-reports``).
        analysis: The experiment's analysis of one loaded model.
        here: The experiment's folder (the run folder goes beside ``run.py`` unless ``--out``).
        schema_version: Its artefact schema version, written into every JSON.
        write_reports: Writes its reports into a run folder (called unless ``--no-reports``).
        describe: A model's summary lines from its name and ``Analysis.summary``.
        provenance: Run-wide provenance fields of the experiment.

    Returns:
        The exit status: 0 when every model ran, 1 when one was skipped or failed.
    """
    targets = resolve_models(common.models)
    parent = common.out if common.out is not None else here
    with staged_run_folder(parent) as run_dir:
        outcomes = run_models(targets, run_dir, analysis, common.load, schema_version, provenance)
        if common.reports:
            write_reports(run_dir)
    for line in summary_lines(outcomes, parent / LATEST, describe):
        print(line)
    return exit_status(outcomes)


def summary_lines(outcomes: Sequence[ModelOutcome], run_dir: Path, describe: Describe) -> list[str]:
    """One paragraph per model (its status and reason when it did not run), then where the results are."""
    lines: list[str] = []
    for outcome in outcomes:
        if outcome.status != OK:
            lines.append(f"{outcome.name}: {outcome.status}: {outcome.reason}")
        else:
            lines += describe(outcome.name, outcome.summary)
    lines.append(f"results: {run_dir}")
    return lines
