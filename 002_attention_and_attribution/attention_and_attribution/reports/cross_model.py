"""``evaluation-cross-model.md``: the models of one run side by side, by relative depth.

Factual only: numbers copied from each model's JSON and head summary. Skipped and
failed models are listed with their reason and left out of every table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from attention_and_attribution.reports.ablation_check import comparisons
from attention_and_attribution.reports.md_ablation import fmt_range
from attention_and_attribution.reports.md_common import (
    DLA_NOTE,
    GENERATED_BY,
    TITLE,
    fmt_head_at_depth,
    fmt_logit,
    fmt_share,
)
from attention_and_attribution.reports.md_model import sum_check_passed
from attention_and_attribution.reports.run_artefacts import AttributionModel, AttributionRun
from layers_core.reports.formats import MISSING, fmt_depth, fmt_exact, fmt_int, fmt_text, fmt_token
from layers_core.reports.markdown import md_image, md_table
from layers_core.reports.report_files import cross_model_path, not_included

ABLATION_K = 5
TOP_N = 3


def models_table(models: list[AttributionModel]) -> str:
    """Identity, shape, the sum check and what the summaries are over."""
    rows = []
    for m in models:
        diag, battery = m.diagnostics, m.battery or {}
        rows.append([fmt_token(m.name), fmt_text((m.summary.get("model") or {}).get("architecture", MISSING)),
                     fmt_int(diag.get("n_layers")), fmt_int(diag.get("n_heads")), fmt_exact(diag.get("max_sum_error")),
                     fmt_exact(diag.get("max_sum_rel_error")), "passed" if sum_check_passed(diag) else "**FAILED**",
                     fmt_text(m.summary_over), fmt_int(battery.get("n_used"))])
    header = ["Model", "Architecture", "Layers", "Heads", "Max sum error", "Max relative sum error", "Sum check",
              "Summaries over", "Facts used"]
    return md_table(header, rows)


def _largest(summary: list[dict[str, Any]], key: str) -> str:
    found = [e for e in summary if isinstance(e.get(key), int | float)]
    if not found:
        return MISSING
    best = max(found, key=lambda e: float(e[key]))
    return f"{fmt_int(best.get('layer'))} ({fmt_depth(best.get('rel_depth'))}): {fmt_logit(best[key])}"


def depth_table(models: list[AttributionModel]) -> str:
    """Where the top heads, the retrieval heads and the largest attention and MLP medians sit."""
    rows = []
    for m in models:
        top = [fmt_head_at_depth(r) for r in m.head_summary.head(TOP_N).to_dict("records")]
        retrieval = ", ".join(fmt_head_at_depth(h) for h in m.retrieval_heads) or "none meets the criterion"
        rows.append([fmt_token(m.name), ", ".join(top), retrieval,
                     _largest(m.layers_summary, "median_attn_dla_logit_diff"),
                     _largest(m.layers_summary, "median_mlp_dla_logit_diff")])
    header = ["Model", f"Top {TOP_N} heads (rel. depth)", "Retrieval heads (rel. depth)",
              "Largest attention median: layer (rel. depth): DLA", "Largest MLP median: layer (rel. depth): DLA"]
    return md_table(header, rows)


def ablation_table(models: list[AttributionModel], k: int = ABLATION_K) -> str:
    """Top-k against random heads at one k, per model."""
    rows = []
    for m in models:
        ablation = m.ablation or {}
        found = next((c for c in comparisons(ablation) if c.k == k), None)
        if not ablation or ablation.get("skipped_reason") or found is None:
            why = fmt_text(ablation.get("skipped_reason") or f"no k = {k}") if ablation else "not run"
            rows.append([fmt_token(m.name), why] + [MISSING] * 5)
            continue
        rows.append([fmt_token(m.name), fmt_text(found.top_heads or MISSING), fmt_logit(found.top_drop),
                     fmt_logit(found.random_mean), fmt_range(found.random_drops), fmt_share(found.top_flipped),
                     found.verdict or MISSING])
    header = ["Model", f"Top-{k} heads", "Top-k drop", "Random drop (mean)", "Random range", "Top-k share flipped",
              "Ranking"]
    return md_table(header, rows)


def build_cross_model(run: AttributionRun, plot: Path | None) -> str:
    """The whole cross-model markdown."""
    models = run.ok_models
    parts = [f"# {TITLE}: cross-model comparison", GENERATED_BY,
             "Models have different depths, so they are compared by relative depth = (layer + 1) / L, the depth "
             "after the block has written (1 = the last block). Heads are written `L<layer>H<head>`, as in the "
             "artefacts.", DLA_NOTE,
             "## Not included (skipped or failed)", not_included(run.other_models)]
    if not models:
        return "\n\n".join(parts + ["## Models", "No model ran; nothing to compare."]) + "\n"
    if len(models) == 1:
        parts.append("Only one model ran, so there is nothing to compare it with yet.")
    parts += ["## Models", models_table(models), "## Where the answer is written", depth_table(models),
              f"## Ablation at k = {ABLATION_K}", ablation_table(models)]
    if plot is not None:
        parts += ["## Plot", "Median attention and MLP DLA per layer against relative depth, one line per model."
                  f"\n\n{md_image('cross-model', plot.name)}"]
    return "\n\n".join(parts) + "\n"


def write_cross_model(run: AttributionRun, plot: Path | None) -> Path:
    """Write ``evaluation-cross-model.md`` into the run folder."""
    path = cross_model_path(run.run_dir)
    path.write_text(build_cross_model(run, plot), encoding="utf-8")
    return path
