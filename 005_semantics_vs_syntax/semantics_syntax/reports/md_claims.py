"""The end of every hypothesis section: the seed's claims against this run, the held rules, and significance.

The table copies the hypotheses CSV (one row per measure and SAE): value, 95% interval,
p, p_holm, n, the seed's claim, how far the value lies from the seed's number or range,
and ``held`` as the run decided it (``no claim`` where the seed made none). Below it,
the rule behind each ``held`` (``seed_claims.HELD_RULES``) and, per measure with a
p-value, where it reaches significance and where it does not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from layers_core.reports.markdown import md_table
from semantics_syntax.reports.claim_rows import Claim
from semantics_syntax.reports.md_common import (
    ACROSS_SAES,
    fmt_ci,
    fmt_code,
    fmt_count,
    fmt_layer,
    fmt_p,
    fmt_stat,
)
from semantics_syntax.reports.seed_claims import HELD_RULES, SEED_ACROSS, SEED_WITHIN, SIGNIFICANCE, from_seed

NO_CLAIM = "no claim"
CLAIM_HEADER = ["Measure", "Layer", "Seed claim", "Value", "95% CI", "p", "p_holm", "n", "Value - seed", "Held"]


def _distance(claim: Claim) -> str:
    if not claim.held:
        return ""
    gap = from_seed(claim.measure, claim.value)
    if math.isnan(gap):
        return ""
    return "inside" if gap == 0 else fmt_stat(gap)


def claims_table(claims: Sequence[Claim]) -> str:
    """One row per measure and SAE, as the hypotheses CSV holds it."""
    rows = [[fmt_code(c.measure), fmt_layer(c.layer, c.rel_depth), c.seed_claim or NO_CLAIM, fmt_stat(c.value),
             fmt_ci(c.ci_low, c.ci_high), fmt_p(c.p_value), fmt_p(c.p_holm), fmt_count(c.n), _distance(c),
             c.held or NO_CLAIM] for c in claims]
    return md_table(CLAIM_HEADER, rows)


def rules_text(claims: Sequence[Claim]) -> str:
    """The rule behind each ``held`` in ``claims`` (as ``hypotheses`` applies it)."""
    measures = [m for m in dict.fromkeys(c.measure for c in claims) if m in HELD_RULES]
    if not measures:
        return "The seed made no claim these measures can test."
    lines = [f"- {fmt_code(m)}: {HELD_RULES[m]}." for m in measures]
    if any(m.startswith("topic_clustering") for m in measures):
        lines.append(f"- The seed's clustering claim, within-topic similarity {SEED_WITHIN} vs across "
                     f"{SEED_ACROSS}, is an effect of {SEED_WITHIN - SEED_ACROSS:.3f}.")
    return ("How `held` is decided (by `semantics_syntax/hypotheses.py`; it follows the rule, not closeness to the "
            "seed's number, which the `Value - seed` column gives: `inside` the seed's range, else the signed "
            "distance to it):\n\n" + "\n".join(lines))


def _p_used(claim: Claim) -> tuple[str, float]:
    return ("p_holm", claim.p_holm) if not math.isnan(claim.p_holm) else ("p", claim.p_value)


def _place(claim: Claim) -> str:
    return "over " + ACROSS_SAES if claim.layer is None else "at " + fmt_layer(claim.layer, claim.rel_depth)


def _where(claims: Sequence[Claim]) -> str:
    return "; ".join(f"{_place(c)} ({_p_used(c)[0]} {fmt_p(_p_used(c)[1])})" for c in claims)


def significance_text(claims: Sequence[Claim]) -> str:
    """Per measure with a p-value: where it reaches p < 0.05 (Holm-adjusted where the run adjusts) and where not."""
    lines = []
    for measure in dict.fromkeys(c.measure for c in claims):
        tested = [c for c in claims if c.measure == measure and not math.isnan(_p_used(c)[1])]
        if not tested:
            continue
        reached = [c for c in tested if _p_used(c)[1] < SIGNIFICANCE]
        missed = [c for c in tested if _p_used(c)[1] >= SIGNIFICANCE]
        parts = []
        if missed:
            parts.append(f"does **not reach significance** {_where(missed)}")
        if reached:
            parts.append(f"reaches significance {_where(reached)}")
        lines.append(f"- {fmt_code(measure)} {'; it '.join(parts)}.")
    if not lines:
        return ""
    return (f"Significance (p < {SIGNIFICANCE}; p_holm where the run adjusts for the family of tests, else p):\n\n"
            + "\n".join(lines))


def loose_text(claims: Sequence[Claim]) -> str:
    """The claims that held by the rule while the value lies outside the seed's number or range ("" when none)."""
    loose = [c for c in claims if c.held == "yes" and from_seed(c.measure, c.value) != 0
             and not math.isnan(from_seed(c.measure, c.value))]
    if not loose:
        return ""
    items = "; ".join(f"{fmt_code(c.measure)} {_place(c)} ({fmt_stat(c.value)} against the seed's {c.seed_claim})"
                      for c in loose)
    return f"Held by the rule although the value lies outside the seed's number or range: {items}."


def claims_section(title: str, claims: Sequence[Claim]) -> str:
    """The subsection ending a hypothesis section: the table, the rules, the significance lines."""
    if not claims:
        return f"### {title}\n\nThe hypotheses table holds no row for this section."
    parts = [f"### {title}", claims_table(claims), rules_text(claims), loose_text(claims), significance_text(claims)]
    return "\n\n".join(p for p in parts if p)
