"""The rule constants a 004 run used, as its JSON's ``rules`` records them, and how the reports write them.

The run writes ``rules``: ``specialist_min_auroc`` and ``specialist_min_precision`` (when a
specialist holds), ``specialist_min_presence`` (the share of a category's find texts a
candidate must fire on), ``dense_threshold`` (a feature firing on more than this share of
held-out tokens is dense) and ``selective_min_texts`` (the texts a ``selective`` feature
must fire on). The reports quote these instead of restating the run's defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from layers_core.reports.formats import json_number

RULE_KEYS = ("specialist_min_auroc", "specialist_min_precision", "specialist_min_presence", "dense_threshold",
             "selective_min_texts")


@dataclass(frozen=True)
class SaeRules:
    """The run's rule constants (module doc)."""

    min_auroc: float
    min_precision: float
    min_presence: float
    dense_threshold: float
    selective_min_texts: int


def read_rules(found: Any) -> SaeRules:
    """The JSON's ``rules`` object as ``SaeRules``.

    Raises:
        ValueError: ``found`` is not an object, or a key is missing or not a number (one short phrase).
    """
    if not isinstance(found, dict):
        raise ValueError("not an object")
    values = {key: json_number(found.get(key)) for key in RULE_KEYS}
    numbers = {key: value for key, value in values.items() if value is not None}
    if len(numbers) < len(RULE_KEYS):
        raise ValueError(f"no number for {', '.join(k for k in RULE_KEYS if k not in numbers)}")
    if numbers["selective_min_texts"] != int(numbers["selective_min_texts"]):
        raise ValueError("selective_min_texts is not a whole number")
    return SaeRules(min_auroc=numbers["specialist_min_auroc"], min_precision=numbers["specialist_min_precision"],
                    min_presence=numbers["specialist_min_presence"], dense_threshold=numbers["dense_threshold"],
                    selective_min_texts=int(numbers["selective_min_texts"]))


def fmt_share(x: float) -> str:
    """A rule's share as a short percentage: ``0.1`` -> ``10%``, ``0.5`` -> ``50%``, ``0.125`` -> ``12.5%``."""
    return f"{100 * x:g}%"
