"""Markdown about the prompts: answer against foil, the model's logit difference, its top heads."""

from __future__ import annotations

from typing import Any

from attention_and_attribution.reports.md_common import fmt_top_heads
from layers_core.reports.formats import MISSING, fmt_exact, fmt_logit, fmt_text, fmt_token, fmt_yes_no
from layers_core.reports.markdown import md_table


def prompts_table(prompts: list[dict[str, Any]], main_id: str) -> str:
    """One row per prompt: answer, foil and where it came from, the model's logit difference, its final top-1."""
    header = ["Prompt", "Role", "Answer", "Foil", "Foil from", "Logit diff (answer - foil)", "Sum error (diff)",
              "Final top-1", "Top-1 is answer"]
    rows = []
    for p in prompts:
        pid = fmt_token(p.get("prompt_id")) + (" (main)" if p.get("prompt_id") == main_id else "")
        rows.append([pid, fmt_text(p.get("role", MISSING)), fmt_token(p.get("answer_token")),
                     fmt_token(p.get("foil_token")), fmt_text(p.get("foil_source") or MISSING),
                     fmt_logit(p.get("model_logit_diff")), fmt_exact(p.get("sum_error_logit_diff")),
                     fmt_token(p.get("final_top1")), fmt_yes_no(p.get("final_top1_is_answer"))])
    return md_table(header, rows)


def prompt_lines(prompts: list[dict[str, Any]]) -> list[str]:
    """One line per prompt: its text, and its top heads by DLA (or why it was not used)."""
    lines = []
    for p in prompts:
        head = f"- {fmt_token(p.get('prompt_id'))}: {fmt_text(repr(p.get('prompt', '')))}"
        if p.get("used") is False:
            lines.append(f"{head}: not used ({fmt_text(p.get('reason') or 'no reason recorded')}).")
            continue
        lines.append(f"{head}: top heads by DLA on the logit difference: {fmt_top_heads(p.get('top_heads'))}.")
    return lines


def prompts_section(prompts: list[dict[str, Any]], main_id: str) -> str:
    """The prompts section: the table, then each prompt's top heads."""
    if not prompts:
        return "## Prompts\n\nThe JSON lists no prompts."
    intro = ("At the answer position of each prompt: the model's own logit of the answer minus the foil's, and the "
             "heads whose direct contribution to it is largest (`L<layer>H<head> (logits)`).")
    return "\n\n".join(["## Prompts", intro, prompts_table(prompts, main_id), "\n".join(prompt_lines(prompts))])
