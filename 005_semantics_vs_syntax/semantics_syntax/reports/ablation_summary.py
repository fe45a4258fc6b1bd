"""The ablation CSV summarised per SAE, kind of feature and domain of items, for the markdown and the plot.

Kinds (``ablation_matrix``): ``specialist`` (the math topic's specialists), ``random``
(features matched to them by firing frequency, no group's specialist) and
``cross_domain`` (the control topic's specialists). Per SAE, kind and domain: how many
features, the mean over them of each feature's mean change in the answer's
log-probability (nats; negative: the ablation hurts), the mean of its size, and the mean
and largest flip rate (share of items whose greedy answer changes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

KINDS = ("specialist", "random", "cross_domain")  # ablation_matrix.KINDS (that module imports torch)
DOMAINS = ("math", "nonmath")  # datasets.DOMAINS


@dataclass(frozen=True)
class KindEffect:
    """One kind of feature's ablations at one SAE on one domain's items."""

    layer: int
    kind: str
    domain: str
    features: int
    mean_delta: float
    mean_size: float  # mean |delta|
    mean_flip: float
    max_flip: float
    items: int


def kinds_of(table: pd.DataFrame) -> list[str]:
    """The kinds in the CSV: ``KINDS`` order, then any other in file order."""
    found = list(dict.fromkeys(str(k) for k in table["kind"]))
    return [k for k in KINDS if k in found] + [k for k in found if k not in KINDS]


def kind_effect(table: pd.DataFrame, layer: int, kind: str, domain: str) -> KindEffect:
    """The summary of one cell (NaN when the run ablated no feature of that kind)."""
    rows = table[(table["layer"] == layer) & (table["kind"] == kind) & (table["domain"] == domain)]
    deltas = [float(v) for v in rows["mean_delta_logprob"] if not math.isnan(float(v))]
    flips = [float(v) for v in rows["flip_rate"] if not math.isnan(float(v))]
    items = int(rows["items"].max()) if len(rows) else 0

    def mean(values: list[float]) -> float:
        return sum(values) / len(values) if values else math.nan

    return KindEffect(layer, kind, domain, len(rows), mean(deltas), mean([abs(d) for d in deltas]), mean(flips),
                      max(flips) if flips else math.nan, items)


def effects(table: pd.DataFrame, layers: list[int]) -> list[KindEffect]:
    """Every (layer, kind, domain) cell, layers in the order given, then kinds, then domains."""
    return [kind_effect(table, layer, kind, domain) for layer in layers for kind in kinds_of(table)
            for domain in DOMAINS]
