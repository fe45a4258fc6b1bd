"""001's milestones in the reports: their readable names, and cells for prompts without an answer token."""

from __future__ import annotations

from typing import Any

from layers_core.reports.formats import MISSING, fmt_milestone

NOT_ALIGNED = "not aligned"
# Milestones that need no answer token; every other one is meaningless when alignment failed.
ANSWER_FREE_MILESTONES = frozenset({"first_kl_below_1_bit"})

MILESTONE_LABELS = {
    "first_rank_le_10": "answer in top 10",
    "first_rank_le_5": "answer in top 5",
    "first_rank1": "answer is top-1",
    "first_p_answer_gt_0_5": "p(answer) > 0.5",
    "first_kl_below_1_bit": "KL to final < 1 bit",
}


def milestone_label(key: str) -> str:
    """Readable name of a milestone key; unknown keys are shown as they are."""
    return MILESTONE_LABELS.get(key, key)


def fmt_milestone_of(key: str, entry: dict[str, Any] | None, aligned: bool) -> str:
    """A milestone cell, ``not aligned`` for an answer milestone of a prompt without an answer token."""
    if not aligned and key not in ANSWER_FREE_MILESTONES:
        return NOT_ALIGNED
    return fmt_milestone(entry)


def fmt_reached(stats: dict[str, Any], fallback_total: Any) -> str:
    """``n_reached of n`` for a milestone distribution over facts (n falls back to the aligned count)."""
    return f"{stats.get('n_reached', MISSING)} of {stats.get('n', fallback_total)}"
