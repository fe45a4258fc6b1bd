"""Where along depth the battery puts the fact: on the subject's last token, then at the answer position.

Read from the headline battery summary's per-layer medians (JSON ``battery.summaries[0]``):

- on the subject: the LAST residual layer at which denoising the subject's last token
  alone restores at least ``HALF`` (median over the resolvable pairs);
- at the answer position: the FIRST residual layer at which denoising the answer
  position alone restores at least ``HALF``;
- the handover layer as the run computed it (``battery.handover_rule``).

``HALF`` (0.5) is a threshold of this report, not of the run: "at least half the
clean answer's logit difference comes back". Depths are residual depths l / L, the
numbering of 001's lens and of ``resid_pre``; a block l's output (002's DLA) enters
residual l + 1, depth (l + 1) / L, so the depths compare directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from layers_core.reports.formats import json_number

HALF = 0.5
SAME_DEPTH = 1e-6  # the artefacts round relative depths to 6 decimals (metrics.rel_depth)


@dataclass(frozen=True)
class Milestone:
    """A residual layer, its relative depth and the median restoration there."""

    layer: int
    rel_depth: float
    value: float


def _milestone(entry: dict[str, Any], key: str) -> Milestone:
    return Milestone(int(entry["layer"]), float(entry["rel_depth"]), float(entry[key]))


def last_subject_layer(medians: list[dict[str, Any]], direction: str = "denoise") -> Milestone | None:
    """The last layer where the subject's median restoration is at least ``HALF``; None if none is."""
    key = f"{direction}_subject"
    found = [e for e in medians if (v := json_number(e.get(key))) is not None and v >= HALF]
    return _milestone(found[-1], key) if found else None


def first_answer_layer(medians: list[dict[str, Any]], direction: str = "denoise") -> Milestone | None:
    """The first layer where the answer position's median restoration is at least ``HALF``; None if none is."""
    key = f"{direction}_answer"
    found = [e for e in medians if (v := json_number(e.get(key))) is not None and v >= HALF]
    return _milestone(found[0], key) if found else None


def order_word(depth: float, other: float) -> str:
    """``earlier than``, ``later than`` or ``at the same depth as``: ``depth`` against ``other``."""
    if abs(depth - other) <= SAME_DEPTH:
        return "at the same depth as"
    return "earlier than" if depth < other else "later than"


def medians_at(medians: list[dict[str, Any]], layer: int) -> dict[str, Any] | None:
    """The medians' entry of one residual layer, or None."""
    return next((e for e in medians if e.get("layer") == layer), None)


def dla_depths(comparison: dict[str, Any], key: str) -> list[tuple[int, float | None]]:
    """The blocks of ``top_attn_layers`` or ``top_mlp_layers`` with their relative depths (from ``dla_layers``)."""
    depths = {e.get("layer"): json_number(e.get("rel_depth")) for e in comparison.get("dla_layers") or []}
    return [(int(layer), depths.get(layer)) for layer in comparison.get(key) or []]
