"""``evaluation-cross-model.md``: the models of one run side by side, by relative depth.

Factual only: numbers copied from each model's JSON. Skipped and failed models are
listed with their reason and left out of every table. Models whose SAEs are below the
quality thresholds are named first.
"""

from __future__ import annotations

from pathlib import Path

from layers_core.reports.formats import MISSING, fmt_at, fmt_int, fmt_text, fmt_token
from layers_core.reports.markdown import md_image, md_table
from layers_core.reports.report_files import cross_model_path, not_included
from sae_features.reports.md_common import GENERATED_BY, TITLE
from sae_features.reports.md_depth import holding_categories, seed_line
from sae_features.reports.quality_verdict import sae_verdicts, weak_saes
from sae_features.reports.run_artefacts import SaeModel, SaeRun
from sae_features.reports.seed_reference import deepest, depth_points, nearest_to_mid, trend_word


def _kinds(model: SaeModel) -> str:
    kinds = dict.fromkeys(str((e.get("source") or {}).get("kind")) for e in model.saes)
    return ", ".join(fmt_text(k) for k in kinds) or MISSING


def models_table(models: list[SaeModel]) -> str:
    """Identity, layers, SAEs and their sources, and how many SAEs are weak."""
    rows = [[fmt_token(m.name), fmt_text(str((m.summary.get("model") or {}).get("architecture") or MISSING)),
             fmt_int(m.n_layers), str(len(m.saes)), _kinds(m), f"{len(weak_saes(m))} of {len(m.saes)}"]
            for m in models]
    return md_table(["Model", "Architecture", "Layers", "SAEs", "SAE sources", "SAEs below the thresholds"], rows)


def depth_table(models: list[SaeModel]) -> str:
    """One row per model and SAE: its depth, the categories whose specialist holds, and whether it may be read."""
    rows = []
    for m in models:
        good = {v.layer: v.ok for v in sae_verdicts(m)}
        for p in depth_points(m.depth):
            rows.append([fmt_token(m.name), fmt_at(p.layer, p.rel_depth), f"{p.holding} of {p.categories}",
                         ", ".join(f"`{fmt_text(c)}`" for c in holding_categories(m, p.layer)) or "none",
                         "yes" if good.get(p.layer, False) else "**NO**"])
    return md_table(["Model", "Layer", "Categories that hold", "Which", "SAE meets thresholds"], rows)


def trend_table(models: list[SaeModel]) -> str:
    """Per model: the SAE nearest depth 0.5, the deepest, and whether the deeper has more categories that hold."""
    rows = []
    for m in models:
        points = depth_points(m.depth)
        mid, deep = nearest_to_mid(points), deepest(points)
        if mid is None or deep is None:
            continue
        word = "one SAE only" if mid.layer == deep.layer else trend_word(mid, deep)
        rows.append([fmt_token(m.name), f"{fmt_at(mid.layer, mid.rel_depth)}: {mid.holding} of {mid.categories}",
                     f"{fmt_at(deep.layer, deep.rel_depth)}: {deep.holding} of {deep.categories}", word])
    return md_table(["Model", "Nearest depth 0.5", "Deepest", "The deepest has"], rows)


def weak_lines(models: list[SaeModel]) -> str:
    """A warning per model with a weak SAE, or that every SAE meets the thresholds."""
    lines = [f"- **{fmt_text(m.name)}**: {len(weak_saes(m))} of {len(m.saes)} SAEs below the quality thresholds "
             f"(residuals {', '.join(str(v.layer) for v in weak_saes(m))}); see its evaluation."
             for m in models if weak_saes(m)]
    if not lines:
        return "Every SAE of every model meets its run's quality thresholds."
    return ("> **WARNING: some SAEs are below the quality thresholds**: their specialists and counts describe a "
            "poor approximation, not the model.\n\n" + "\n".join(lines))


def build_cross_model(run: SaeRun, plot: Path | None) -> str:
    """The whole cross-model markdown."""
    models = run.ok_models
    parts = [f"# {TITLE}: cross-model comparison", GENERATED_BY,
             "Models have different depths, so they are compared by relative depth: an SAE on residual l of a model "
             "with L layers sits at l / L. Layers are written `layer (rel. depth)`.",
             "## Not included (skipped or failed)", not_included(run.other_models)]
    if not models:
        return "\n\n".join(parts + ["## Models", "No model ran; nothing to compare."]) + "\n"
    if len(models) == 1:
        parts.append("Only one model ran, so there is nothing to compare it with yet.")
    parts += ["## SAE quality", weak_lines(models), "## Models", models_table(models),
              "## Specialists that hold, by relative depth", depth_table(models),
              "## Mid-depth against the deepest SAE", trend_table(models), seed_line() + " Other models, SAEs, "
              "texts and rules: only the direction can be set beside this run's, and two to four models are no "
              "basis for a rule about all models."]
    if plot is not None:
        parts += ["## Plot", "Categories with a specialist that holds against relative depth, one line per model "
                  "(hollow markers: SAEs below the quality thresholds; grey crosses: the seed's reported counts)."
                  f"\n\n{md_image('cross-model', plot.name)}"]
    return "\n\n".join(parts) + "\n"


def write_cross_model(run: SaeRun, plot: Path | None) -> Path:
    """Write ``evaluation-cross-model.md`` into the run folder."""
    path = cross_model_path(run.run_dir)
    path.write_text(build_cross_model(run, plot), encoding="utf-8")
    return path
