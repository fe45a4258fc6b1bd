"""The ablation check read from the JSON: top-k heads against random heads from the same layers, per k.

DLA ranks heads by what they write directly; mean-ablating them (their output at the
answer position replaced by its mean over the prompts) asks whether the model needs
them. The ranking is supported at k when ablating the top k drops the logit
difference more than every random draw of k heads from the same layers.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from layers_core.reports.formats import json_number

SUPPORTS, WITHIN_RANGE, AGAINST = "supports", "within the random range", "does NOT support"


@dataclass(frozen=True)
class KComparison:
    """One k: the top-k ablation beside the random draws."""

    k: int
    top_heads: str
    top_drop: float | None
    top_flipped: float | None
    random_drops: list[float]
    random_flipped: list[float]

    @property
    def random_mean(self) -> float | None:
        """Mean drop over the random draws."""
        return statistics.fmean(self.random_drops) if self.random_drops else None

    @property
    def random_flipped_mean(self) -> float | None:
        """Mean share flipped over the random draws."""
        return statistics.fmean(self.random_flipped) if self.random_flipped else None

    @property
    def verdict(self) -> str | None:
        """``supports`` (above every draw), ``within the random range``, ``does NOT support``; None without data."""
        if self.top_drop is None or not self.random_drops:
            return None
        if self.top_drop > max(self.random_drops):
            return SUPPORTS
        return WITHIN_RANGE if self.top_drop > statistics.fmean(self.random_drops) else AGAINST


def comparisons(ablation: dict[str, Any] | None) -> list[KComparison]:
    """One comparison per k of the JSON's ablation summary, in the order of ``ks``."""
    rows = list((ablation or {}).get("summary") or [])
    ks = list((ablation or {}).get("ks") or sorted({int(r["k"]) for r in rows}))
    out = []
    for k in ks:
        top: dict[str, Any] = next((r for r in rows if r.get("k") == k and r.get("selection") == "top"), {})
        randoms = [r for r in rows if r.get("k") == k and r.get("selection") == "random"]
        out.append(KComparison(
            k=int(k), top_heads=str(top.get("heads") or ""), top_drop=json_number(top.get("mean_logit_diff_drop")),
            top_flipped=json_number(top.get("share_top1_flipped")),
            random_drops=[d for r in randoms if (d := json_number(r.get("mean_logit_diff_drop"))) is not None],
            random_flipped=[f for r in randoms if (f := json_number(r.get("share_top1_flipped"))) is not None]))
    return out


def overall(found: list[KComparison]) -> str | None:
    """``supports`` when every k does, ``does NOT support`` when none does, else ``partly``; None without data."""
    verdicts = [c.verdict for c in found if c.verdict is not None]
    if not verdicts:
        return None
    if all(v == SUPPORTS for v in verdicts):
        return SUPPORTS
    return AGAINST if all(v != SUPPORTS for v in verdicts) else "partly supports"
