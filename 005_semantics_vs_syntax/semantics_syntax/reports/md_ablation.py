"""The ablation section: does removing a specialist change the answers more than removing a control feature?

From the ablation CSV (per feature and domain; summarised by ``ablation_summary``) and
the hypotheses CSV (signal-to-noise, the largest flip rate, each specialist's p_holm,
selectivity against effect).
"""

from __future__ import annotations

from layers_core.reports.markdown import md_image, md_table
from semantics_syntax.artefact_schema import ABLATION
from semantics_syntax.reports.ablation_summary import DOMAINS, KindEffect, effects
from semantics_syntax.reports.md_claims import claims_section
from semantics_syntax.reports.md_common import (
    fmt_ci,
    fmt_count,
    fmt_layer,
    fmt_nats,
    fmt_p,
    fmt_pct,
    fmt_ratio,
    fmt_size,
    fmt_stat,
)
from semantics_syntax.reports.run_artefacts import SemanticsModel
from semantics_syntax.reports.seed_claims import SEED_SNR

INTRO = ("Each feature is removed alone at its SAE's layer, with the SAE's error term kept, on every cloze item. "
         "Delta: the change in the answer's total log-probability (nats; negative: removing it hurts). Flip rate: "
         "the share of items whose greedy answer changes. Signal-to-noise: the specialists' mean |delta| on math "
         "items over that of the frequency-matched random features. The seed reported "
         + " and ".join(f"{v}x ({k})" for k, v in SEED_SNR.items())
         + ", and read the larger model as far more resilient; it found at most 4.9% of predictions flipped.")


def _domain_cells(effect: KindEffect) -> list[str]:
    return [fmt_nats(effect.mean_delta), fmt_size(effect.mean_size), fmt_pct(effect.mean_flip),
            fmt_pct(effect.max_flip)]


def kinds_table(model: SemanticsModel) -> str:
    """Per SAE and kind: the features' mean delta, mean |delta| and flip rates on math and non-math items."""
    found = effects(model.csv(ABLATION), model.layers)
    cells = {(e.layer, e.kind, e.domain): e for e in found}
    rows = []
    for layer, kind in dict.fromkeys((e.layer, e.kind) for e in found):
        math_cell, other = cells[(layer, kind, DOMAINS[0])], cells[(layer, kind, DOMAINS[1])]
        rows.append([fmt_layer(layer, model.rel_depth(layer)), kind, str(math_cell.features),
                     *_domain_cells(math_cell), *_domain_cells(other)])
    header = ["Layer", "Kind", "Features"]
    for domain in DOMAINS:
        header += [f"{domain} {column}" for column in ("mean delta", "mean abs delta", "mean flip", "max flip")]
    return md_table(header, rows)


def snr_table(model: SemanticsModel) -> str:
    """Per SAE: signal-to-noise, the specialists' size of effect on math vs non-math, the largest flip rate."""
    cells = {(e.layer, e.kind, e.domain): e for e in effects(model.csv(ABLATION), model.layers)}
    rows = []
    for layer in model.layers:
        snr, flip = model.claim("signal_to_noise_math", layer), model.claim("max_flip_rate_math", layer)
        spec = cells.get((layer, "specialist", "math"))
        rand = cells.get((layer, "random", "math"))
        spec_other = cells.get((layer, "specialist", "nonmath"))
        rows.append([fmt_layer(layer, model.rel_depth(layer)), fmt_ratio(snr.value if snr else None),
                     fmt_size(spec.mean_size if spec else None), fmt_size(rand.mean_size if rand else None),
                     fmt_size(spec_other.mean_size if spec_other else None),
                     fmt_pct(flip.value if flip else None)])
    return md_table(["Layer", "Signal-to-noise (math)", "Specialists mean abs delta, math",
                     "Random mean abs delta, math", "Specialists mean abs delta, non-math",
                     "Largest specialist flip rate, math"], rows)


def specialists_table(model: SemanticsModel) -> str:
    """Every specialist ablated: its selectivity, its effect on math items (with p_holm) and on non-math items."""
    table = model.csv(ABLATION)
    table = table[table["kind"] == "specialist"]
    rows = []
    for layer in model.layers:
        mine = table[table["layer"] == layer]
        for feature in dict.fromkeys(int(f) for f in mine["feature"]):
            by = {str(r["domain"]): r for r in mine[mine["feature"] == feature].to_dict("records")}
            m, o = by.get("math"), by.get("nonmath")
            claim = model.claim(f"ablation_delta_f{feature}", layer)
            on_math = ([fmt_nats(m["mean_delta_logprob"]), f"[{fmt_nats(m['ci_low'])}, {fmt_nats(m['ci_high'])}]",
                        fmt_p(m["p_value"]), fmt_p(claim.p_holm if claim else None), fmt_pct(m["flip_rate"])]
                       if m else ["n/a"] * 5)
            on_other = ([fmt_nats(o["mean_delta_logprob"]), fmt_p(o["p_value"]), fmt_pct(o["flip_rate"])]
                        if o else ["n/a"] * 3)
            rows.append([fmt_layer(layer, model.rel_depth(layer)), str(feature), fmt_stat(m["score"] if m else None),
                         fmt_pct(m["frequency"] if m else None), *on_math, *on_other])
    return md_table(["Layer", "Feature", "Selectivity", "Fires on", "math delta", "math 95% CI", "math p",
                     "math p_holm", "math flip", "nonmath delta", "nonmath p", "nonmath flip"], rows)


def selectivity_text(model: SemanticsModel) -> str:
    """Selectivity against effect: Spearman's rho over every specialist of every SAE (one number per model)."""
    claim = model.claim("selectivity_vs_effect_rho", None)
    if claim is None:
        return "Selectivity against effect: not in the hypotheses table."
    return (f"Selectivity against effect (Spearman's rho between each specialist's selectivity score and the size of "
            f"its effect on math items, over the specialists of every SAE): rho {fmt_stat(claim.value)}, 95% CI "
            f"{fmt_ci(claim.ci_low, claim.ci_high)}, p {fmt_p(claim.p_value)}, n {fmt_count(claim.n)}; the seed "
            "reported -0.546 (more selective features mattering less).")


def ablation_section(model: SemanticsModel, plot: str | None) -> str:
    """The whole ablation section, ending with the seed's claims against this run."""
    parts = ["## Ablation: do the specialists matter causally?", INTRO, "### By kind of feature", kinds_table(model)]
    if plot:
        parts.append(f"Mean delta per SAE and kind, math and non-math items, flip rates in the cells:\n\n"
                     f"{md_image('ablation', plot)}")
    parts += ["### Signal-to-noise and specificity", snr_table(model), selectivity_text(model),
              "### Every specialist", specialists_table(model),
              claims_section("Ablation: the seed's claims against this run", model.claims_of("ablation"))]
    return "\n\n".join(parts)
