"""Markdown about the heads and layers over the battery (or the prompts): what holds across them."""

from __future__ import annotations

from typing import Any

import pandas as pd

from attention_and_attribution.artefact_schema import ATTN_COLUMNS
from attention_and_attribution.reports.md_common import fmt_iqr, fmt_share
from attention_and_attribution.reports.run_artefacts import AttributionModel
from layers_core.reports.formats import MISSING, fmt_depth, fmt_head, fmt_int, fmt_logit, fmt_text
from layers_core.reports.markdown import md_table

TOP_HEADS = 10
ROLE_COLUMNS = tuple(f"median_{c}" for c in ATTN_COLUMNS)


def role_of(column: str) -> str:
    """``median_attn_subject`` -> ``subject``."""
    return column.removeprefix("median_attn_")


def reads_most(row: pd.Series) -> str:
    """The role the head attends to most (median attention), with its share."""
    values = {role_of(c): float(row[c]) for c in ROLE_COLUMNS if pd.notna(row.get(c))}
    if not values:
        return MISSING
    role = max(values, key=lambda r: values[r])
    return f"{role} ({fmt_share(values[role])})"


def battery_intro(model: AttributionModel) -> str:
    """What the summaries aggregate: the battery's counts, or the prompts."""
    battery = model.battery
    if battery is None:
        return ("The fact battery was not run: the summaries below are over the prompts only, so they rest on a "
                "handful of prompts.")
    return (f"Battery `{fmt_text(battery.get('name', MISSING))}`: {fmt_int(battery.get('n_facts'))} facts, "
            f"{fmt_int(battery.get('n_used'))} used, {fmt_int(battery.get('n_final_top1_correct'))} where the "
            f"model's own top-1 is the answer. Summaries are over the {fmt_text(model.summary_over)}.")


def head_summary_table(model: AttributionModel, n: int = TOP_HEADS) -> str:
    """The n heads of best rank: median DLA with its IQR, share in the top 5, and attention by role."""
    header = ["Rank", "Head", "Rel. depth", "Median DLA", "IQR", "Share top-5", "Reads most",
              *(role_of(c) for c in ROLE_COLUMNS)]
    rows = []
    for _, r in model.head_summary.head(n).iterrows():
        rows.append([fmt_int(r["rank"]), fmt_head(r["layer"], r["head"]), fmt_depth(r["rel_depth"]),
                     fmt_logit(r["median_dla_logit_diff"]), fmt_iqr(r["q25_dla_logit_diff"], r["q75_dla_logit_diff"]),
                     fmt_share(r["share_top5"]), reads_most(r), *(fmt_share(r[c]) for c in ROLE_COLUMNS)])
    return md_table(header, rows)


def retrieval_section(model: AttributionModel) -> str:
    """The heads meeting the retrieval criterion, or a plain statement that none does."""
    criterion = fmt_text(model.summary.get("retrieval_criterion") or "not recorded")
    heads: list[dict[str, Any]] = model.retrieval_heads
    if not heads:
        return f"### Retrieval heads\n\nNo head meets the criterion ({criterion})."
    rows = [[fmt_head(h.get("layer"), h.get("head")), fmt_depth(h.get("rel_depth")),
             fmt_logit(h.get("median_dla_logit_diff")),
             fmt_iqr(h.get("q25_dla_logit_diff"), h.get("q75_dla_logit_diff")), fmt_share(h.get("share_top5"))]
            for h in heads]
    table = md_table(["Head", "Rel. depth", "Median DLA", "IQR", "Share top-5"], rows)
    return f"### Retrieval heads\n\nCriterion: {criterion}. {len(heads)} head(s) meet it.\n\n{table}"


def layers_table(model: AttributionModel) -> str:
    """Per layer: median (IQR) of the attention and of the MLP contribution to the logit difference."""
    rows = [[fmt_int(e.get("layer")), fmt_depth(e.get("rel_depth")), fmt_logit(e.get("median_attn_dla_logit_diff")),
             fmt_iqr(e.get("q25_attn_dla_logit_diff"), e.get("q75_attn_dla_logit_diff")),
             fmt_logit(e.get("median_mlp_dla_logit_diff")),
             fmt_iqr(e.get("q25_mlp_dla_logit_diff"), e.get("q75_mlp_dla_logit_diff"))]
            for e in model.layers_summary]
    if not rows:
        return "The JSON has no layers_summary."
    return md_table(["Layer", "Rel. depth", "Attention median", "Attention IQR", "MLP median", "MLP IQR"], rows)


def battery_section(model: AttributionModel) -> str:
    """Heads and layers across the battery (or the prompts)."""
    over = fmt_text(model.summary_over)
    return "\n\n".join([
        f"## Across the {over}", battery_intro(model),
        f"### Top {TOP_HEADS} heads by median DLA",
        f"Median and interquartile range of each head's DLA on the logit difference over the {over}; share of "
        "them where the head is among the 5 largest; median attention of the answer position by token role "
        "(what the head reads).",
        head_summary_table(model), retrieval_section(model),
        "### Attention against MLP, per layer", layers_table(model)])
