"""The short summary printed for each model at the end of a run."""

from __future__ import annotations

from typing import Any


def describe(name: str, summary: dict[str, Any]) -> list[str]:
    """A model that ran: each SAE's quality and how many categories have a specialist there."""
    lines = [f"{name}: {len(summary['depth'])} SAEs (SAEs {summary['sae_seconds']:.0f} s, quality "
             f"{summary['quality_seconds']:.0f} s, features {summary['feature_seconds']:.0f} s)"]
    for depth, quality in zip(summary["depth"], summary["quality"], strict=True):
        lines.append(
            f"  residual {depth['layer']} (depth {depth['rel_depth']:.2f}): explained variance "
            f"{quality['explained_variance']:.2f}, loss recovered {quality['ce_loss_recovered']:.2f}, L0 "
            f"{quality['l0']:.1f}; specialists that hold: {depth['categories_with_specialist']} of "
            f"{depth['categories']} categories"
        )
    return lines
