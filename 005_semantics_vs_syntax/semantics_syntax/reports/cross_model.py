"""``evaluation-cross-model.md``: the models of one run side by side, claim by claim, by relative depth.

Factual only: numbers copied from each model's hypotheses CSV and summarised from its
ablation CSV. Skipped and failed models are listed with their reason and left out of
every table.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from layers_core.reports.formats import MISSING, fmt_int, fmt_text, fmt_token
from layers_core.reports.markdown import md_image, md_table
from layers_core.reports.report_files import cross_model_path, not_included
from semantics_syntax.artefact_schema import ABLATION
from semantics_syntax.reports.ablation_summary import effects
from semantics_syntax.reports.claim_rows import Claim
from semantics_syntax.reports.md_claims import rules_text
from semantics_syntax.reports.md_common import (
    GENERATED_BY,
    SAE_QUALITY_NOTE,
    TITLE,
    fmt_layer,
    fmt_p,
    fmt_pct,
    fmt_ratio,
    fmt_size,
    fmt_stat,
)
from semantics_syntax.reports.run_artefacts import SemanticsModel, SemanticsRun
from semantics_syntax.reports.seed_claims import HELD_RULES, SEED_MODELS, SEED_SNR, SIGNIFICANCE, from_seed

# Measures without a seed claim set beside the claims (the other side of each contrast, the controlled correlation).
COMPANIONS = ("same_form_jaccard", "syntactic_share_minus_token_share", "form_clustering_sae",
              "form_clustering_residual", "activation_logprob_partial_rho_math", "activation_logprob_rho_nonmath",
              "signal_to_noise_math")


def models_table(models: list[SemanticsModel]) -> str:
    """Identity, shape, SAEs and cloze items scored per model."""
    rows = [[fmt_token(m.name), fmt_text(str((m.summary.get("model") or {}).get("architecture") or MISSING)),
             fmt_int(m.n_layers), fmt_int(m.d_model),
             ", ".join(fmt_layer(layer, m.rel_depth(layer)) for layer in m.layers),
             ", ".join(dict.fromkeys(fmt_text(str((e.get("source") or {}).get("kind"))) for e in m.saes)),
             f"{fmt_int(m.cloze.get('scored'))} of {fmt_int(m.cloze.get('items'))}"] for m in models]
    return md_table(["Model", "Architecture", "Layers", "d_model", "SAEs at", "SAE sources", "Cloze items scored"],
                    rows)


def _per_sae(model: SemanticsModel, claims: list[Claim], with_gap: bool) -> str:
    cells = []
    for c in claims:
        gap = from_seed(c.measure, c.value) if with_gap else math.nan
        extra = "" if math.isnan(gap) else (" (inside)" if gap == 0 else f" ({fmt_stat(gap)})")
        cells.append(f"{fmt_layer(c.layer, c.rel_depth)}: {fmt_stat(c.value)}{extra}")
    return "; ".join(cells) or MISSING


def claims_table(models: list[SemanticsModel]) -> str:
    """Per seed claim and model: how many SAEs it held at, and each SAE's value with its distance from the seed."""
    rows = []
    for measure in HELD_RULES:
        for m in models:
            found = [c for c in m.claims if c.measure == measure]
            if not found:
                continue
            held = sum(c.held == "yes" for c in found)
            rows.append([f"`{measure}`", fmt_text(found[0].seed_claim), fmt_token(m.name),
                         f"{held} of {len(found)}", _per_sae(m, found, with_gap=True)])
    return md_table(["Measure", "Seed claim", "Model", "Held at", "Per SAE: value (value - seed)"], rows)


def _significance(claim: Claim) -> str:
    p = claim.p_holm if not math.isnan(claim.p_holm) else claim.p_value
    return "" if math.isnan(p) else f" (p {'<' if p < SIGNIFICANCE else '>='} {SIGNIFICANCE})"


def companions_table(models: list[SemanticsModel]) -> str:
    """The measures without a claim, per model and SAE, with whether each reaches significance."""
    rows = []
    for measure in COMPANIONS:
        for m in models:
            found = [c for c in m.claims if c.measure == measure]
            if found:
                cells = "; ".join(f"{fmt_layer(c.layer, c.rel_depth)}: {fmt_stat(c.value)}{_significance(c)}"
                                  for c in found)
                rows.append([f"`{measure}`", fmt_token(m.name), cells])
    return md_table(["Measure", "Model", "Per SAE (p_holm where the run adjusts, else p)"], rows)


