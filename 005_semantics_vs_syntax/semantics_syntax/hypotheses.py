"""The hypotheses table: each seed claim next to what this run measured, with its statistics and whether it held.

One row per measure and SAE (or one per model for the measures across SAEs). ``p_holm``
adjusts the p-values of one family for the number of its tests: the similarity
permutation tests, the activation-log-probability correlations, and the specialist
ablations each form one family per model. ``held`` is ``yes``/``no`` where the seed made
a claim this measure can test, by the rule in ``SEED_CLAIMS`` (stated in the
evaluation), and empty elsewhere.

Seed claims (GPT-2 Small and Gemma 2 9B, the user's notebooks):

- H1 ``form_jaccard``: specialists of one topic in different forms overlap 0.13-0.18
  (Jaccard); held when the mean overlap lies in that range (its interval, over a topic's
  few form pairs, is wide and is reported beside it).
- H1 ``syntactic_activation_share``: 96% of specialist activation falls on syntactic
  tokens; held when the mean share is at least 0.9.
- H2 ``topic_clustering_*``: within-topic similarity 0.503 vs cross-topic 0.137; held
  when the effect is positive with p_holm < 0.05.
- H3 ``activation_logprob_rho_math``: cloze correlations 0.35-0.47, all significant;
  held when rho > 0 with p_holm < 0.05. ``activation_logprob_partial_rho_*`` is the same
  with the answer's token count regressed out (``behaviour``), the one to trust.
- ablation ``max_flip_rate_math``: at most 4.9% of predictions flipped; held when the
  largest specialist flip rate is at most 0.049.
- ablation ``selectivity_vs_effect_rho``: selectivity negatively related to causal
  effect (rho = -0.546); held when rho < 0 with p < 0.05.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from layers_core.stats.tests_of_claims import Estimate, bootstrap_interval, holm, mean_interval, spearman
from semantics_syntax.claims import SEED_CLAIMS

FAMILIES = {"similarity": ("topic_clustering_sae", "topic_clustering_residual", "form_clustering_sae",
                           "form_clustering_residual"),
            "behaviour": ("activation_logprob_rho_math", "activation_logprob_rho_nonmath",
                          "activation_logprob_partial_rho_math", "activation_logprob_partial_rho_nonmath")}
BOOTSTRAP = 2000


@dataclass(frozen=True)
class Row:
    """One measure."""

    hypothesis: str
    measure: str
    sae: str
    layer: int | None
    value: float
    ci_low: float = math.nan
    ci_high: float = math.nan
    p_value: float = math.nan
    n: int = 0

    @classmethod
    def of(cls, hypothesis: str, measure: str, sae: str, layer: int | None, estimate: Estimate) -> Row:
        """A row from an ``Estimate``."""
        return cls(hypothesis, measure, sae, layer, estimate.value, estimate.ci_low, estimate.ci_high,
                   estimate.p_value, estimate.n)


def mean_with_bootstrap(values: Sequence[float], seed: int) -> Estimate:
    """The mean of ``values`` with a seeded percentile bootstrap interval (no p-value)."""
    a = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    if a.size == 0:
        return Estimate(math.nan, math.nan, math.nan, math.nan, 0)
    low, high = bootstrap_interval(lambda rows: float(a[rows].mean()), a.size, BOOTSTRAP, seed)
    return Estimate(float(a.mean()), low, high, math.nan, int(a.size))


def _held(row: Row, p_holm: float) -> str:
    measure = row.measure
    if measure not in SEED_CLAIMS or math.isnan(row.value):
        return ""
    if measure == "form_jaccard":
        verdict = 0.13 <= row.value <= 0.18
    elif measure == "syntactic_activation_share":
        verdict = row.value >= 0.9
    elif measure.startswith("topic_clustering"):
        verdict = row.value > 0 and p_holm < 0.05
    elif measure == "activation_logprob_rho_math":
        verdict = row.value > 0 and p_holm < 0.05
    elif measure == "max_flip_rate_math":
        verdict = row.value <= 0.049
    else:  # selectivity_vs_effect_rho
        verdict = row.value < 0 and row.p_value < 0.05
    return "yes" if verdict else "no"


def table(rows: Sequence[Row], rel_depths: dict[int, float]) -> list[dict[str, Any]]:
    """The CSV rows: Holm within each family, the seed claim and whether it held."""
    adjusted = [math.nan] * len(rows)
    for measures in FAMILIES.values():
        members = [i for i, r in enumerate(rows) if r.measure in measures]
        for i, p in zip(members, holm([rows[i].p_value for i in members]), strict=True):
            adjusted[i] = p
    ablations = [i for i, r in enumerate(rows) if r.measure.startswith("ablation_")]
    for i, p in zip(ablations, holm([rows[i].p_value for i in ablations]), strict=True):
        adjusted[i] = p
    return [{"hypothesis": r.hypothesis, "measure": r.measure, "sae": r.sae, "layer": r.layer,
             "rel_depth": rel_depths.get(r.layer) if r.layer is not None else None,
             "value": r.value, "ci_low": r.ci_low, "ci_high": r.ci_high, "p_value": r.p_value, "p_holm": p,
             "n": r.n, "seed_claim": SEED_CLAIMS.get(r.measure, ""), "held": _held(r, p)}
            for r, p in zip(rows, adjusted, strict=True)]


def selectivity_vs_effect(scores: Sequence[float], effects: Sequence[float]) -> Estimate:
    """Spearman's rho between specialists' selectivity and the size of their ablation effect."""
    return spearman(scores, [abs(e) for e in effects])


def t_mean(values: Sequence[float], p_value: bool = True) -> Estimate:
    """``mean_interval`` of the finite values; without its p-value (of a zero mean) where that tests nothing."""
    found = mean_interval([v for v in values if not math.isnan(v)])
    return found if p_value else Estimate(found.value, found.ci_low, found.ci_high, math.nan, found.n)
