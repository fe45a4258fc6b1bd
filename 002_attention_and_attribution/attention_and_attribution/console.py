"""The short summary printed for each model at the end of a run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from layers_core.reports.formats import head_label


def _heads(entries: Sequence[dict], key: str, limit: int = 3) -> str:
    return ", ".join(f"{head_label(e['layer'], e['head'])} ({e[key]:+.2f})" for e in entries[:limit]) or "none"


def describe(name: str, s: dict[str, Any]) -> list[str]:
    """A model that ran: the main prompt's logit difference and top heads, and the heads that hold."""
    top = _heads(s["top_heads"], "dla_logit_diff")
    held = _heads(s["retrieval_heads"], "median_dla_logit_diff", 5)
    return [
        f"{name}: '{s['main_prompt_id']}' logit difference answer - foil {s['model_logit_diff']:+.2f}; "
        f"top heads {top}; the parts add up to {s['max_sum_rel_error']:.1e} relative",
        f"  heads that hold across the prompts: {held}",
    ]
