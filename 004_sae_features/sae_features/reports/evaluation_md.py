"""``evaluation-<name>.md``: the factual per-model report, built from the artefacts only.

No LLM is involved and nothing is interpreted beyond comparisons the numbers settle
(the quality thresholds, the held-out rule, more or fewer categories with depth). A
report built on an SAE below the quality thresholds says so first. The same artefacts
always give the same bytes.
"""

from __future__ import annotations

from pathlib import Path

from layers_core.reports.markdown import md_image
from layers_core.reports.report_files import evaluation_path, not_run_report
from sae_features.reports.card_common import CardReports
from sae_features.reports.md_activity import activity_section
from sae_features.reports.md_cards import cards_section
from sae_features.reports.md_common import GENERATED_BY, LAYER_NOTE, TITLE
from sae_features.reports.md_depth import depth_section
from sae_features.reports.md_discovery import discovery_section
from sae_features.reports.md_model import setup_section
from sae_features.reports.md_quality import quality_section, warning_block
from sae_features.reports.md_sources import sources_section
from sae_features.reports.md_specialists import specialists_section
from sae_features.reports.md_text_activity import text_activity_section
from sae_features.reports.run_artefacts import SaeModel

PLOT_NOTES = {
    "specialists": "Each category's specialist at each SAE: colour = held-out AUROC, the feature id in the cell, "
                   "a thick black frame where the specialist holds, grey where there is none.",
    "quality": "Each SAE's explained variance and loss recovered on held-out text against the run's thresholds "
               "(dashed), and its L0.",
}


def plots_section(plots: dict[str, Path]) -> str:
    """The plots written for this model, each with what it shows (relative links)."""
    return "\n\n".join(["## Plots"] + [f"{PLOT_NOTES.get(kind, kind)}\n\n{md_image(kind, path.name)}"
                                       for kind, path in plots.items()])


def build_evaluation(model: SaeModel, plots: dict[str, Path], cards: CardReports | None = None) -> str:
    """The whole markdown report of one model with status ok; a weak SAE's warning comes first.

    ``cards``: the model's feature cards as written (the section linking them is left out without).
    """
    warning = warning_block(model)
    intro = (f"{len(model.saes)} SAE(s), {len(model.categories)} categories of texts "
             f"({sum(model.categories.values())} texts, each category split into a find half and a test half).")
    parts = [f"# {TITLE}: {model.name}", *([warning] if warning else []), GENERATED_BY, intro, LAYER_NOTE,
             sources_section(model.saes, dict(model.summary.get("model") or {})), quality_section(model),
             activity_section(model), depth_section(model), specialists_section(model), discovery_section(model),
             text_activity_section(model), plots_section(plots), *([cards_section(model, cards)] if cards else []),
             setup_section(model)]
    return "\n\n".join(part.rstrip() for part in parts) + "\n"


def write_evaluation(model: SaeModel, run_dir: Path, plots: dict[str, Path], cards: CardReports | None = None) -> Path:
    """Write ``evaluation-<name>.md`` (the short version for a skipped or failed model)."""
    path = evaluation_path(run_dir, model.name)
    text = (build_evaluation(model, plots, cards) if model.ok
            else not_run_report(model, TITLE, GENERATED_BY, "SAE results"))
    path.write_text(text, encoding="utf-8")
    return path
