"""The short summary printed for each model at the end of a run."""

from __future__ import annotations

from typing import Any

from layers_core.reports.formats import json_number


def describe(name: str, summary: dict[str, Any]) -> list[str]:
    """A model that ran: each seed claim it could test and whether it held, per SAE."""
    lines = [f"{name}: SAEs {summary['sae_seconds']:.0f} s, reading {summary['read_seconds']:.0f} s, analysis "
             f"{summary['analysis_seconds']:.0f} s"]
    for row in summary["hypotheses"]:
        if row["held"]:
            value = json_number(row["value"])
            where = f"residual {row['layer']}" if row["layer"] is not None else "all SAEs"
            shown = f"{value:.3f}" if value is not None else "n/a"
            lines.append(f"  {row['measure']} ({where}): {shown} vs seed {row['seed_claim']}: held {row['held']}")
    return lines
