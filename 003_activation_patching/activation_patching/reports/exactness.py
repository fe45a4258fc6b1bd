"""The exactness check read from the JSON: each fully swept pair's runs with nothing patched.

Patching nothing must score exactly 0 when denoising (the corrupted run) and 1 when
noising (the clean run): the baselines the metric is scaled by are then the very
runs the sweep patches (``battery_sweep.unpatched_restorations``). The run shares one
code path for both, so the values are exact by construction; a miss beyond
``TOLERANCE`` (1e-6, the largest difference measured between a batched and a single
patched run on SmolLM2, NOTES.md) means the sweep's numbers are not on the scale
they claim.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from layers_core.reports.formats import json_number

TOLERANCE = 1e-6
EXPECTED = {"denoise": 0.0, "noise": 1.0}


@dataclass(frozen=True)
class UnpatchedCheck:
    """One pair and direction: the stored restoration of the unpatched run against what it must be."""

    pair_id: str
    direction: str
    value: float | None
    expected: float

    @property
    def ok(self) -> bool:
        """True when the value is recorded and within ``TOLERANCE`` of ``expected``."""
        return self.value is not None and abs(self.value - self.expected) <= TOLERANCE


def unpatched_checks(pairs: list[dict[str, Any]]) -> list[UnpatchedCheck]:
    """One check per fully swept pair and direction (pairs without ``unpatched_restoration`` carry none)."""
    checks = []
    for pair in pairs:
        found = pair.get("unpatched_restoration")
        if not pair.get("full_sweep") and not found:
            continue
        values = found if isinstance(found, dict) else {}
        checks += [UnpatchedCheck(str(pair.get("pair_id")), direction, json_number(values.get(direction)), expected)
                   for direction, expected in EXPECTED.items()]
    return checks


def exactness_passed(pairs: list[dict[str, Any]]) -> bool | None:
    """True when every check passes, False when one fails, None when no pair carries the check."""
    checks = unpatched_checks(pairs)
    return None if not checks else all(check.ok for check in checks)
