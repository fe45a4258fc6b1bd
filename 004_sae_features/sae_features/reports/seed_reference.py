"""What the seed prototype reported, as the reports quote it, and where a run's SAEs sit against it.

The seed (the prototype this project grew from) ran GPT-2 small (12 layers) with
24,576-feature residual SAEs and 7 categories of 10 texts, by its own specialist
criterion. It reported "87.35% sparsity, 3,108 of 24,576 features active", 5 of 7
categories with a specialist at layer 6 and 7 of 7 at layers 10 and 11. Another model,
other SAEs, other texts and another rule: the reports set a run beside these numbers
and state the direction of the comparison, never a match.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from layers_core.reports.formats import json_number

SEED_MODEL = "GPT-2 small"
SEED_LAYERS = 12
SEED_D_SAE = 24_576
SEED_ACTIVE = 3_108
SEED_SPARSITY = 0.8735
SEED_CATEGORIES = 7
# (residual layer, categories with a specialist) as the seed reported them.
SEED_DEPTH: tuple[tuple[int, int], ...] = ((6, 5), (10, 7), (11, 7))
MID_DEPTH = 0.5


@dataclass(frozen=True)
class DepthPoint:
    """One SAE's count of categories with a specialist that holds."""

    layer: int
    rel_depth: float
    holding: int
    categories: int


def depth_points(depth: list[dict[str, Any]]) -> list[DepthPoint]:
    """The JSON's ``depth`` entries with numbers, in the run's order."""
    points = []
    for entry in depth:
        layer, rel, holding, total = (json_number(entry.get(k)) for k in
                                      ("layer", "rel_depth", "categories_with_specialist", "categories"))
        if layer is not None and rel is not None and holding is not None and total is not None:
            points.append(DepthPoint(int(layer), rel, int(holding), int(total)))
    return points


def nearest_to_mid(points: list[DepthPoint]) -> DepthPoint | None:
    """The SAE nearest relative depth 0.5 (the shallower one on a tie), or None."""
    return min(points, key=lambda p: (abs(p.rel_depth - MID_DEPTH), p.rel_depth)) if points else None


def deepest(points: list[DepthPoint]) -> DepthPoint | None:
    """The deepest SAE, or None."""
    return max(points, key=lambda p: p.rel_depth) if points else None


def trend_word(mid: DepthPoint, deep: DepthPoint) -> str:
    """How the deepest SAE's share of holding categories compares with the mid-depth one's: more, fewer, the same."""
    mid_share, deep_share = mid.holding / max(1, mid.categories), deep.holding / max(1, deep.categories)
    if deep_share > mid_share:
        return "more"
    return "fewer" if deep_share < mid_share else "the same share of"
