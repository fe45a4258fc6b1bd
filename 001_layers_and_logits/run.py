"""Experiment 001: how the next-token prediction forms, layer by layer (logit lens / norm lens).

Outline: parse the arguments, resolve the prompts and models, then for each
model load -> capture -> decode -> measure -> write (``LensAnalysis`` inside the
shared model loop), then the reports, then a short summary. Everything is
written into a temporary folder that becomes run-latest/ only when the run
completes; the previous run-latest/ is kept as run-<time>/. Run
`python run.py --help` for the flags.
"""

from collections.abc import Sequence
from pathlib import Path

from layers_and_logits.arguments import parse_options
from layers_and_logits.artefact_schema import SCHEMA_VERSION
from layers_and_logits.console import summary_lines
from layers_and_logits.default_prompts import DEFAULT_BATTERY
from layers_and_logits.model_run import LensAnalysis
from layers_core.cli import run_main
from layers_core.runs.model_loop import exit_status, resolve_models, run_models
from layers_core.runs.reproducibility import set_deterministic
from layers_core.runs.run_folder import LATEST, staged_run_folder

HERE = Path(__file__).resolve().parent


def main(argv: Sequence[str] | None = None) -> int:
    """Run experiment 001; returns 0 when every model ran, 1 when one was skipped or failed."""
    options = parse_options(argv)
    set_deterministic()
    analysis = LensAnalysis(
        cases=options.prompts.prompts(DEFAULT_BATTERY),
        facts=options.prompts.fact_cases(),
        battery_name=options.prompts.facts, lens_mode=options.lens_mode, fp32_unembed=options.fp32_unembed,
        chat=options.chat, check_device=options.check_device,
    )
    models = resolve_models(options.models)
    parent = options.out if options.out is not None else HERE
    with staged_run_folder(parent) as run_dir:
        outcomes = run_models(
            models, run_dir, analysis, options.load, SCHEMA_VERSION, provenance={"lens_mode": options.lens_mode}
        )
        if options.reports:
            from layers_and_logits.reports import write_reports

            write_reports(run_dir)
    for line in summary_lines(outcomes, parent / LATEST):
        print(line)
    return exit_status(outcomes)


if __name__ == "__main__":
    run_main(main)
