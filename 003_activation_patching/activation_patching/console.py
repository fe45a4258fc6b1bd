"""The short summary printed for each model at the end of a run."""

from __future__ import annotations

from typing import Any


def _handover(summary: dict[str, Any]) -> str:
    handover, n_layers = summary["handover"], summary["n_layers"]
    if handover is None or handover.get("denoise") is None:
        return "no handover found (no resolvable pair, or the answer position never passes the subject)"
    found = handover["denoise"]
    return (f"handover from the subject to the answer position at residual layer {found['layer']} of {n_layers} "
            f"(depth {found['rel_depth']:.2f}, denoising, {handover['corruption']} pairs)")


def describe(name: str, summary: dict[str, Any]) -> list[str]:
    """A model that ran: its pairs, the handover layer, the full sweeps and the time they took."""
    full = ", ".join(summary["full_sweeps"]) or "none"
    return [
        f"{name}: {summary['n_swap']} swap pairs, {summary['n_noise']} noised facts, {summary['n_refused']} refused; "
        f"{summary['n_resolvable']} resolvable",
        f"  {_handover(summary)}",
        f"  full sweeps: {full} ({summary['full_sweep_seconds']:.1f} s); "
        f"battery sweep {summary['battery_sweep_seconds']:.1f} s",
    ]
