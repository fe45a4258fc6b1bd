"""Experiment 002: which attention heads and MLPs write the answer, and what the heads read.

Outline: parse the arguments, choose the prompts, then for each model load ->
one pass per batch at the answer position (attention by role, exact direct
logit attribution, lens) -> summarise over the battery -> ablate the top heads
against random heads -> write (``AttributionAnalysis`` inside the shared model
loop), then the reports, then a short summary (``run_experiment``). Everything
is written into a temporary folder that becomes run-latest/ only when the run
completes; the previous run-latest/ is kept as run-<time>/. Run
`python run.py --help` for the flags.
"""

from collections.abc import Sequence
from pathlib import Path

from attention_and_attribution.arguments import parse_options
from attention_and_attribution.artefact_schema import SCHEMA_VERSION
from attention_and_attribution.console import describe
from attention_and_attribution.default_prompts import DEFAULT_PROMPTS
from attention_and_attribution.model_run import AttributionAnalysis
from layers_core.cli import run_main
from layers_core.runs.experiment_run import run_experiment
from layers_core.runs.reproducibility import set_deterministic

HERE = Path(__file__).resolve().parent


def write_reports(run_dir: Path) -> None:
    """The plots and markdown (imported only when wanted: the plotting library is slow to import)."""
    from attention_and_attribution.reports import write_reports as write

    write(run_dir)


def main(argv: Sequence[str] | None = None) -> int:
    """Run experiment 002; returns 0 when every model ran, 1 when one was skipped or failed."""
    options = parse_options(argv)
    set_deterministic()
    choice = options.prompts
    analysis = AttributionAnalysis(
        prompts=choice.prompts(DEFAULT_PROMPTS), facts=choice.fact_cases(), battery_name=choice.facts,
        foil=choice.foil, ablation=options.ablation,
    )
    return run_experiment(
        options.common, analysis, here=HERE, schema_version=SCHEMA_VERSION, write_reports=write_reports,
        describe=describe,
    )


if __name__ == "__main__":
    run_main(main)
