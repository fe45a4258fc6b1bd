"""``evaluation-cross-model.md``: the models of one run side by side, by relative depth.

Factual only: numbers copied from each model's JSON (the depths of ``fact_depth``
read from its medians). Skipped and failed models are listed with their reason and
left out of every table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from activation_patching.reports.exactness import exactness_passed
from activation_patching.reports.fact_depth import HALF, Milestone, dla_depths, first_answer_layer, last_subject_layer
from activation_patching.reports.md_common import GENERATED_BY, METRIC_NOTE, TITLE, fmt_score
from activation_patching.reports.md_depth import fmt_layer_value
from activation_patching.reports.md_pairs import count
from activation_patching.reports.run_artefacts import PatchingModel, PatchingRun
from layers_core.reports.formats import MISSING, fmt_at, fmt_depth, fmt_int, fmt_text, fmt_token
from layers_core.reports.markdown import md_image, md_table
from layers_core.reports.report_files import cross_model_path, not_included

EXACTNESS = {True: "passed", False: "**FAILED**", None: "not run"}


def models_table(models: list[PatchingModel]) -> str:
    """Identity, shape, the pairs and the exactness check."""
    rows = [[fmt_token(m.name), fmt_text(str((m.summary.get("model") or {}).get("architecture") or MISSING)),
             fmt_int(m.diagnostics.get("n_layers")), fmt_int(m.diagnostics.get("n_heads")),
             f"{count(m.pairs, 'swap')} / {count(m.pairs, 'noise')} / {len(m.refused)}",
             fmt_int(m.battery.get("n_pairs_resolvable")), EXACTNESS[exactness_passed(m.pairs)]] for m in models]
    header = ["Model", "Architecture", "Layers", "Heads", "Pairs swap / noise / refused", "Resolvable", "Exactness"]
    return md_table(header, rows)


def _milestone(found: Milestone | None) -> str:
    return fmt_at(found.layer, found.rel_depth) if found else "never"


def _handover(model: PatchingModel, direction: str) -> str:
    found = ((model.headline or {}).get("handover") or {}).get(direction)
    return fmt_at(found.get("layer"), found.get("rel_depth")) if found else "none"


def _lens(comparison: dict[str, Any] | None) -> str:
    if comparison is None:
        return "not measured"
    first = comparison.get("first_rank1") or {}
    return f"{fmt_layer_value(first.get('median_layer'))} ({fmt_depth(first.get('median_rel_depth'))})"


def _dla(comparison: dict[str, Any] | None, key: str) -> str:
    if comparison is None:
        return "not measured"
    return ", ".join(f"{layer} ({fmt_depth(depth)})" for layer, depth in dla_depths(comparison, key)) or "none"


def depth_table(models: list[PatchingModel]) -> str:
    """Per model: the handover, the patching milestones, the lens milestone and the top DLA blocks, with depths."""
    rows = []
    for m in models:
        medians = list((m.headline or {}).get("medians") or [])
        comparison = m.depth_comparison
        rows.append([fmt_token(m.name), fmt_text(str((m.headline or {}).get("corruption") or MISSING)),
                     _handover(m, "denoise"), _handover(m, "noise"), _milestone(last_subject_layer(medians)),
                     _milestone(first_answer_layer(medians)), _lens(comparison),
                     _dla(comparison, "top_attn_layers"), _dla(comparison, "top_mlp_layers")])
    header = ["Model", "Pairs", "Handover, denoise", "Handover, noise", f"Subject: last layer >= {HALF:g}",
              f"Answer: first layer >= {HALF:g}", "Lens first rank-1 (median)", "Top attention DLA blocks",
              "Top MLP DLA blocks"]
    return md_table(header, rows)


def agreement_table(models: list[PatchingModel]) -> str:
    """Per model and fully swept pair: r over all sites, plain and path-averaged, each direction."""
    rows = []
    for m in models:
        every = [r for r in m.agreement if r.get("component") == "all"]
        for pair_id in dict.fromkeys(str(r.get("pair_id")) for r in every):
            found = {str(r.get("direction")): r for r in every if r.get("pair_id") == pair_id}
            rows.append([fmt_token(m.name), fmt_token(pair_id),
                         *(fmt_score(found.get(d, {}).get(f"r_{method}")) for method in ("approx", "approx_ig")
                           for d in ("denoise", "noise"))])
    if not rows:
        return "No model has agreement rows (no pair was fully swept)."
    header = ["Model", "Pair", "r plain, denoise", "r plain, noise", "r path-averaged, denoise",
              "r path-averaged, noise"]
    return md_table(header, rows)


def build_cross_model(run: PatchingRun, plot: Path | None) -> str:
    """The whole cross-model markdown."""
    models = run.ok_models
    parts = [f"# {TITLE}: cross-model comparison", GENERATED_BY,
             "Models have different depths, so they are compared by relative depth: residual layer l at l / L, "
             "block l's output at (l + 1) / L (where it enters the residual), so the columns line up. Layers are "
             "written `layer (rel. depth)`.", METRIC_NOTE,
             "## Not included (skipped or failed)", not_included(run.other_models)]
    if not models:
        return "\n\n".join(parts + ["## Models", "No model ran; nothing to compare."]) + "\n"
    if len(models) == 1:
        parts.append("Only one model ran, so there is nothing to compare it with yet.")
    parts += ["## Models", models_table(models), "## Where the fact lives, by relative depth",
              f"Handover: the run's rule, on each model's headline pairs. Subject / answer: this report's "
              f"threshold {HALF:g} on the denoising medians. Lens and DLA: 001's and 002's measures recomputed in "
              "this run on the same clean prompts (`not measured` when the run did not record them).",
              depth_table(models), "## Attribution patching against exact patching", agreement_table(models)]
    if plot is not None:
        parts += ["## Plot", "Median restoration per residual layer against relative depth, one colour per model: "
                  f"the subject's last token solid, the answer position dashed, the handover dotted."
                  f"\n\n{md_image('cross-model', plot.name)}"]
    return "\n\n".join(parts) + "\n"


def write_cross_model(run: PatchingRun, plot: Path | None) -> Path:
    """Write ``evaluation-cross-model.md`` into the run folder."""
    path = cross_model_path(run.run_dir)
    path.write_text(build_cross_model(run, plot), encoding="utf-8")
    return path
