"""Causal ablation: one feature removed at its SAE's layer, the change in the cloze answers, against controls.

Per SAE, ``ABLATIONS`` features of each kind:

- ``specialist``: the best specialists of the math topic's groups (``topic_specialists``),
  distinct, by selectivity score;
- ``cross_domain``: the best specialists of a non-math control topic, the same way;
- ``random``: for each math specialist, a feature that is no group's specialist and fires
  on the matched-pairs tokens about as often (the nearest firing frequency; ties broken
  by a seeded shuffle), so a control removes about as much activation.

Each is removed alone, with the SAE's error term kept (``cloze_scoring.ablation_scores``),
on every cloze item; per domain (math, non-math): the mean change in the answer's
log-probability with its t interval and p-value, and the share of items whose greedy
answer flips.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from layers_core.models.architecture import ModelParts
from layers_core.stats.tests_of_claims import mean_interval
from semantics_syntax.cloze_scoring import EncodedItem, ItemScores, ablation_scores
from semantics_syntax.datasets import DOMAINS
from semantics_syntax.topic_specialists import GroupSpecialists

ABLATIONS = 5
KINDS = ("specialist", "random", "cross_domain")


@dataclass(frozen=True)
class Target:
    """One feature to remove."""

    feature: int
    kind: str
    score: float  # its selectivity score (NaN for a random control)
    frequency: float  # share of the matched-pairs tokens it fires on
    matched_to: int | None = None  # the specialist a random control stands in for


@dataclass(frozen=True)
class AblationResult:
    """One feature's ablation on one domain's items."""

    target: Target
    domain: str
    items: int
    mean_delta_logprob: float
    ci_low: float
    ci_high: float
    p_value: float
    flip_rate: float


def _best(found: Sequence[GroupSpecialists], topic: str, count: int, exclude: set[int]) -> list[tuple[int, float]]:
    ranked: dict[int, float] = {}
    for group in found:
        if group.topic == topic:
            for feature, score in zip(group.features, group.scores, strict=True):
                ranked[feature] = max(score, ranked.get(feature, -math.inf))
    order = sorted((f for f in ranked if f not in exclude), key=lambda f: (-ranked[f], f))
    return [(f, ranked[f]) for f in order[:count]]


def choose_targets(
    found: Sequence[GroupSpecialists], frequency: Tensor, math_topic: str, control_topic: str, *,
    count: int = ABLATIONS, seed: int = 0,
) -> list[Target]:
    """The specialist, cross-domain and frequency-matched random features to remove (module doc)."""
    specialists = _best(found, math_topic, count, set())
    cross = _best(found, control_topic, count, {f for f, _ in specialists})
    anyone = {f for group in found for f in group.features}
    order = torch.randperm(frequency.numel(), generator=torch.Generator().manual_seed(seed)).tolist()
    candidates = [f for f in order if f not in anyone and float(frequency[f]) > 0]
    targets = [Target(f, "specialist", s, float(frequency[f])) for f, s in specialists]
    for feature, _ in specialists:
        if not candidates:
            break
        pick = min(candidates, key=lambda f: abs(float(frequency[f]) - float(frequency[feature])))
        candidates.remove(pick)
        targets.append(Target(pick, "random", math.nan, float(frequency[pick]), matched_to=feature))
    targets += [Target(f, "cross_domain", s, float(frequency[f])) for f, s in cross]
    return targets


def ablate(
    model: nn.Module, parts: ModelParts, tokenizer: Any, sae: Any, encoded: Sequence[EncodedItem], clean: ItemScores,
    targets: Sequence[Target], *, batch_size: int = 16,
) -> list[AblationResult]:
    """Each target removed alone, scored against the clean run per domain (module doc)."""
    domains = [e.item.domain for e in encoded]
    results = []
    all_scores = ablation_scores(model, parts, tokenizer, encoded, sae, [[t.feature] for t in targets],
                                 batch_size=batch_size)
    for target, scored in zip(targets, all_scores, strict=True):
        delta = scored.logprob - clean.logprob
        for domain in DOMAINS:
            rows = [i for i, d in enumerate(domains) if d == domain]
            estimate = mean_interval(delta[rows].tolist())
            flips = sum(scored.greedy[i] != clean.greedy[i] for i in rows)
            results.append(AblationResult(target, domain, len(rows), estimate.value, estimate.ci_low,
                                          estimate.ci_high, estimate.p_value, flips / max(1, len(rows))))
    return results
