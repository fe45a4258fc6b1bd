"""The hypotheses table as the reports read it: one ``Claim`` per row, checked against the JSON's copy.

The run writes the same rows twice: the hypotheses CSV (6 decimals) and the JSON's
``hypotheses`` (full precision). The reports quote the CSV; ``mismatch`` says where the
JSON disagrees with it (a folder mixed from two runs), and ``held_problem`` where a
``held`` cell is not what ``seed_claims.HELD_RULES`` allows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from layers_core.reports.formats import json_number
from semantics_syntax.reports.seed_claims import HELD_RULES

CSV_DECIMALS = 1e-6  # the CSV rounds to 6 decimals
HELD_VALUES = ("yes", "no", "")


@dataclass(frozen=True)
class Claim:
    """One measure of the hypotheses table (NaN where the run wrote none)."""

    hypothesis: str
    measure: str
    sae: str
    layer: int | None
    rel_depth: float
    value: float
    ci_low: float
    ci_high: float
    p_value: float
    p_holm: float
    n: int
    seed_claim: str
    held: str

    @property
    def key(self) -> tuple[str, str, str, int | None]:
        """(hypothesis, measure, sae, layer): one row per key."""
        return self.hypothesis, self.measure, self.sae, self.layer


def _number(value: Any) -> float:
    found = json_number(value)
    return math.nan if found is None else found


def _layer(value: Any) -> int | None:
    found = json_number(value)
    if found is None or math.isnan(found):
        return None
    if found != int(found):
        raise ValueError(f"layer {value!r} is not a whole number")
    return int(found)


def claim_of(row: dict[str, Any]) -> Claim:
    """One row (from the CSV or the JSON) as a ``Claim``.

    Raises:
        ValueError: a layer or ``n`` that is not a whole number.
    """
    n = _number(row.get("n"))
    if math.isnan(n) or n != int(n):
        raise ValueError(f"n {row.get('n')!r} is not a whole number")
    return Claim(str(row.get("hypothesis") or ""), str(row.get("measure") or ""), str(row.get("sae") or ""),
                 _layer(row.get("layer")), _number(row.get("rel_depth")), _number(row.get("value")),
                 _number(row.get("ci_low")), _number(row.get("ci_high")), _number(row.get("p_value")),
                 _number(row.get("p_holm")), int(n), str(row.get("seed_claim") or ""), str(row.get("held") or ""))


def claims_of_table(table: pd.DataFrame) -> list[Claim]:
    """Every row of the hypotheses CSV, in file order (pandas' NaN for an empty number cell)."""
    return [claim_of({str(k): (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})
            for row in table.to_dict("records")]


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= CSV_DECIMALS * max(1.0, abs(a))


NUMBERS = ("rel_depth", "value", "ci_low", "ci_high", "p_value", "p_holm")


def mismatch(csv_rows: Sequence[Claim], json_rows: Sequence[Claim]) -> str | None:
    """Where the CSV's rows differ from the JSON's (keys, n, claim, held, numbers beyond rounding); None if nowhere."""
    if len(csv_rows) != len(json_rows):
        return f"{len(csv_rows)} rows for the JSON's {len(json_rows)}"
    for number, (a, b) in enumerate(zip(csv_rows, json_rows, strict=True), start=1):
        if (a.key, a.n, a.seed_claim, a.held) != (b.key, b.n, b.seed_claim, b.held):
            return f"row {number} ({a.measure}) differs from the JSON's ({b.measure})"
        for field in NUMBERS:
            if not _close(getattr(a, field), getattr(b, field)):
                return f"row {number} ({a.measure}) has {field} {getattr(a, field)!r}, the JSON {getattr(b, field)!r}"
    return None


def held_problem(rows: Sequence[Claim]) -> str | None:
    """A ``held`` cell the reports cannot state a rule for; None when every cell is fine.

    ``held`` is yes/no exactly for the measures of ``HELD_RULES`` with a value, and empty elsewhere.
    """
    for row in rows:
        if row.held not in HELD_VALUES:
            return f"{row.measure} has held {row.held!r} (not yes, no or empty)"
        if row.held and row.measure not in HELD_RULES:
            return f"{row.measure} has held {row.held!r} but no rule the reports know (update tinycave)"
        if not row.held and row.measure in HELD_RULES and not math.isnan(row.value):
            return f"{row.measure} has a value but no held verdict"
    return None
