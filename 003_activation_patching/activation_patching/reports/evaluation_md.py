"""``evaluation-<name>.md``: the factual per-model report, built from the artefacts only.

No LLM is involved and nothing is interpreted beyond comparisons the numbers settle
(the exactness check, the handover medians, which depth comes first). The same
artefacts always give the same bytes.
"""

from __future__ import annotations

from pathlib import Path

from activation_patching.reports.md_attribution import attribution_section
from activation_patching.reports.md_battery import battery_section
from activation_patching.reports.md_common import DEPTH_NOTE, GENERATED_BY, METRIC_NOTE, TITLE
from activation_patching.reports.md_depth import depth_section
from activation_patching.reports.md_exactness import exactness_section
from activation_patching.reports.md_model import setup_section
from activation_patching.reports.md_pairs import pairs_section
from activation_patching.reports.md_sweep import sweep_section
from activation_patching.reports.run_artefacts import PatchingModel
from layers_core.reports.markdown import md_image
from layers_core.reports.report_files import evaluation_path, not_run_report

PLOT_NOTES = {
    "tracing": "Causal tracing of the first fully swept pair: restoration of each residual, attention output and MLP "
               "output patched alone, layer up, token across; denoising above, noising below.",
    "heads": "Each head's output patched alone (first fully swept pair), at every position and at the answer "
             "position, layer up, head across.",
    "battery": "Per residual layer, the battery's median restoration patching the subject's last token against "
               "the answer position (bands: interquartile range), the handover layer dashed.",
    "attribution": "Attribution patching's estimates against the exact restorations, plain and path-averaged, "
                   "with r in the legend.",
}


def plots_section(plots: dict[str, Path]) -> str:
    """The plots written for this model, each with what it shows (relative links)."""
    parts = ["## Plots"] + [f"{PLOT_NOTES.get(kind, kind)}\n\n{md_image(kind, path.name)}"
                            for kind, path in plots.items()]
    missing = [kind for kind in PLOT_NOTES if kind not in plots]
    if missing:
        parts.append(f"Not drawn ({', '.join(missing)}): no fully swept pair, or no resolvable pair for the "
                     "battery.")
    return "\n\n".join(parts)


def build_evaluation(model: PatchingModel, plots: dict[str, Path]) -> str:
    """The whole markdown report of one model with status ok."""
    intro = (f"{model.n_layers} layers, {model.n_heads} heads per layer. Heads are written `L<layer>H<head>`. "
             "Restorations, logits and depths with 3 decimals.")
    parts = [f"# {TITLE}: {model.name}", GENERATED_BY, intro, METRIC_NOTE, DEPTH_NOTE, exactness_section(model),
             pairs_section(model), sweep_section(model), battery_section(model), depth_section(model),
             attribution_section(model), plots_section(plots), setup_section(model)]
    return "\n\n".join(part.rstrip() for part in parts) + "\n"




def write_evaluation(model: PatchingModel, run_dir: Path, plots: dict[str, Path]) -> Path:
    """Write ``evaluation-<name>.md`` (the short version for a skipped or failed model)."""
    path = evaluation_path(run_dir, model.name)
    text = (build_evaluation(model, plots) if model.ok
            else not_run_report(model, TITLE, GENERATED_BY, "patching results"))
    path.write_text(text, encoding="utf-8")
    return path
