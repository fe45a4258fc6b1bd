"""Markdown of "Where the fact lives": the battery's depths beside 001's lens and 002's DLA on the same prompts.

The patching depths come from ``fact_depth`` (the headline summary's medians and
handover); 001's first rank-1 layer and 002's top DLA blocks come from the JSON's
``depth_comparison``, which the run recomputes on the resolvable pairs' clean
prompts. When the field is absent the section says the comparison was not measured.
"""

from __future__ import annotations

from typing import Any

from activation_patching.reports.fact_depth import (
    HALF,
    Milestone,
    dla_depths,
    first_answer_layer,
    last_subject_layer,
    order_word,
)
from activation_patching.reports.md_common import fmt_score
from activation_patching.reports.run_artefacts import PatchingModel
from layers_core.reports.formats import MISSING, fmt_at, fmt_depth, fmt_int, fmt_text, json_number
from layers_core.reports.markdown import md_table

NOT_MEASURED = ("001's and 002's measures were not measured in this run (the JSON has no `depth_comparison`): "
                "there is nothing here to compare the patching depths with.")


def fmt_layer_value(value: Any) -> str:
    """A median layer: whole numbers as such, a half-way median with one decimal; ``n/a`` when missing."""
    x = json_number(value)
    if x is None:
        return MISSING
    return str(int(x)) if x.is_integer() else f"{x:.1f}"


def patching_lines(model: PatchingModel) -> list[str]:
    """Where the headline battery puts the fact: on the subject until, at the answer from, and the handover."""
    summary = model.headline
    if summary is None:
        return ["No resolvable pair, so the battery places the fact nowhere."]
    medians, corruption = list(summary.get("medians") or []), fmt_text(str(summary.get("corruption")))
    subject, answer = last_subject_layer(medians), first_answer_layer(medians)
    handover = (summary.get("handover") or {}).get("denoise")
    return [
        f"- On the subject's last token ({corruption} pairs, denoising): " + (
            f"the median restoration is at least {HALF:g} up to residual layer "
            f"{fmt_at(subject.layer, subject.rel_depth)} (median {fmt_score(subject.value)} there)."
            if subject else f"the median restoration never reaches {HALF:g}."),
        "- At the answer position: " + (
            f"the median restoration first reaches {HALF:g} at residual layer "
            f"{fmt_at(answer.layer, answer.rel_depth)} (median {fmt_score(answer.value)})."
            if answer else f"the median restoration never reaches {HALF:g}."),
        "- Handover (denoising): " + (
            f"residual layer {fmt_at(handover.get('layer'), handover.get('rel_depth'))}." if handover
            else "none found."),
    ]


def _compare(what: str, depth: float | None, handover: dict[str, Any] | None) -> str:
    """``<what> at depth a, comes earlier than the patching handover (depth b).``; ``what`` ends in a comma."""
    if depth is None or not handover or json_number(handover.get("rel_depth")) is None:
        return f"{what} no comparison with the handover (a depth is missing)."
    mine = float(handover["rel_depth"])
    return (f"{what} at depth {fmt_depth(depth)}, comes {order_word(depth, mine)} the patching handover "
            f"(depth {fmt_depth(mine)}).")


def lens_line(comparison: dict[str, Any], handover: dict[str, Any] | None) -> str:
    """001's milestone: the median first rank-1 layer, how many prompts reach it, and its order to the handover."""
    first = comparison.get("first_rank1") or {}
    head = (f"- 001's norm lens ranks the clean answer top-1 first at median residual layer "
            f"{fmt_layer_value(first.get('median_layer'))} (depth {fmt_depth(first.get('median_rel_depth'))}); "
            f"{fmt_int(first.get('n_reached'))} prompt(s) reach rank 1, {fmt_int(first.get('n_never'))} never. ")
    return head + _compare("The lens milestone,", json_number(first.get("median_rel_depth")), handover)


def dla_line(comparison: dict[str, Any], key: str, label: str, handover: dict[str, Any] | None) -> str:
    """002's top blocks of one kind with their depths, and the strongest one's order to the handover."""
    blocks = dla_depths(comparison, key)
    if not blocks:
        return f"- 002's top {label} blocks by median DLA: none recorded."
    names = ", ".join(f"block {layer} (depth {fmt_depth(depth)})" for layer, depth in blocks)
    return (f"- 002's top {label} blocks by median DLA: {names}. "
            + _compare(f"Block {blocks[0][0]}, the strongest,", blocks[0][1], handover))


def comparison_table(model: PatchingModel, comparison: dict[str, Any]) -> str:
    """Every depth side by side: measure, layer, relative depth."""
    medians = list((model.headline or {}).get("medians") or [])
    found: list[tuple[str, Milestone | None]] = [
        (f"Subject's last token: last layer with median >= {HALF:g} (patching)", last_subject_layer(medians)),
        (f"Answer position: first layer with median >= {HALF:g} (patching)", first_answer_layer(medians))]
    rows = [[name, fmt_int(m.layer) if m else MISSING, fmt_depth(m.rel_depth) if m else MISSING] for name, m in found]
    for direction in ("denoise", "noise"):
        h = ((model.headline or {}).get("handover") or {}).get(direction) or {}
        rows.append([f"Handover, {direction} (patching)", fmt_int(h.get("layer")), fmt_depth(h.get("rel_depth"))])
    first = comparison.get("first_rank1") or {}
    rows.append(["First rank-1 layer, median (001's lens)", fmt_layer_value(first.get("median_layer")),
                 fmt_depth(first.get("median_rel_depth"))])
    for key, label in (("top_attn_layers", "attention"), ("top_mlp_layers", "MLP")):
        rows += [[f"Top {label} block {i} by median DLA (002)", str(layer), fmt_depth(depth)]
                 for i, (layer, depth) in enumerate(dla_depths(comparison, key), 1)]
    return md_table(["Measure", "Layer", "Rel. depth"], rows)


def _sentence(rule: Any) -> str:
    """A stored rule as one sentence ending in a full stop (``not recorded.`` when absent)."""
    return fmt_text(str(rule or "not recorded")).rstrip().rstrip(".") + "."


def depth_section(model: PatchingModel) -> str:
    """The section: the patching depths, then the comparison with 001 and 002 (or that it was not measured)."""
    parts = ["## Where the fact lives",
             f"From the battery's medians (the {fmt_text(str((model.headline or {}).get('corruption', 'n/a')))} "
             f"pairs): the threshold {HALF:g} is this report's (at least half the clean logit difference comes "
             "back), not the run's.", "\n".join(patching_lines(model))]
    comparison = model.depth_comparison
    if comparison is None:
        return "\n\n".join([*parts, NOT_MEASURED])
    handover = ((model.headline or {}).get("handover") or {}).get("denoise")
    rules = (f"Measured on the clean prompts of {fmt_int(comparison.get('n_prompts'))} resolvable pair(s). Lens: "
             f"{_sentence(comparison.get('lens_rule'))} DLA: {_sentence(comparison.get('dla_rule'))}")
    lines = [lens_line(comparison, handover), dla_line(comparison, "top_attn_layers", "attention", handover),
             dla_line(comparison, "top_mlp_layers", "MLP", handover)]
    return "\n\n".join([*parts, "### Against 001's lens and 002's DLA", rules, "\n".join(lines),
                        comparison_table(model, comparison)])
