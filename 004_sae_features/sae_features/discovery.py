"""Feature discovery by the seed's four criteria, and the per-category statistics of the features found.

Over every text (both halves), from the per-text summaries of ``layers_core.sae.text_features``:

- ``strongest``: the largest activation on any counted token.
- ``frequent``: the fraction of all counted tokens the feature fires on.
- ``selective``: the share of the feature's strength (its per-category mean activations,
  summed) that falls in its top category; only features firing on at least
  ``MIN_TEXTS_SELECTIVE`` texts, ties broken by strength.
- ``category``: per category, the highest specialist scores (``specialists.scores``) on
  all texts, among features firing on at least half of the category's texts.

Each criterion keeps its top ``top`` features (per category for ``category``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from layers_core.sae.text_features import TextFeatures
from sae_features.specialists import MIN_PRESENCE, scores

MIN_TEXTS_SELECTIVE = 3
CRITERIA: tuple[str, ...] = ("strongest", "frequent", "selective", "category")


@dataclass(frozen=True)
class LayerTable:
    """Per-text and per-category arrays of one SAE's features."""

    values: Tensor  # [n_texts, d_sae] mean activation per text
    maxima: Tensor  # [n_texts, d_sae]
    fired: Tensor  # [n_texts, d_sae] tokens fired on
    tokens: Tensor  # [n_texts] counted tokens

    @classmethod
    def of(cls, features: Sequence[TextFeatures]) -> LayerTable:
        """Stack the texts' summaries."""
        return cls(torch.stack([f.mean for f in features]).double(), torch.stack([f.max for f in features]).double(),
                   torch.stack([f.fired for f in features]), torch.tensor([f.n_tokens for f in features]))

    def category_means(self, labels: Sequence[str], categories: Sequence[str]) -> Tensor:
        """``[n_categories, d_sae]`` mean over each category's texts of the per-text mean activation."""
        return torch.stack([self.values[_mask(labels, c)].mean(0) for c in categories])


def _mask(labels: Sequence[str], category: str) -> Tensor:
    return torch.tensor([label == category for label in labels])


def _top(values: Tensor, top: int, allowed: Tensor | None = None, tiebreak: Tensor | None = None) -> list[int]:
    """Indices of the ``top`` largest positive ``values`` (within ``allowed``), ties by ``tiebreak`` then index."""
    keys = values.clone()
    if allowed is not None:
        keys[~allowed] = float("-inf")
    order = sorted(range(keys.numel()), key=lambda i: (-float(keys[i]),
                                                       -float(tiebreak[i]) if tiebreak is not None else 0.0, i))
    return [i for i in order[:top] if torch.isfinite(keys[i]) and keys[i] > 0]


@dataclass(frozen=True)
class Discovery:
    """The features each criterion found, best first (``category``: per category)."""

    strongest: list[int]
    frequent: list[int]
    selective: list[int]
    category: dict[str, list[int]]

    def as_dict(self) -> dict[str, object]:
        """For the run's JSON."""
        return {"strongest": self.strongest, "frequent": self.frequent, "selective": self.selective,
                "category": self.category}


def discover(table: LayerTable, labels: Sequence[str], categories: Sequence[str], top: int = 10) -> Discovery:
    """The four criteria's features (module doc)."""
    strongest = table.maxima.max(0).values
    frequency = table.fired.sum(0).double() / max(1, int(table.tokens.sum()))
    means = table.category_means(labels, categories)
    share = means.max(0).values / means.sum(0).clamp_min(1e-12)
    fires_on = (table.fired > 0).sum(0)
    per_category: dict[str, list[int]] = {}
    for category in categories:
        inside = _mask(labels, category)
        presence = (table.values[inside] > 0).double().mean(0)
        per_category[category] = _top(scores(table.values, inside), top, presence >= MIN_PRESENCE)
    return Discovery(strongest=_top(strongest, top), frequent=_top(frequency, top),
                     selective=_top(share, top, fires_on >= MIN_TEXTS_SELECTIVE, tiebreak=means.max(0).values),
                     category=per_category)


def feature_rows(
    table: LayerTable, labels: Sequence[str], categories: Sequence[str], found: Discovery,
) -> list[dict[str, object]]:
    """One row per (category, feature) for every feature some criterion found, with the criteria named."""
    named: dict[int, list[str]] = {}
    for criterion, features in (("strongest", found.strongest), ("frequent", found.frequent),
                                ("selective", found.selective)):
        for feature in features:
            named.setdefault(feature, []).append(criterion)
    for category, features in found.category.items():
        for feature in features:
            named.setdefault(feature, []).append(f"category:{category}")
    rows = []
    for feature in sorted(named):
        for category in categories:
            inside = _mask(labels, category)
            tokens = int(table.tokens[inside].sum())
            rows.append({
                "category": category, "feature": feature,
                "mean_activation": float(table.values[inside, feature].mean()),
                "max_activation": float(table.maxima[inside, feature].max()),
                "token_frequency": int(table.fired[inside, feature].sum()) / max(1, tokens),
                "text_frequency": float((table.fired[inside, feature] > 0).double().mean()),
                "criteria": ";".join(named[feature]),
            })
    return rows
