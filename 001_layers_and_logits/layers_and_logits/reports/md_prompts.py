"""Markdown sections about the battery prompts of one model (from its JSON summary)."""

from __future__ import annotations

from typing import Any

from layers_and_logits.reports.milestones import fmt_milestone_of, milestone_label
from layers_core.reports.formats import (
    MISSING,
    fmt_bits,
    fmt_depth,
    fmt_int,
    fmt_milestone,
    fmt_prob,
    fmt_text,
    fmt_token,
)
from layers_core.reports.markdown import md_table

Prompt = dict[str, Any]


def milestone_keys(prompts: list[Prompt]) -> list[str]:
    """Milestone keys in the order the JSON lists them, across all prompts."""
    keys: list[str] = []
    for prompt in prompts:
        keys += [k for k in (prompt.get("milestones") or {}) if k not in keys]
    return keys


def is_aligned(prompt: Prompt) -> bool:
    """True when the prompt's answer was aligned to a token."""
    return bool((prompt.get("alignment") or {}).get("ok"))


def answer_token(prompt: Prompt) -> str:
    """The aligned answer token as a code span, or a note that alignment failed."""
    return fmt_token(prompt["alignment"].get("answer_token")) if is_aligned(prompt) else "not aligned"


def milestone_table(prompts: list[Prompt], n_layers: int) -> str:
    """One row per prompt: each milestone as ``layer (relative depth)``, and copy collapse."""
    keys = milestone_keys(prompts)
    header = ["Prompt", "Role", "Answer token"] + [milestone_label(k) for k in keys]
    header += ["Copy collapse from", "Copy-collapse layers"]
    rows = []
    for p in prompts:
        copy = p.get("copy_collapse") or {}
        cells = [fmt_token(p["prompt_id"]), fmt_text(p.get("role", MISSING)), answer_token(p)]
        cells += [fmt_milestone_of(k, (p.get("milestones") or {}).get(k), is_aligned(p)) for k in keys]
        cells += [fmt_milestone({"layer": copy.get("first_layer"), "rel_depth": copy.get("rel_depth")}),
                  fmt_int(copy.get("n_layers"))]
        rows.append(cells)
    intro = (f"Each cell: the first layer where the condition holds at the answer position, then its relative "
             f"depth (layer / {n_layers}) in brackets; `never` = not reached by layer {n_layers}. Copy collapse: "
             "the top-1 token copies a prompt token with p > 0.9 (first layer from 1; number of layers 1..L "
             "flagged). Layer 0, the token's own embedding, is left out: with tied embeddings it decodes to "
             "the input token by construction.")
    return intro + "\n\n" + md_table(header, rows)


def _last_key_layer(prompt: Prompt) -> dict[str, Any]:
    layers = prompt.get("key_layers") or []
    return layers[-1] if layers else {}


def endings_table(prompts: list[Prompt]) -> str:
    """One row per prompt: the final prediction and the answer at the last layer."""
    header = ["Prompt", "Role", "Text", "Expected", "Final top-1", "p(top-1)", "Answer rank at L", "p(answer) at L"]
    rows = []
    for p in prompts:
        top = ((p.get("final_prediction") or {}).get("top") or [{}])[0]
        last = _last_key_layer(p)
        rows.append([fmt_token(p["prompt_id"]), fmt_text(p.get("role", MISSING)), fmt_text(repr(p.get("prompt", ""))),
                     answer_token(p), fmt_token(top.get("token")), fmt_prob(top.get("p")),
                     fmt_int(last.get("answer_rank")), fmt_prob(last.get("p_answer"))])
    return md_table(header, rows)


