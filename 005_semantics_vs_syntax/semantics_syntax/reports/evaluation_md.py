"""``evaluation-<name>.md``: the factual per-model report, built from the artefacts only.

No LLM is involved and nothing is interpreted beyond what the numbers settle (which
overlap or effect is larger, what reaches p < 0.05, what held by the run's rule). One
section per hypothesis, each ending with the seed's claims against this run. The run's
warnings come first. The same artefacts always give the same bytes.
"""

from __future__ import annotations

from pathlib import Path

from layers_core.reports.formats import fmt_text
from layers_core.reports.report_files import evaluation_path, not_run_report
from semantics_syntax.reports.md_ablation import ablation_section
from semantics_syntax.reports.md_common import GENERATED_BY, LAYER_NOTE, TITLE
from semantics_syntax.reports.md_h1 import h1_section
from semantics_syntax.reports.md_h2 import h2_section
from semantics_syntax.reports.md_h3 import h3_section
from semantics_syntax.reports.md_setup import measured_section, setup_section
from semantics_syntax.reports.run_artefacts import SemanticsModel


def warning_block(model: SemanticsModel) -> str | None:
    """The run's warnings about this model, for the top of the report; None when there are none."""
    if not model.warnings:
        return None
    return "> **WARNING**: " + "\n>\n> **WARNING**: ".join(fmt_text(w) for w in model.warnings)


def build_evaluation(model: SemanticsModel, plots: dict[str, Path]) -> str:
    """The whole markdown report of one model with status ok (``plots``: kind -> file written)."""
    def name(kind: str) -> str | None:
        return plots[kind].name if kind in plots else None

    warning = warning_block(model)
    parts = [f"# {TITLE}: {model.name}", *([warning] if warning else []), GENERATED_BY, LAYER_NOTE,
             measured_section(model), h1_section(model, name("token-classes")), h2_section(model, name("similarity")),
             h3_section(model), ablation_section(model, name("ablation")), setup_section(model)]
    return "\n\n".join(part.rstrip() for part in parts) + "\n"


def write_evaluation(model: SemanticsModel, run_dir: Path, plots: dict[str, Path]) -> Path:
    """Write ``evaluation-<name>.md`` (the short version for a skipped or failed model)."""
    path = evaluation_path(run_dir, model.name)
    text = (build_evaluation(model, plots) if model.ok
            else not_run_report(model, TITLE, GENERATED_BY, "semantics-vs-syntax results"))
    path.write_text(text, encoding="utf-8")
    return path
