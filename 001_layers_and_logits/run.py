"""Experiment 001: how the next-token prediction forms, layer by layer (logit lens / norm lens).

Outline: parse the arguments, choose the prompts, then for each model load ->
capture -> decode -> measure -> write (``LensAnalysis`` inside the shared model
loop), then the reports, then a short summary (``run_experiment``). Everything
is written into a temporary folder that becomes run-latest/ only when the run
completes; the previous run-latest/ is kept as run-<time>/. Run
`python run.py --help` for the flags.
"""

from collections.abc import Sequence
from pathlib import Path

from layers_and_logits.arguments import parse_options
from layers_and_logits.artefact_schema import SCHEMA_VERSION
from layers_and_logits.console import describe
from layers_and_logits.default_prompts import DEFAULT_BATTERY
from layers_and_logits.model_run import LensAnalysis
from layers_core.cli import run_main
from layers_core.runs.experiment_run import run_experiment
from layers_core.runs.reproducibility import set_deterministic

HERE = Path(__file__).resolve().parent


def write_reports(run_dir: Path) -> None:
    """The plots and markdown (imported only when wanted: the plotting library is slow to import)."""
    from layers_and_logits.reports import write_reports as write

    write(run_dir)


def main(argv: Sequence[str] | None = None) -> int:
    """Run experiment 001; returns 0 when every model ran, 1 when one was skipped or failed."""
    options = parse_options(argv)
    set_deterministic()
    analysis = LensAnalysis(
        cases=options.prompts.prompts(DEFAULT_BATTERY), facts=options.prompts.fact_cases(),
        battery_name=options.prompts.facts, lens_mode=options.lens_mode, fp32_unembed=options.fp32_unembed,
        chat=options.chat, check_device=options.check_device,
    )
    return run_experiment(
        options.common, analysis, here=HERE, schema_version=SCHEMA_VERSION, write_reports=write_reports,
        describe=describe, provenance={"lens_mode": options.lens_mode},
    )


if __name__ == "__main__":
    run_main(main)
