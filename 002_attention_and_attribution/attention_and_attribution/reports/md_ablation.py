"""Markdown of the ablation check: per k, the top-k heads' drop against random heads, and a verdict."""

from __future__ import annotations

from attention_and_attribution.reports.ablation_check import SUPPORTS, KComparison, comparisons, overall
from attention_and_attribution.reports.md_common import fmt_share
from attention_and_attribution.reports.run_artefacts import AttributionModel
from layers_core.reports.formats import MISSING, fmt_int, fmt_logit, fmt_text
from layers_core.reports.markdown import md_table


def fmt_range(values: list[float]) -> str:
    """``[min, max]`` of the random draws, or ``n/a``."""
    return f"[{fmt_logit(min(values))}, {fmt_logit(max(values))}]" if values else MISSING


def ablation_table(found: list[KComparison]) -> str:
    """One row per k: the top-k heads, their drop and share flipped, the random draws' mean and range."""
    rows = [[fmt_int(c.k), fmt_text(c.top_heads or MISSING), fmt_logit(c.top_drop), fmt_share(c.top_flipped),
             fmt_logit(c.random_mean), fmt_range(c.random_drops), fmt_share(c.random_flipped_mean),
             str(len(c.random_drops)), c.verdict or MISSING] for c in found]
    header = ["k", "Top-k heads", "Top-k drop", "Top-k share flipped", "Random drop (mean)", "Random drop range",
              "Random share flipped (mean)", "Random draws", "Ranking"]
    return md_table(header, rows)


def verdict_line(found: list[KComparison]) -> str:
    """One line the numbers support, naming the largest k compared."""
    verdict = overall(found)
    if verdict is None:
        return "No k has both a top-k and a random ablation: nothing to compare."
    last = [c for c in found if c.verdict is not None][-1]
    numbers = (f"at k = {last.k}, top-{last.k} ablation drops the logit difference by {fmt_logit(last.top_drop)} "
               f"vs {fmt_logit(last.random_mean)} (range {fmt_range(last.random_drops)}) for random heads from the "
               "same layers")
    if verdict == SUPPORTS:
        return f"**Verdict: the ablation supports the DLA ranking**: at every k the top heads drop more than every " \
               f"random draw; {numbers}."
    failing = ", ".join(str(c.k) for c in found if c.verdict is not None and c.verdict != SUPPORTS)
    return (f"**Verdict: the ablation {verdict} the DLA ranking**: at k = {failing} the top heads do not drop the "
            f"logit difference more than every random draw; {numbers}.")


def ablation_section(model: AttributionModel) -> str:
    """The ablation section: what was ablated, the table, the verdict; or why it was not run."""
    ablation = model.ablation
    if ablation is None:
        return "## Ablation\n\nNot run for this model: nothing here tests whether the DLA ranking matters causally."
    if ablation.get("skipped_reason"):
        return f"## Ablation\n\nSkipped: {fmt_text(ablation['skipped_reason'])}."
    found = comparisons(ablation)
    intro = (f"Heads mean-ablated at the {fmt_text(ablation.get('position', 'answer'))} position over the "
             f"{fmt_text(ablation.get('over', MISSING))} ({fmt_int(ablation.get('n_prompts'))} prompts; the mean: "
             f"{fmt_text(ablation.get('means_over', MISSING))}). Drop = clean minus ablated logit difference "
             "(positive: the heads helped the answer); share flipped = share whose top-1 changed. Random heads are "
             "drawn from the same layers as the top-k, one draw per seed.")
    return "\n\n".join(["## Ablation", intro, ablation_table(found), verdict_line(found)])
