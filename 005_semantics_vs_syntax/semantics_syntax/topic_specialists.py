"""H1: specialists per topic/form against topic-excluded contrast sets; their overlap across forms; where they fire.

A group is one (topic, form). Its specialists are the ``PER_GROUP`` features with the
highest selectivity score (``layers_core.sae.selectivity.scores``, per-text mean
activation) for the group's texts against the texts of *other topics only*: the
topic's other forms are left out of the contrast, so a feature that fires on the topic
in every form is not penalised, and identification is not biased toward form.
Candidates must fire on at least ``MIN_PRESENCE`` of the group's texts and score above 0.

- ``form_overlaps``: for each topic, the Jaccard overlap of the specialist sets of each
  pair of its forms (high: the same features whatever the form, i.e. topic);
  ``same_form_overlaps``: the same between groups that share a form name across topics
  (e.g. arithmetic/symbols and chemistry_units/symbols; high: form).
- ``activation_mass``: for each specialist on its group's texts, the share of its
  activation (sum over tokens) on each token class, next to the share of the tokens
  themselves, so a feature on digits in a text of digits is told from one that prefers them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import torch
from torch import Tensor

from layers_core.sae.selectivity import scores
from layers_core.sae.text_features import TextFeatures
from semantics_syntax.datasets import PairText, groups
from semantics_syntax.token_classes import CLASSES, SYNTACTIC

PER_GROUP = 5
MIN_PRESENCE = 0.5


@dataclass(frozen=True)
class GroupSpecialists:
    """One group's specialists, best first."""

    topic: str
    form: str
    features: tuple[int, ...]
    scores: tuple[float, ...]

    @property
    def group(self) -> str:
        """``topic/form``."""
        return f"{self.topic}/{self.form}"


@dataclass(frozen=True)
class Overlap:
    """The Jaccard overlap of two groups' specialist sets."""

    first: str
    second: str
    jaccard: float


def group_specialists(texts: Sequence[PairText], values: Tensor, per_group: int = PER_GROUP) -> list[GroupSpecialists]:
    """Each group's specialists (module doc), from per-text values ``[n_texts, d_sae]``."""
    found = []
    for group in groups(texts):
        topic, form = group.split("/", 1)
        inside = torch.tensor([t.group == group for t in texts])
        rows = inside | torch.tensor([t.topic != topic for t in texts])
        presence = (values[inside] > 0).double().mean(0)
        score = scores(values[rows], inside[rows])
        score = torch.where((presence >= MIN_PRESENCE) & (score > 0), score, torch.full_like(score, float("-inf")))
        order = sorted(range(score.numel()), key=lambda f: (-float(score[f]), f))[:per_group]
        chosen = [f for f in order if torch.isfinite(score[f])]
        found.append(GroupSpecialists(topic, form, tuple(chosen), tuple(float(score[f]) for f in chosen)))
    return found


def jaccard(first: Sequence[int], second: Sequence[int]) -> float:
    """|A & B| / |A | B| (NaN when both are empty)."""
    a, b = set(first), set(second)
    return len(a & b) / len(a | b) if a | b else float("nan")


def form_overlaps(found: Sequence[GroupSpecialists]) -> list[Overlap]:
    """Every pair of forms of one topic."""
    return [Overlap(a.group, b.group, jaccard(a.features, b.features))
            for a, b in combinations(found, 2) if a.topic == b.topic]


def same_form_overlaps(found: Sequence[GroupSpecialists]) -> list[Overlap]:
    """Every pair of groups of different topics that share a form name."""
    return [Overlap(a.group, b.group, jaccard(a.features, b.features))
            for a, b in combinations(found, 2) if a.topic != b.topic and a.form == b.form]


@dataclass(frozen=True)
class ActivationMass:
    """Where one specialist's activation falls on its group's texts, by token class."""

    group: str
    feature: int
    mass: dict[str, float]  # class -> share of the activation (sums to 1; zeros when it never fires)
    tokens: dict[str, float]  # class -> share of the group's counted tokens

    @property
    def syntactic(self) -> float:
        """Share of its activation on syntactic classes (``token_classes.SYNTACTIC``)."""
        return sum(self.mass[c] for c in SYNTACTIC)

    @property
    def syntactic_tokens(self) -> float:
        """Share of the group's tokens in syntactic classes."""
        return sum(self.tokens[c] for c in SYNTACTIC)


def activation_mass(
    found: Sequence[GroupSpecialists], texts: Sequence[PairText], features: Sequence[TextFeatures],
    classes: Sequence[Sequence[str]],
) -> list[ActivationMass]:
    """Each specialist's activation share per token class on its own group's texts.

    Args:
        found: The groups' specialists.
        texts: The texts, in the order of ``features`` and ``classes``.
        features: Each text's ``TextFeatures`` under this SAE.
        classes: Each text's counted tokens' classes (``token_classes``).
    """
    result = []
    for specialists in found:
        members = [i for i, t in enumerate(texts) if t.group == specialists.group]
        token_counts = dict.fromkeys(CLASSES, 0.0)
        for i in members:
            for c in classes[i]:
                token_counts[c] += 1
        total_tokens = sum(token_counts.values()) or 1.0
        for feature in specialists.features:
            mass = dict.fromkeys(CLASSES, 0.0)
            for i in members:
                for value, c in zip(features[i].values_of(feature).tolist(), classes[i], strict=True):
                    mass[c] += value
            total = sum(mass.values())
            result.append(ActivationMass(specialists.group, feature,
                                         {c: (m / total if total > 0 else 0.0) for c, m in mass.items()},
                                         {c: n / total_tokens for c, n in token_counts.items()}))
    return result