def _median(values: list[float]) -> float:
    found = [v for v in values if not math.isnan(v)]
    return statistics.median(found) if found else math.nan


def snr_table(models: list[SemanticsModel]) -> str:
    """Per model and SAE: signal-to-noise, the specialists' and random features' mean |delta|, the largest flip."""
    rows = []
    for m in models:
        cells = {(e.layer, e.kind, e.domain): e for e in effects(m.csv(ABLATION), m.layers)}
        for layer in m.layers:
            snr, flip = m.claim("signal_to_noise_math", layer), m.claim("max_flip_rate_math", layer)
            spec, rand = cells.get((layer, "specialist", "math")), cells.get((layer, "random", "math"))
            rows.append([fmt_token(m.name), fmt_layer(layer, m.rel_depth(layer)),
                         fmt_ratio(snr.value if snr else None), fmt_size(spec.mean_size if spec else None),
                         fmt_size(rand.mean_size if rand else None), fmt_pct(flip.value if flip else None)])
    return md_table(["Model", "Layer", "Signal-to-noise (math)", "Specialists mean abs delta",
                     "Random mean abs delta", "Largest specialist flip rate"], rows)


def median_snr(model: SemanticsModel) -> float:
    """The median signal-to-noise over the model's SAEs (NaN when none has one)."""
    return _median([c.value for c in model.claims if c.measure == "signal_to_noise_math"])


def size_text(models: list[SemanticsModel]) -> str:
    """The seed's resilience claim set beside this run: median signal-to-noise per model, larger vs smaller model."""
    seed = " and ".join(f"{v}x on {k}" for k, v in SEED_SNR.items())
    lines = [f"The seed reported signal-to-noise {seed}, and read the larger model as far more resilient to "
             "ablation noise.",
             "Median over SAEs in this run: " + "; ".join(f"{fmt_text(m.name)} {fmt_ratio(median_snr(m))}"
                                                          for m in models) + "."]
    shaped = [m for m in models if m.n_layers is not None and m.d_model is not None]
    if len(shaped) >= 2:
        largest = max(shaped, key=lambda m: (m.n_layers or 0, m.d_model or 0))
        others = [m for m in shaped if m is not largest]
        if all((largest.n_layers or 0) >= (o.n_layers or 0) and (largest.d_model or 0) >= (o.d_model or 0)
               for o in others):
            higher = all(median_snr(largest) > median_snr(o) for o in others)
            lines.append(f"The largest model by depth and width ({fmt_text(largest.name)}: {largest.n_layers} "
                         f"layers, d_model {largest.d_model}) has "
                         f"{'a higher' if higher else 'not a higher'} median signal-to-noise than every other model.")
        else:
            lines.append("No model is both the deepest and the widest, so 'larger' is not settled by the shapes "
                         "recorded here.")
    return " ".join(lines)


def build_cross_model(run: SemanticsRun, plot: Path | None) -> str:
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
    claims = [c for m in models for c in m.claims]
    parts += ["## Models", models_table(models), SAE_QUALITY_NOTE,
              "## The seed's claims, model by model",
              f"The seed's claims come from {SEED_MODELS}, with its own SAEs and texts. `Held at`: the SAEs where "
              "the claim held by the run's rule; each value is followed by its distance from the seed's number or "
              "range (`inside` when within it).", claims_table(models), rules_text(claims),
              "## The other side of each contrast", companions_table(models),
              "## Signal-to-noise and flip rates", snr_table(models), size_text(models)]
    if plot is not None:
        parts += ["## Plot", "The key measures against relative depth, one colour per model; grey lines and bands: "
                  f"the seed's numbers.\n\n{md_image('cross-model', plot.name)}"]
    parts += ["## What this comparison cannot say",
              "Two to four models are no basis for a rule about all models. The SAEs differ between models (trained "
              "here or from a release, width, sparsity), so a difference can be the SAEs' rather than the models'. "
              "Tokenizers split the texts and answers differently, which moves the token-class shares and the "
              "answers' log-probabilities. The seed's numbers come from other models, SAEs and texts: only the "
              f"direction can be set beside this run's. p-values of {fmt_p(SIGNIFICANCE)} and above are not "
              "evidence of no effect."]
    return "\n\n".join(parts) + "\n"


def write_cross_model(run: SemanticsRun, plot: Path | None) -> Path:
    """Write ``evaluation-cross-model.md`` into the run folder."""
    path = cross_model_path(run.run_dir)
    path.write_text(build_cross_model(run, plot), encoding="utf-8")
    return path
