"""Number, token and table formatting shared by every markdown report.

One place decides how a number is written, so the tests can check the format
and the reports stay consistent:

- probabilities: 4 significant digits (``0.8012``, ``1.000``, ``3.100e-05``);
- bits (entropy, KL) and relative depth: 3 decimals;
- the last-layer consistency numbers: exactly as stored in the JSON (Python's
  shortest round-trip form, e.g. ``3.2e-07``);
- missing values: ``n/a``; milestones never reached: ``never``.
"""

from __future__ import annotations

import math
from typing import Any

MISSING = "n/a"
NEVER = "never"
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


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt_prob(p: float | None) -> str:
    """A probability with 4 significant digits, or ``n/a``."""
    return MISSING if _is_missing(p) else format(float(p), "#.4g")


def fmt_bits(x: float | None) -> str:
    """Bits (entropy, KL) with 3 decimals, or ``n/a``."""
    return MISSING if _is_missing(x) else f"{float(x):.3f}"


def fmt_depth(x: float | None) -> str:
    """A relative depth (layer / L) with 3 decimals, or ``n/a``."""
    return MISSING if _is_missing(x) else f"{float(x):.3f}"


def fmt_int(x: float | int | None) -> str:
    """An integer (layer, rank, count), or ``n/a``."""
    return MISSING if _is_missing(x) else str(int(x))


def fmt_exact(x: Any) -> str:
    """A JSON value exactly as stored: floats in shortest round-trip form."""
    if _is_missing(x):
        return MISSING
    if isinstance(x, bool):
        return "yes" if x else "no"
    return repr(x) if isinstance(x, float) else str(x)


def fmt_yes_no(x: bool | None) -> str:
    """``yes``/``no``, or ``n/a``."""
    return MISSING if x is None else ("yes" if x else "no")


def fmt_token(token: str | None) -> str:
    """Token text as a markdown code span; the space inside shows leading spaces.

    Backticks in the token get a longer fence; ``|`` is escaped for tables.
    """
    if _is_missing(token):
        return MISSING
    text = str(token).replace("|", "\\|")
    if text == "":
        return "(empty)"
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def fmt_text(text: str) -> str:
    """Free text (a prompt, a reason) made safe for a table cell or a line."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def fmt_milestone(entry: dict[str, Any] | None) -> str:
    """A milestone as ``layer (relative depth)``, or ``never``."""
    if not entry or _is_missing(entry.get("layer")):
        return NEVER
    return f"{fmt_int(entry['layer'])} ({fmt_depth(entry.get('rel_depth'))})"


def fmt_milestone_of(key: str, entry: dict[str, Any] | None, aligned: bool) -> str:
    """A milestone cell, ``not aligned`` for an answer milestone of a prompt without an answer token."""
    if not aligned and key not in ANSWER_FREE_MILESTONES:
        return NOT_ALIGNED
    return fmt_milestone(entry)


def fmt_reached(stats: dict[str, Any], fallback_total: Any) -> str:
    """``n_reached of n`` for a milestone distribution (n falls back to the aligned count)."""
    return f"{stats.get('n_reached', MISSING)} of {stats.get('n', fallback_total)}"


def milestone_label(key: str) -> str:
    """Readable name of a milestone key; unknown keys are shown as they are."""
    return MILESTONE_LABELS.get(key, key)


def md_image(alt: str, file_name: str) -> str:
    """A markdown image with a relative link; odd file names go in angle brackets."""
    target = f"<{file_name}>" if any(c in file_name for c in " ()<>") else file_name
    return f"![{alt}]({target})"


def md_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured markdown table (no trailing newline)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
