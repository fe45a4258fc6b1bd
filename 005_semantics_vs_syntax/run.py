"""Experiment 005: do SAE specialist features track meaning or surface form, and do they matter causally?

Outline: parse the arguments, read the matched pairs and the cloze items, then for
each model load -> its SAEs (trained here and cached, or loaded, as in 004) -> the
texts and items through every SAE -> H1 specialists per topic/form and their overlap,
H2 clustering by topic and by form, H3 activation against answer log-probability, the
ablation matrix with its controls -> write (``SemanticsAnalysis`` inside the shared
model loop), then the reports, then a short summary (``run_experiment``). Everything
is written into a temporary folder that becomes run-latest/ only when the run
completes; the previous run-latest/ is kept as run-<time>/. Run `python run.py --help`
for the flags.
"""

from collections.abc import Sequence
from pathlib import Path

from layers_core.cli import run_main
from layers_core.runs.experiment_run import run_experiment
from layers_core.runs.reproducibility import set_deterministic
from semantics_syntax.arguments import parse_options
from semantics_syntax.artefact_schema import SCHEMA_VERSION
from semantics_syntax.console import describe
from semantics_syntax.datasets import DatasetError, load_cloze, load_pairs
from semantics_syntax.model_run import SemanticsAnalysis

HERE = Path(__file__).resolve().parent


def write_reports(run_dir: Path) -> None:
    """The plots and markdown (imported only when wanted: the plotting library is slow to import)."""
    from semantics_syntax.reports import write_reports as write

    write(run_dir)


def main(argv: Sequence[str] | None = None) -> int:
    """Run experiment 005; returns 0 when every model ran, 1 when one was skipped or failed."""
    options = parse_options(argv)
    set_deterministic()
    pairs, cloze = load_pairs(options.pairs), load_cloze(options.cloze)
    topics = {t.topic for t in pairs}
    for flag, topic in (("--math-topic", options.math_topic), ("--control-topic", options.control_topic)):
        if topic not in topics:
            raise DatasetError(f"{flag} {topic!r} is not a topic of {options.pairs.name} "
                               f"({', '.join(sorted(topics))})")
    analysis = SemanticsAnalysis(sources=options.sae.sources, layers=options.sae.layers, recipe=options.sae.recipe,
                                 corpus=options.sae.corpus, pairs=pairs, cloze=cloze, math_topic=options.math_topic,
                                 control_topic=options.control_topic, ablations=options.ablations,
                                 permutations=options.permutations)
    return run_experiment(options.common, analysis, here=HERE, schema_version=SCHEMA_VERSION,
                          write_reports=write_reports, describe=describe)


if __name__ == "__main__":
    run_main(main)
