"""Experiment 002: which attention heads and MLPs write the answer, and what the heads read.

Outline: parse the arguments, resolve the prompts and models, then for each
model load -> one pass per batch at the answer position (attention by role,
exact direct logit attribution, lens) -> summarise over the battery -> ablate
the top heads against random heads -> write (``AttributionAnalysis`` inside the
shared model loop), then the reports, then a short summary. Everything is
written into a temporary folder that becomes run-latest/ only when the run
completes; the previous run-latest/ is kept as run-<time>/. Run
`python run.py --help` for the flags.
"""

from collections.abc import Sequence
from pathlib import Path

from attention_and_attribution.arguments import parse_options
from attention_and_attribution.artefact_schema import SCHEMA_VERSION
from attention_and_attribution.console import summary_lines
from attention_and_attribution.default_prompts import DEFAULT_PROMPTS
from attention_and_attribution.model_run import AttributionAnalysis
from layers_core.cli import run_main
from layers_core.runs.model_loop import exit_status, resolve_models, run_models
from layers_core.runs.reproducibility import set_deterministic
from layers_core.runs.run_folder import LATEST, staged_run_folder

HERE = Path(__file__).resolve().parent


def main(argv: Sequence[str] | None = None) -> int:
    """Run experiment 002; returns 0 when every model ran, 1 when one was skipped or failed."""
    options = parse_options(argv)
    set_deterministic()
    choice = options.prompts
    analysis = AttributionAnalysis(
        prompts=choice.prompts(DEFAULT_PROMPTS), facts=choice.fact_cases(), battery_name=choice.facts,
        foil=choice.foil, ablation=options.ablation,
    )
    models = resolve_models(options.models)
    parent = options.out if options.out is not None else HERE
    with staged_run_folder(parent) as run_dir:
        outcomes = run_models(models, run_dir, analysis, options.load, SCHEMA_VERSION)
        if options.reports:
            from attention_and_attribution.reports import write_reports

            write_reports(run_dir)
    for line in summary_lines(outcomes, parent / LATEST):
        print(line)
    return exit_status(outcomes)


if __name__ == "__main__":
    run_main(main)
