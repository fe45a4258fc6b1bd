"""The H3 section: does math-specialist activation go with the model's log-probability of the answer?

From the hypotheses CSV (the raw and partial correlations per domain) and the cloze CSV
(how many tokens the answers take, per domain: the confound ``behaviour`` controls).
"""

from __future__ import annotations

import math

from layers_core.reports.markdown import md_table
from semantics_syntax.artefact_schema import CLOZE
from semantics_syntax.reports.ablation_summary import DOMAINS
from semantics_syntax.reports.claim_rows import Claim
from semantics_syntax.reports.md_claims import claims_section
from semantics_syntax.reports.md_common import fmt_ci, fmt_count, fmt_layer, fmt_p, fmt_stat
from semantics_syntax.reports.run_artefacts import SemanticsModel
from semantics_syntax.reports.seed_claims import SIGNIFICANCE

INTRO = ("Per item, the summed activation of the math specialists (the ablation's `specialist` features) on the "
         "prompt, against the total log-probability of the answer. The seed reported rho 0.35-0.47, all significant. "
         "The total log-probability falls with every answer token, and what a prompt looks like (digits or words) "
         "goes with how many tokens its answer takes, so **a raw correlation can arise from answer token counts "
         "alone** (it does on a random-weight model). The partial correlation regresses the answer's token count out "
         "of both ranks: it is the one to trust. The non-math items are a control: a specialist that only marks the "
         "domain should say little within them.")


def _cells(claim: Claim | None) -> list[str]:
    if claim is None:
        return ["n/a"] * 4
    return [fmt_stat(claim.value), fmt_ci(claim.ci_low, claim.ci_high), fmt_p(claim.p_value), fmt_p(claim.p_holm)]


def correlation_table(model: SemanticsModel) -> str:
    """Per SAE and domain: the raw and the partial correlation with their statistics."""
    rows = []
    for layer in model.layers:
        for domain in DOMAINS:
            raw = model.claim(f"activation_logprob_rho_{domain}", layer)
            partial = model.claim(f"activation_logprob_partial_rho_{domain}", layer)
            rows.append([fmt_layer(layer, model.rel_depth(layer)), domain, *_cells(raw), *_cells(partial),
                         fmt_count(raw.n if raw else None)])
    return md_table(["Layer", "Items", "rho", "rho 95% CI", "rho p", "rho p_holm", "partial rho", "partial 95% CI",
                     "partial p", "partial p_holm", "n"], rows)


def undefined_text(model: SemanticsModel) -> str:
    """Why a correlation is n/a: the specialists' activation takes one value on every item of that domain."""
    table = model.csv(CLOZE)
    lines = []
    for layer in model.layers:
        for domain in DOMAINS:
            raw = model.claim(f"activation_logprob_rho_{domain}", layer)
            if raw is None or not math.isnan(raw.value):
                continue
            values = table[(table["layer"] == layer) & (table["domain"] == domain)]["specialist_activation"]
            if len(values) and values.nunique() == 1:
                why = ("the math specialists fire on none of its items" if float(values.iloc[0]) == 0.0
                       else "the math specialists' activation is the same on every item")
                lines.append(f"- {fmt_layer(layer, model.rel_depth(layer))}, {domain}: n/a because {why}, "
                             "so there is no ranking to correlate.")
    return "\n".join(lines)


def _significant(claim: Claim | None) -> bool | None:
    if claim is None or math.isnan(claim.p_holm):
        return None
    return claim.p_holm < SIGNIFICANCE


def survival_text(model: SemanticsModel) -> str:
    """Per SAE, whether the math correlation is significant raw and once the token count is controlled."""
    lines = []
    for layer in model.layers:
        raw = _significant(model.claim("activation_logprob_rho_math", layer))
        partial = _significant(model.claim("activation_logprob_partial_rho_math", layer))
        if raw is None or partial is None:
            continue
        where = fmt_layer(layer, model.rel_depth(layer))
        if raw and not partial:
            verdict = "significant raw, **not** once the answer's token count is controlled"
        elif raw and partial:
            verdict = "significant raw and once the answer's token count is controlled"
        elif partial:
            verdict = "not significant raw, significant once the answer's token count is controlled"
        else:
            verdict = "significant neither raw nor controlled"
        lines.append(f"- {where}: math correlation {verdict} (p_holm < {SIGNIFICANCE}).")
    return "\n".join(lines)


def answer_tokens_table(model: SemanticsModel) -> str:
    """Per domain: the scored items and how many tokens their answers take (the confound)."""
    table = model.csv(CLOZE)
    first = table[table["layer"] == model.layers[0]]
    rows = []
    for domain in DOMAINS:
        counts = [int(v) for v in first[first["domain"] == domain]["answer_tokens"]]
        if counts:
            rows.append([domain, str(len(counts)), f"{sum(counts) / len(counts):.2f}", str(min(counts)),
                         str(max(counts)), str(sum(c > 1 for c in counts))])
    return md_table(["Items", "Scored", "Mean answer tokens", "Min", "Max", "Answers of more than one token"], rows)


def h3_section(model: SemanticsModel) -> str:
    """The whole H3 section, ending with the seed's claims against this run."""
    parts = ["## H3: specialist activation and the answer's log-probability", INTRO, correlation_table(model),
             undefined_text(model), survival_text(model), "### Answer token counts (the confound)",
             answer_tokens_table(model),
             claims_section("H3: the seed's claims against this run", model.claims_of("H3"))]
    return "\n\n".join(p for p in parts if p)
