"""Across the battery: per layer, the median restoration at the subject's last token vs the answer position.

Only pairs whose clean and corrupted logit differences are at least
``MIN_GAP_LOGITS`` apart enter the medians: below that a restoration of 1 moves the
logit difference by less than half a logit, and the rounding of the logits is a
visible share of it. Swap pairs and noise pairs are summarised apart (two
corruptions, two questions). The handover layer is ``HANDOVER_RULE``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from activation_patching.metric import DIRECTIONS
from layers_core import metrics

MIN_GAP_LOGITS = 0.5
HANDOVER_RULE = (
    "the first residual layer from which on, at every later layer too, the battery's median restoration at the "
    "answer position is past the median at the subject's last token: denoising, larger; noising, smaller (patching "
    "the answer position does more damage). 'From which on' keeps an early crossing of two near-zero medians from "
    "counting"
)


def resolvable(clean_diff: float, corrupt_diff: float) -> bool:
    """True when the pair's two logit differences are at least ``MIN_GAP_LOGITS`` apart."""
    return abs(clean_diff - corrupt_diff) >= MIN_GAP_LOGITS


def layer_medians(rows: Sequence[dict[str, Any]], n_layers: int) -> list[dict[str, Any]]:
    """Per residual layer 0..L: the median restoration at the subject and at the answer, each direction."""
    medians = []
    for layer in range(n_layers + 1):
        entry: dict[str, Any] = {"layer": layer, "rel_depth": metrics.rel_depth(layer, n_layers)}
        for direction in DIRECTIONS:
            at = [row for row in rows if row["layer"] == layer and row["direction"] == direction]
            for site in ("subject", "answer"):
                values = [row[f"restoration_{site}"] for row in at]
                entry[f"{direction}_{site}"] = float(np.median(values)) if values else None
        medians.append(entry)
    return medians


def handover(medians: Sequence[dict[str, Any]], direction: str) -> dict[str, Any] | None:
    """``{"layer", "rel_depth"}`` of the handover (``HANDOVER_RULE``) in ``direction``; None when there is none."""
    found = None
    for entry in reversed(medians):
        subject, answer = entry[f"{direction}_subject"], entry[f"{direction}_answer"]
        if subject is None or answer is None or not (answer > subject if direction == "denoise" else answer < subject):
            break
        found = {"layer": entry["layer"], "rel_depth": entry["rel_depth"]}
    return found


def battery_summary(rows: Sequence[dict[str, Any]], usable: set[str], n_layers: int) -> list[dict[str, Any]]:
    """One summary per corruption present among the ``usable`` pairs: counts, medians, handover per direction."""
    summaries = []
    for corruption in ("swap", "noise"):
        kept = [row for row in rows if row["corruption"] == corruption and row["pair_id"] in usable]
        if not kept:
            continue
        medians = layer_medians(kept, n_layers)
        summaries.append({
            "corruption": corruption, "n_pairs": len({row["pair_id"] for row in kept}),
            "handover": {direction: handover(medians, direction) for direction in DIRECTIONS},
            "medians": medians,
        })
    return summaries
