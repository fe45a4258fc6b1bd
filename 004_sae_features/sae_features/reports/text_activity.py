"""Per category, how many features the texts use under one SAE, from the text-activity CSV (one row per text).

- active per token: the category's counted tokens' mean number of active features,
  token-weighted (sum over texts of ``l0 x tokens``, over the tokens), as the
  JSON's ``activity.active_per_token`` is over every text;
- features active per text: the mean over the category's texts of ``features_active``
  (features firing on at least one token of the text);
- the most common top feature: the feature with the largest mean activation on the
  most texts of the category (``top_feature``), and on how many (ties: the lower id).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class CategoryActivity:
    """One category's use of one SAE's features (module doc)."""

    category: str
    texts: int
    tokens: int
    active_per_token: float | None
    features_active_per_text: float | None
    top_feature: int | None
    top_feature_texts: int


def category_activity(rows: pd.DataFrame, category: str) -> CategoryActivity:
    """The summary of one category from one SAE's text-activity rows."""
    mine = rows[rows["category"] == category]
    tokens = int(mine["tokens"].sum())
    weighted = float((mine["l0"] * mine["tokens"]).sum())
    tops = mine["top_feature"].dropna().astype(int)
    counts = tops.value_counts()
    top = min(counts.index[counts == counts.max()]) if not counts.empty else None
    return CategoryActivity(
        category=category, texts=len(mine), tokens=tokens, active_per_token=weighted / tokens if tokens else None,
        features_active_per_text=float(mine["features_active"].mean()) if len(mine) else None,
        top_feature=None if top is None else int(top), top_feature_texts=int(counts.max()) if top is not None else 0,
    )
