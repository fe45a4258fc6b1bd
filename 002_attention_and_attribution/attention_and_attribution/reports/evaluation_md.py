"""``evaluation-<name>.md``: the factual per-model report, built from the artefacts only.

No LLM is involved and nothing is interpreted beyond comparisons the numbers
settle (the ablation verdict). The same artefacts always give the same bytes.
"""

from __future__ import annotations

from pathlib import Path

from attention_and_attribution.reports.md_ablation import ablation_section
from attention_and_attribution.reports.md_battery import battery_section
from attention_and_attribution.reports.md_common import DLA_NOTE, GENERATED_BY, TITLE
from attention_and_attribution.reports.md_model import setup_section, sum_check_section
from attention_and_attribution.reports.md_prompts import prompts_section
from attention_and_attribution.reports.run_artefacts import AttributionModel
from layers_core.reports.markdown import md_image
from layers_core.reports.report_files import evaluation_path, not_run_report

PLOT_NOTES = {
    "head-grid": "Median DLA of every head (layer up, head across), red towards the answer, blue towards the foil; "
                 "retrieval heads boxed.",
    "attention": "Attention from the answer position of the main prompt, for the best heads by median DLA.",
    "layers": "Per layer: attention and MLP DLA on the main prompt (bars; battery medians as markers when it ran), "
              "and the norm lens's p(answer) after each block.",
}


def plots_section(plots: dict[str, Path]) -> str:
    """The plots written for this model, each with what it shows (relative links)."""
    parts = ["## Plots"] + [f"{PLOT_NOTES.get(kind, kind)}\n\n{md_image(kind, path.name)}"
                            for kind, path in plots.items()]
    if "attention" not in plots:
        parts.append("No attention plot: the attention CSV has no rows for the main prompt (it holds the prompts, "
                     "not the battery's facts).")
    return "\n\n".join(parts)


def build_evaluation(model: AttributionModel, plots: dict[str, Path]) -> str:
    """The whole markdown report of one model with status ok."""
    intro = (f"Main prompt: `{model.main_prompt_id}`. Layers are 0-based block indices (0 .. {model.n_layers - 1}); "
             f"relative depth = (layer + 1) / {model.n_layers}, the depth after the block has written. "
             "Heads are written `L<layer>H<head>`, as in the artefacts. Logits with 3 decimals.")
    parts = [f"# {TITLE}: {model.name}", GENERATED_BY, intro, DLA_NOTE, sum_check_section(model),
             prompts_section(model.prompts, model.main_prompt_id), battery_section(model), ablation_section(model),
             plots_section(plots), setup_section(model)]
    return "\n\n".join(part.rstrip() for part in parts) + "\n"




def write_evaluation(model: AttributionModel, run_dir: Path, plots: dict[str, Path]) -> Path:
    """Write ``evaluation-<name>.md`` (the short version for a skipped or failed model)."""
    path = evaluation_path(run_dir, model.name)
    text = (build_evaluation(model, plots) if model.ok
            else not_run_report(model, TITLE, GENERATED_BY, "attribution results"))
    path.write_text(text, encoding="utf-8")
    return path
