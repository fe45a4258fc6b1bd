"""Which SAEs are too weak to read: below the run's quality thresholds, or with a loss recovered that means nothing.

An SAE is weak when its held-out explained variance is below the run's threshold
(``quality_thresholds.explained_variance``, 0.8), when its loss recovered is below
its threshold (``ce_loss_recovered``, 0.9), when either was not measured, or when the
loss recovered is undefined: ``(ce_zero - ce_sae) / (ce_zero - ce_clean)`` only
measures something when zeroing the residual raises the loss (``ce_zero > ce_clean``);
otherwise a bad SAE can score above 1 (a tiny random model does). The run's console
warning checks the two thresholds only; this module adds the undefined case.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from layers_core.reports.formats import fmt_logit, json_number
from sae_features.reports.run_artefacts import SaeModel

EXPLAINED_VARIANCE, LOSS_RECOVERED = "explained_variance", "ce_loss_recovered"
NAMES = {EXPLAINED_VARIANCE: "explained variance", LOSS_RECOVERED: "loss recovered"}


@dataclass(frozen=True)
class SaeVerdict:
    """One SAE's quality against the thresholds: what is wrong with it (nothing when it may be read)."""

    layer: int
    rel_depth: float | None
    sae: str
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when the SAE meets both thresholds with a meaningful loss recovered."""
        return not self.problems


def loss_recovered_defined(quality: dict[str, Any]) -> bool:
    """True when zeroing the residual raises the loss above the clean model's (``ce_zero > ce_clean``)."""
    ce_zero, ce_clean = json_number(quality.get("ce_zero")), json_number(quality.get("ce_clean"))
    return ce_zero is not None and ce_clean is not None and ce_zero > ce_clean


def quality_problems(quality: dict[str, Any], thresholds: dict[str, float]) -> tuple[str, ...]:
    """What keeps one SAE's quality (its JSON ``quality``) from the thresholds, one short phrase each."""
    problems = []
    for key in (EXPLAINED_VARIANCE, LOSS_RECOVERED):
        value, wanted = json_number(quality.get(key)), thresholds.get(key)
        if value is None:
            problems.append(f"{NAMES[key]} not measured")
        elif wanted is not None and value < wanted:
            problems.append(f"{NAMES[key]} {fmt_logit(value)} < {wanted:g}")
    if json_number(quality.get(LOSS_RECOVERED)) is not None and not loss_recovered_defined(quality):
        problems.append(f"loss recovered undefined: zeroing the residual does not raise the loss (CE zero "
                        f"{fmt_logit(json_number(quality.get('ce_zero')))} <= CE clean "
                        f"{fmt_logit(json_number(quality.get('ce_clean')))})")
    return tuple(problems)


def sae_verdicts(model: SaeModel) -> list[SaeVerdict]:
    """One verdict per SAE, in the run's order."""
    return [SaeVerdict(int(e["layer"]), json_number(e.get("rel_depth")), str(e.get("sae")),
                       quality_problems(dict(e.get("quality") or {}), model.thresholds)) for e in model.saes]


def weak_saes(model: SaeModel) -> list[SaeVerdict]:
    """The SAEs that are too weak to read."""
    return [v for v in sae_verdicts(model) if not v.ok]
