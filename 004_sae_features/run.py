"""Experiment 004: sparse-autoencoder features of a model, category specialists, and how they change with depth.

Outline: parse the arguments, read the category texts, then for each model load ->
its SAEs (trained here and cached, or loaded) -> their quality on held-out text ->
the category texts through every SAE -> discovery and specialists, found on one half
of the texts and tested on the other -> write (``SaeFeaturesAnalysis`` inside the
shared model loop), then the reports, then a short summary (``run_experiment``).
Everything is written into a temporary folder that becomes run-latest/ only when the
run completes; the previous run-latest/ is kept as run-<time>/. Run
`python run.py --help` for the flags.
"""

from collections.abc import Sequence
from pathlib import Path

from layers_core.cli import run_main
from layers_core.runs.experiment_run import run_experiment
from layers_core.runs.reproducibility import set_deterministic
from sae_features.arguments import parse_options
from sae_features.artefact_schema import SCHEMA_VERSION
from sae_features.category_texts import load_category_texts
from sae_features.console import describe
from sae_features.model_run import SaeFeaturesAnalysis

HERE = Path(__file__).resolve().parent


def write_reports(run_dir: Path) -> None:
    """The plots and markdown (imported only when wanted: the plotting library is slow to import)."""
    from sae_features.reports import write_reports as write

    write(run_dir)


def main(argv: Sequence[str] | None = None) -> int:
    """Run experiment 004; returns 0 when every model ran, 1 when one was skipped or failed."""
    options = parse_options(argv)
    set_deterministic()
    analysis = SaeFeaturesAnalysis(sources=options.sources, layers=options.layers, recipe=options.recipe,
                                   corpus=options.corpus, texts=load_category_texts(options.texts),
                                   quality_windows=options.quality_windows)
    return run_experiment(options.common, analysis, here=HERE, schema_version=SCHEMA_VERSION,
                          write_reports=write_reports, describe=describe)


if __name__ == "__main__":
    run_main(main)
