"""Number and token formats shared by every markdown report.

One place decides how a number is written, so the tests can check the format
and the reports stay consistent:

- probabilities: 4 significant digits (``0.8012``, ``1.000``, ``3.100e-05``);
- bits (entropy, KL), logits and relative depth: 3 decimals;
- JSON values shown as stored (e.g. a check's KL): Python's shortest round-trip
  form, e.g. ``3.2e-07``;
- missing values: ``n/a``; a layer never reached: ``never``.
"""

from __future__ import annotations

import math
from typing import Any

MISSING = "n/a"
NEVER = "never"


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt_prob(p: float | None) -> str:
    """A probability with 4 significant digits, or ``n/a``."""
    return MISSING if p is None or _is_missing(p) else format(float(p), "#.4g")


def fmt_bits(x: float | None) -> str:
    """Bits (entropy, KL) with 3 decimals, or ``n/a``."""
    return MISSING if x is None or _is_missing(x) else f"{float(x):.3f}"


def fmt_logit(x: float | None) -> str:
    """A logit or logit difference with 3 decimals, or ``n/a``."""
    return MISSING if x is None or _is_missing(x) else f"{float(x):.3f}"


def fmt_depth(x: float | None) -> str:
    """A relative depth (layer / L) with 3 decimals, or ``n/a``."""
    return MISSING if x is None or _is_missing(x) else f"{float(x):.3f}"


def fmt_int(x: float | int | None) -> str:
    """An integer (layer, rank, count), or ``n/a``."""
    return MISSING if x is None or _is_missing(x) else str(int(x))


def head_label(layer: int, head: int) -> str:
    """A head's name in the artefacts and reports: ``L23H4`` (block 23, head 4)."""
    return f"L{layer}H{head}"


def fmt_head(layer: Any, head: Any) -> str:
    """``head_label`` from numbers read back from a CSV or a JSON, or ``n/a`` when either is missing."""
    if fmt_int(layer) == MISSING or fmt_int(head) == MISSING:
        return MISSING
    return head_label(int(layer), int(head))


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
    if token is None or _is_missing(token):
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
    """A first-reached layer ``{"layer", "rel_depth"}`` as ``layer (relative depth)``, or ``never``."""
    if not entry or _is_missing(entry.get("layer")):
        return NEVER
    return f"{fmt_int(entry['layer'])} ({fmt_depth(entry.get('rel_depth'))})"


def json_number(value: Any) -> float | None:
    """A JSON number as a float; None for anything else (null, a string, a bool)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def fmt_at(layer: Any, rel_depth: Any) -> str:
    """A layer with its relative depth: ``24 (0.800)``; ``n/a`` without a layer."""
    if fmt_int(layer) == MISSING:
        return MISSING
    return f"{fmt_int(layer)} ({fmt_depth(rel_depth)})"
