"""Markdown about the pairs: how many of each corruption, the refused facts, each pair's logit differences."""

from __future__ import annotations

import statistics
from typing import Any

from activation_patching.reports.run_artefacts import PatchingModel
from layers_core.reports.formats import MISSING, fmt_exact, fmt_logit, fmt_text, fmt_token, fmt_yes_no, json_number
from layers_core.reports.markdown import md_table


def count(pairs: list[dict[str, Any]], corruption: str) -> int:
    """How many pairs use one corruption (``swap`` or ``noise``)."""
    return sum(p.get("corruption") == corruption for p in pairs)


def gap_range(pairs: list[dict[str, Any]]) -> str:
    """``min / median / max`` of the pairs' gaps (clean minus corrupt logit difference), or ``n/a``."""
    gaps = [g for p in pairs if (g := json_number(p.get("gap"))) is not None]
    if not gaps:
        return MISSING
    return f"{fmt_logit(min(gaps))} / {fmt_logit(statistics.median(gaps))} / {fmt_logit(max(gaps))}"


def counts_line(model: PatchingModel) -> str:
    """The pairs in one paragraph: source, swap, noise, refused, resolvable, gaps."""
    pairs, battery = model.pairs, model.battery
    not_resolvable = [p for p in pairs if p.get("resolvable") is False]
    line = (f"Pairs from `{fmt_text(str(model.summary.get('pairs_source') or MISSING))}`: {len(pairs)} pair(s), "
            f"{count(pairs, 'swap')} swap (the subject swapped for another fact's), {count(pairs, 'noise')} noise "
            f"(causal tracing's noise on the subject), {len(model.refused)} fact(s) refused. "
            f"{len(pairs) - len(not_resolvable)} resolvable (gap at least "
            f"{fmt_exact(battery.get('min_gap_logits'))} logits; the battery's count: "
            f"{fmt_exact(battery.get('n_pairs_resolvable'))}); gap min / median / max: {gap_range(pairs)} logits.")
    if not_resolvable:
        names = ", ".join(fmt_token(p.get("pair_id")) for p in not_resolvable)
        line += f" Left out of the battery's medians (gap too small): {names}."
    return line


def pairs_table(pairs: list[dict[str, Any]]) -> str:
    """One row per pair: corruption, tokens, the two logit differences, the gap and what it was used for."""
    rows = [[fmt_token(p.get("pair_id")), fmt_text(str(p.get("corruption", MISSING))),
             fmt_token(p.get("answer_token")), fmt_token(p.get("corrupt_answer_token")),
             fmt_logit(p.get("clean_logit_diff")), fmt_logit(p.get("corrupt_logit_diff")), fmt_logit(p.get("gap")),
             fmt_yes_no(p.get("resolvable")), fmt_yes_no(p.get("full_sweep"))] for p in pairs]
    header = ["Pair", "Corruption", "Answer", "Corrupt answer", "Clean diff", "Corrupt diff", "Gap", "Resolvable",
              "Full sweep"]
    return md_table(header, rows)


def refused_lines(refused: list[dict[str, Any]]) -> str:
    """One line per refused fact with its reason."""
    if not refused:
        return "No fact was refused."
    return "\n".join(f"- {fmt_token(r.get('prompt_id'))}: {fmt_text(str(r.get('reason') or 'no reason recorded'))}"
                     for r in refused)


def full_pair_lines(model: PatchingModel) -> str:
    """The prompts of the fully swept pairs, with the positions the corruption acts on."""
    lines = []
    for pair_id in model.full_sweeps:
        p = model.pair(pair_id)
        clean, corrupt = fmt_text(repr(p.get("clean_prompt", ""))), fmt_text(repr(p.get("corrupt_prompt", "")))
        lines.append(f"- {fmt_token(pair_id)} ({fmt_text(str(p.get('corruption')))}): clean {clean}, corrupt "
                     f"{corrupt}; {fmt_exact(p.get('n_tokens'))} tokens, corrupted at positions "
                     f"{fmt_text(str(p.get('corrupt_positions')))}, subject's last token at "
                     f"{fmt_exact(p.get('subject_position'))}; corrupt answer: "
                     f"{fmt_text(str(p.get('corrupt_answer_rule') or MISSING))}.")
    return "\n".join(lines) or "No pair was fully swept."


def pairs_section(model: PatchingModel) -> str:
    """The pairs section: counts, the fully swept pairs, the table, the refused facts."""
    intro = ("Clean diff and corrupt diff: logit(clean answer) - logit(corrupt answer) at the answer position on "
             "the clean and the corrupted run; gap = clean diff - corrupt diff, the scale every restoration is "
             "measured on.")
    return "\n\n".join(["## Pairs", counts_line(model), "### Fully swept pairs", full_pair_lines(model),
                        "### Every pair", intro, pairs_table(model.pairs), "### Refused facts",
                        refused_lines(model.refused)])