def comparison_lines(prompts: list[Prompt], main_id: str) -> list[str]:
    """One factual line per non-main prompt: when its answer becomes top-1, next to the main prompt's."""
    main = next((p for p in prompts if p["prompt_id"] == main_id), None)
    main_rank1 = fmt_milestone(((main or {}).get("milestones") or {}).get("first_rank1"))
    main_rank1 = "never top-1" if main_rank1 == "never" else f"top-1 from layer {main_rank1}"
    lines = []
    for p in prompts:
        if p["prompt_id"] == main_id:
            continue
        text = fmt_text(repr(p.get("prompt", "")))
        head = f"- {fmt_token(p['prompt_id'])} ({fmt_text(p.get('role', MISSING))}, {text})"
        alignment = p.get("alignment") or {}
        if not alignment.get("ok"):
            reason = fmt_text(alignment.get("reason") or "no reason recorded")
            lines.append(f"{head}: answer not aligned ({reason}); only entropy and KL exist for it.")
            continue
        rank1 = fmt_milestone((p.get("milestones") or {}).get("first_rank1"))
        when = "never becomes top-1" if rank1 == "never" else f"is top-1 from layer {rank1}"
        lines.append(f"{head}: answer {answer_token(p)} {when}; main prompt {fmt_token(main_id)}: {main_rank1}.")
    return lines


def key_layers_table(prompt: Prompt) -> str:
    """The lens at the seeds' key depths (0, L/6, L/3, L/2, 2L/3, 5L/6, L)."""
    header = ["Layer", "Relative depth", "Top-1", "p(top-1)", "Answer rank", "p(answer)"]
    rows = [[fmt_int(k.get("layer")), fmt_depth(k.get("rel_depth")), fmt_token(k.get("top1")),
             fmt_prob(k.get("p_top1")), fmt_int(k.get("answer_rank")), fmt_prob(k.get("p_answer"))]
            for k in prompt.get("key_layers") or []]
    return md_table(header, rows)


def final_table(prompt: Prompt) -> str:
    """The final next-token distribution (JSON final_prediction): entropy line and top-k table."""
    final = prompt.get("final_prediction") or {}
    rows = [[str(i), fmt_token(t.get("token")), fmt_prob(t.get("p"))] for i, t in enumerate(final.get("top") or [], 1)]
    return f"Entropy: {fmt_bits(final.get('entropy_bits'))} bits.\n\n" + md_table(["Rank", "Token", "p"], rows)


def temperature_table(prompt: Prompt) -> str:
    """Entropy and top tokens of the model's output at each temperature explored."""
    entries = prompt.get("temperature_exploration") or []
    width = max((len(e.get("top") or []) for e in entries), default=0)
    header = ["Temperature", "Entropy (bits)"] + [h for i in range(1, width + 1) for h in (f"Top-{i}", f"p{i}")]
    rows = []
    for e in entries:
        tops = list(e.get("top") or []) + [{}] * (width - len(e.get("top") or []))
        cells = [f"{float(e['temperature']):g}", fmt_bits(e.get("entropy_bits"))]
        rows.append(cells + [c for t in tops for c in (fmt_token(t.get("token")), fmt_prob(t.get("p")))])
    return md_table(header, rows)


def prompt_section(prompt: Prompt, is_main: bool) -> str:
    """Everything the JSON holds about one prompt, as headed tables."""
    pid = prompt["prompt_id"]
    alignment = prompt.get("alignment") or {}
    title = f"### Prompt `{pid}`" + (" (main prompt)" if is_main else "")
    facts = [f"- Role: {fmt_text(prompt.get('role', MISSING))}; text: {fmt_text(repr(prompt.get('prompt', '')))}; "
             f"{fmt_int(prompt.get('n_tokens'))} tokens.",
             f"- Expected answer: {fmt_text(repr(prompt.get('answer')))}; answer token: {answer_token(prompt)}"
             + ("" if alignment.get("ok") else f" ({fmt_text(alignment.get('reason') or 'no reason recorded')})") + "."]
    parts = [title, "\n".join(facts), f"#### Key layers: `{pid}`", key_layers_table(prompt),
             f"#### Final prediction: `{pid}`", final_table(prompt)]
    if prompt.get("temperature_exploration"):
        parts += [f"#### Temperature: `{pid}`", temperature_table(prompt)]
    return "\n\n".join(parts)
