"""Markdown of SAE quality: the warning at the top of a report built on a weak SAE, and the quality table."""

from __future__ import annotations

from typing import Any

from layers_core.reports.formats import fmt_at, fmt_text
from layers_core.reports.markdown import md_table
from sae_features.reports.md_common import fmt_count, fmt_pct, fmt_score
from sae_features.reports.quality_verdict import EXPLAINED_VARIANCE, LOSS_RECOVERED, SaeVerdict, sae_verdicts
from sae_features.reports.run_artefacts import SaeModel
from sae_features.reports.run_rules import fmt_share


def measures_text(model: SaeModel) -> str:
    """What the quality table measures; the dense share is the run's ``rules.dense_threshold``."""
    return ("Every measure is on held-out windows of the corpus the SAEs were not trained on, over positions 1..T-1 "
            "(position 0, the attention sink, is left out). L0: mean active features per token. Explained "
            "variance: 1 - (squared reconstruction error) / (variance of the residual). CE: the model's next-token "
            "cross-entropy in nats, clean, with the residual replaced by the SAE's reconstruction, and with it "
            "replaced by zeros; loss recovered = (CE zero - CE SAE) / (CE zero - CE clean), 1 = the SAE loses "
            "nothing. Dead: features that never fire on these tokens; dense: features firing on more than "
            f"{fmt_share(model.rules.dense_threshold)} of them.")


def thresholds_text(model: SaeModel) -> str:
    """The run's thresholds as a phrase: ``explained variance >= 0.8 and loss recovered >= 0.9``."""
    found = model.thresholds
    return (f"explained variance >= {found.get(EXPLAINED_VARIANCE, float('nan')):g} and loss recovered >= "
            f"{found.get(LOSS_RECOVERED, float('nan')):g}")


def _weak_item(verdict: SaeVerdict) -> str:
    return f"residual {fmt_at(verdict.layer, verdict.rel_depth)} ({'; '.join(verdict.problems)})"


def warning_block(model: SaeModel) -> str | None:
    """The loud warning for the top of the report when an SAE is weak; None when every SAE meets the thresholds."""
    verdicts = sae_verdicts(model)
    weak = [v for v in verdicts if not v.ok]
    if not weak:
        return None
    return (f"> **WARNING: {len(weak)} of {len(verdicts)} SAEs are below the quality thresholds** "
            f"({thresholds_text(model)}, on held-out text): {', '.join(_weak_item(v) for v in weak)}. Features, "
            "specialists and counts read through a weak SAE describe that SAE's approximation, not the model: "
            "read them with care, and do not compare them across depth or with other runs as if they were "
            "findings.")


def _quality_row(entry: dict[str, Any], verdict: SaeVerdict) -> list[str]:
    q = dict(entry.get("quality") or {})
    return [fmt_at(entry.get("layer"), entry.get("rel_depth")), fmt_text(str(entry.get("sae"))),
            fmt_count(q.get("d_sae")), fmt_count(q.get("tokens")), fmt_score(q.get("l0")),
            fmt_score(q.get(EXPLAINED_VARIANCE)), fmt_score(q.get("ce_clean")), fmt_score(q.get("ce_sae")),
            fmt_score(q.get("ce_zero")), fmt_score(q.get(LOSS_RECOVERED)), fmt_pct(q.get("dead_frac")),
            fmt_pct(q.get("dense_frac")), "yes" if verdict.ok else "**NO**"]


def quality_table(model: SaeModel) -> str:
    """One row per SAE: its quality as stored in the JSON, and whether it meets the thresholds."""
    rows = [_quality_row(e, v) for e, v in zip(model.saes, sae_verdicts(model), strict=True)]
    header = ["Layer", "SAE", "Features", "Tokens", "L0", "Explained variance", "CE clean", "CE SAE", "CE zero",
              "Loss recovered", "Dead", "Dense", "Meets thresholds"]
    return md_table(header, rows)


def quality_section(model: SaeModel) -> str:
    """The quality section: what is measured, the verdict, the table."""
    weak = [v for v in sae_verdicts(model) if not v.ok]
    verdict = (f"Every SAE meets the thresholds ({thresholds_text(model)})." if not weak else
               f"{len(weak)} of {len(model.saes)} SAEs do not meet the thresholds ({thresholds_text(model)}, and a "
               "loss recovered that is defined): " + "; ".join(_weak_item(v) for v in weak) + ".")
    return "\n\n".join(["## SAE quality", measures_text(model), verdict, quality_table(model)])
