"""Experiment 003: which layer and which position carry the fact, tested by intervention.

Outline: parse the arguments, choose the pairs' source (a custom pair, or the fact
battery), then for each model load -> pair the facts (noise for those without a
partner) -> the full sweep grids for the first pairs -> the cheap residual sweep
of every pair -> the battery's medians and handover layer -> write
(``PatchingAnalysis`` inside the shared model loop), then the reports, then a
short summary (``run_experiment``). Everything is written into a temporary folder
that becomes run-latest/ only when the run completes; the previous run-latest/ is
kept as run-<time>/. Run `python run.py --help` for the flags.
"""

from collections.abc import Sequence
from pathlib import Path

from activation_patching.arguments import parse_options
from activation_patching.artefact_schema import SCHEMA_VERSION
from activation_patching.console import describe
from activation_patching.model_run import PatchingAnalysis
from layers_core.cli import run_main
from layers_core.prompts.prompt_battery import load_fact_battery
from layers_core.runs.experiment_run import run_experiment
from layers_core.runs.reproducibility import set_deterministic

HERE = Path(__file__).resolve().parent


def write_reports(run_dir: Path) -> None:
    """The plots and markdown (imported only when wanted: the plotting library is slow to import)."""
    from activation_patching.reports import write_reports as write

    write(run_dir)


def main(argv: Sequence[str] | None = None) -> int:
    """Run experiment 003; returns 0 when every model ran, 1 when one was skipped or failed."""
    options = parse_options(argv)
    set_deterministic()
    facts = load_fact_battery(options.facts) if options.facts else []
    analysis = PatchingAnalysis(
        custom=options.custom, facts=facts, battery_name=options.facts, full_pairs=options.full_pairs,
    )
    return run_experiment(
        options.common, analysis, here=HERE, schema_version=SCHEMA_VERSION, write_reports=write_reports,
        describe=describe,
    )


if __name__ == "__main__":
    run_main(main)
