"""Markdown of the exactness check: each fully swept pair's unpatched runs must score exactly 0 and 1."""

from __future__ import annotations

from activation_patching.reports.exactness import TOLERANCE, exactness_passed, unpatched_checks
from activation_patching.reports.run_artefacts import PatchingModel
from layers_core.reports.formats import fmt_exact, fmt_token
from layers_core.reports.markdown import md_table

INTRO = ("Each fully swept pair's base runs, with nothing patched, scored by the same code path as every patched "
         "run: denoising must give exactly 0 and noising exactly 1, or the sweep's numbers are not on the scale "
         f"they claim. Tolerance of this report: {TOLERANCE:g} (the largest batched-vs-single difference measured).")


def exactness_table(model: PatchingModel) -> str:
    """One row per fully swept pair and direction: the stored value, the expected one, within the tolerance."""
    rows = [[fmt_token(c.pair_id), c.direction, fmt_exact(c.value), fmt_exact(c.expected),
             "yes" if c.ok else "**NO**"] for c in unpatched_checks(model.pairs)]
    return md_table(["Pair", "Direction", "Unpatched restoration", "Expected", "Within tolerance"], rows)


def verdict_line(model: PatchingModel) -> str:
    """Passed, a loud warning, or that no pair carries the check."""
    passed = exactness_passed(model.pairs)
    if passed is None:
        return "No pair carries the check (no pair was fully swept): the baselines are untested in this run."
    if passed:
        return "Passed: every unpatched run scores its baseline."
    return ("> **WARNING: an unpatched run does not score its baseline**: the restorations below are not measured "
            "against the runs they patch; treat every number in this report as suspect.")


def exactness_section(model: PatchingModel) -> str:
    """The exactness section: what is checked, the verdict, the table."""
    parts = ["## Exactness check", INTRO, verdict_line(model)]
    if exactness_passed(model.pairs) is not None:
        parts.append(exactness_table(model))
    return "\n\n".join(parts)
