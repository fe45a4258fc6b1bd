"""Markdown of the battery: per residual layer, subject against answer position, and the handover layer."""

from __future__ import annotations

from typing import Any

from activation_patching.reports.fact_depth import medians_at
from activation_patching.reports.md_common import fmt_score
from activation_patching.reports.run_artefacts import PatchingModel
from layers_core.reports.formats import fmt_at, fmt_exact, fmt_int, fmt_text
from layers_core.reports.markdown import md_table

DIRECTIONS = ("denoise", "noise")
PAST = {"denoise": "above", "noise": "below"}


def _pair_of_medians(entry: dict[str, Any] | None, direction: str) -> str:
    if entry is None:
        return "n/a"
    return (f"subject {fmt_score(entry.get(f'{direction}_subject'))}, answer "
            f"{fmt_score(entry.get(f'{direction}_answer'))}")


def handover_line(summary: dict[str, Any], direction: str) -> str:
    """One sentence: the handover layer of one summary and direction, with the medians at it and one layer before."""
    found, medians = (summary.get("handover") or {}).get(direction), list(summary.get("medians") or [])
    head = f"- {fmt_text(str(summary.get('corruption')))} pairs ({fmt_int(summary.get('n_pairs'))}), {direction}"
    if not found:
        return (f"{head}: no handover: at the last residual layer the answer position's median is not "
                f"{PAST[direction]} the subject's, so no layer meets the rule.")
    layer = int(found["layer"])
    before = medians_at(medians, layer - 1)
    earlier = ("it is the first layer, so nothing comes before it" if before is None
               else f"one layer before (layer {layer - 1}): {_pair_of_medians(before, direction)}")
    return (f"{head}: residual layer {fmt_at(layer, found.get('rel_depth'))}; there the medians are "
            f"{_pair_of_medians(medians_at(medians, layer), direction)}; {earlier}.")


def mirrored(pair: dict[str, Any]) -> bool:
    """True when the pair differs at the subject's last token only and the answer position comes right after it.

    Then, at any residual layer, denoising the subject and noising the answer position (and the reverse) leave
    the same residual stream (the earlier positions are equal in both prompts), so they are the same run.
    """
    subject, n_tokens = pair.get("subject_position"), pair.get("n_tokens")
    return (isinstance(subject, int) and isinstance(n_tokens, int) and subject == n_tokens - 2
            and list(pair.get("corrupt_positions") or []) == [subject])


def mirror_line(model: PatchingModel) -> str:
    """How many resolvable pairs make the two directions the same runs (``mirrored``), said plainly."""
    usable = [p for p in model.pairs if p.get("resolvable")]
    n = sum(mirrored(p) for p in usable)
    if not n:
        return ("No resolvable pair is corrupted at the subject's last token alone right before the answer position: "
                "the two directions are separate measurements.")
    return (f"{n} of the {len(usable)} resolvable pairs are corrupted at the subject's last token alone, right "
            "before the answer position: for them, denoising the subject and noising the answer position (and the "
            "reverse) are the same patched run, so the noise medians mirror the denoise medians and are not "
            "independent evidence.")


def medians_table(summary: dict[str, Any]) -> str:
    """Per residual layer: the median restoration at the subject's last token and at the answer, each direction."""
    rows = [[fmt_int(e.get("layer")), fmt_score(e.get("rel_depth")),
             *(fmt_score(e.get(f"{d}_{site}")) for d in DIRECTIONS for site in ("subject", "answer"))]
            for e in summary.get("medians") or []]
    header = ["Layer", "Rel. depth", "Denoise: subject", "Denoise: answer", "Noise: subject", "Noise: answer"]
    return md_table(header, rows)


def battery_section(model: PatchingModel) -> str:
    """The battery section: what is summarised, the handover per corruption and direction, the medians."""
    battery = model.battery
    intro = (f"Every pair's residual patched at one position, every layer 0..{model.n_layers}: the subject's last "
             "token, or the answer position (the last). Medians over the resolvable pairs, swap and noise pairs "
             f"apart; {fmt_exact(battery.get('n_pairs_resolvable'))} pair(s) resolvable (gap at least "
             f"{fmt_exact(battery.get('min_gap_logits'))} logits).")
    summaries = model.summaries
    if not summaries:
        return "\n\n".join(["## Battery: the handover", intro,
                            "No resolvable pair: no medians and no handover layer."])
    headline = battery.get("handover") or {}
    parts = ["## Battery: the handover", intro,
             f"Handover rule (from the JSON): {fmt_text(str(battery.get('handover_rule') or 'not recorded'))}.",
             f"The run's headline handover is read from the {fmt_text(str(headline.get('corruption', 'n/a')))} "
             "pairs.", "\n".join(handover_line(s, d) for s in summaries for d in DIRECTIONS), mirror_line(model)]
    for summary in summaries:
        parts += [f"### Medians per layer: {fmt_text(str(summary.get('corruption')))} pairs "
                  f"({fmt_int(summary.get('n_pairs'))})", medians_table(summary)]
    return "\n\n".join(parts)
