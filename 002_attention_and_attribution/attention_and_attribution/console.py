"""The short summary printed at the end of a run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from attention_and_attribution.artefact_schema import head_label
from layers_core.runs.model_loop import ModelOutcome


def _heads(entries: Sequence[dict], key: str, limit: int = 3) -> str:
    return ", ".join(f"{head_label(e['layer'], e['head'])} ({e[key]:+.2f})" for e in entries[:limit]) or "none"


def summary_lines(outcomes: Sequence[ModelOutcome], run_dir: Path) -> list[str]:
    """One paragraph per model: the main prompt's logit difference and top heads, the heads that hold."""
    lines = []
    for outcome in outcomes:
        if outcome.status != "ok":
            lines.append(f"{outcome.name}: {outcome.status}: {outcome.reason}")
            continue
        s = outcome.summary
        top = _heads(s["top_heads"], "dla_logit_diff")
        held = _heads(s["retrieval_heads"], "median_dla_logit_diff", 5)
        lines.append(
            f"{outcome.name}: '{s['main_prompt_id']}' logit difference answer - foil {s['model_logit_diff']:+.2f}; "
            f"top heads {top}; the parts add up to {s['max_sum_rel_error']:.1e} relative"
        )
        lines.append(f"  heads that hold across the prompts: {held}")
    lines.append(f"results: {run_dir}")
    return lines
