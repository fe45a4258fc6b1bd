"""The short summary printed for each model at the end of a run."""

from __future__ import annotations

from typing import Any


def _depth(milestone: dict | None, n_layers: int) -> str:
    if not milestone or milestone.get("layer") is None:
        return "never reaches rank 1"
    return f"rank 1 at layer {milestone['layer']}/{n_layers} (relative depth {milestone['rel_depth']:.2f})"


def describe(name: str, s: dict[str, Any]) -> list[str]:
    """A model that ran: the main prompt's rank-1 depth, the consistency KL, the fact battery."""
    top = s["final_top1"]
    check = "ok" if s["consistency_ok"] else "FAILED, do not trust the lens numbers"
    lines = [
        f"{name}: '{s['main_prompt_id']}' answer {_depth(s['first_rank1'], s['n_layers'])}; "
        f"model predicts {top['token']!r} p={top['p']:.3f}; "
        f"last-layer consistency KL {s['consistency_kl_bits']:.2e} bits ({check})"
    ]
    facts = s["facts_first_rank1"]
    if facts is not None and facts.get("median") is not None:
        lines.append(
            f"  fact battery: answer reaches rank 1 in {facts['n_reached']}/{facts['n']} facts, "
            f"median relative depth {facts['median']:.2f} (quartiles {facts['q1']:.2f}-{facts['q3']:.2f})"
        )
    return lines
