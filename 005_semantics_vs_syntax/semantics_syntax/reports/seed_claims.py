"""What the seed reported, as the reports quote it, and the rule by which each of its claims is called held.

The seed (the user's notebooks, GPT-2 Small and Gemma 2 9B) made the claims of
``semantics_syntax.claims.SEED_CLAIMS``; the run writes, per measure, the claim and
``held`` (yes/no) into the hypotheses table. ``HELD_RULES`` states each rule as
``hypotheses`` applies it (its module doc), so the evaluation can say why a claim held;
(``semantics_syntax.claims``, shared with the run) names exactly the measures of ``SEED_CLAIMS``; the reader refuses
a run whose table calls a measure held that has no rule here. ``SEED_RANGES`` gives
each claim's number (or range) so a report can say by how much a run's value differs.
"""

from __future__ import annotations

import math

from semantics_syntax.claims import HELD_RULES

__all__ = ["HELD_RULES"]


# Each claim as a number or a range (low, high), to measure a value's distance from it. The clustering claims
# are the seed's within - across difference (0.503 - 0.137); "at most 4.9% flipped" is the range 0-0.049.
SEED_RANGES: dict[str, tuple[float, float]] = {
    "form_jaccard": (0.13, 0.18),
    "syntactic_activation_share": (0.96, 0.96),
    "topic_clustering_sae": (0.366, 0.366),
    "topic_clustering_residual": (0.366, 0.366),
    "activation_logprob_rho_math": (0.35, 0.47),
    "max_flip_rate_math": (0.0, 0.049),
    "selectivity_vs_effect_rho": (-0.546, -0.546),
}

SEED_MODELS = "GPT-2 Small and Gemma 2 9B"
# Signal-to-noise of specialist ablations (mean |delta| of specialists / of random features), as the seed reported.
SEED_SNR: dict[str, float] = {"GPT-2 Small": 2.6, "Gemma 2 9B": 140.6}
SEED_WITHIN, SEED_ACROSS = 0.503, 0.137
SIGNIFICANCE = 0.05


def from_seed(measure: str, value: float) -> float:
    """How far ``value`` lies from the seed's number or range (0 inside it; signed: above is positive); NaN if none."""
    found = SEED_RANGES.get(measure)
    if found is None or math.isnan(value):
        return math.nan
    low, high = found
    if value < low:
        return value - low
    return value - high if value > high else 0.0
