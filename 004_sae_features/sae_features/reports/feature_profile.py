"""A discovered feature's category profile, read from the features CSV (one row per SAE, category and feature).

Per feature: the category where its mean activation (the mean over that category's
texts of the per-text mean) is largest, that mean's share of the feature's summed
category means (the quantity the ``selective`` criterion ranks), the runner-up category
with its share, the share of the top category's texts it fires on, and its largest
activation on any token of any text.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class FeatureProfile:
    """One feature's category profile at one SAE (module doc)."""

    feature: int
    top_category: str
    top_mean: float
    top_share: float | None
    top_text_frequency: float
    runner_up: str | None
    runner_up_share: float | None
    max_activation: float


def feature_profile(rows: pd.DataFrame, feature: int) -> FeatureProfile | None:
    """The profile of ``feature`` from one SAE's features-CSV rows (categories in file order); None without rows."""
    mine = rows[rows["feature"] == feature]
    if mine.empty:
        return None
    means = [float(x) for x in mine["mean_activation"]]
    order = sorted(range(len(means)), key=lambda i: (-means[i], i))
    total = sum(means)
    top, second = order[0], (order[1] if len(order) > 1 else None)
    return FeatureProfile(
        feature=feature, top_category=str(mine["category"].iloc[top]), top_mean=means[top],
        top_share=means[top] / total if total > 0 else None,
        top_text_frequency=float(mine["text_frequency"].iloc[top]),
        runner_up=None if second is None else str(mine["category"].iloc[second]),
        runner_up_share=None if second is None or total <= 0 else means[second] / total,
        max_activation=float(mine["max_activation"].max()),
    )
