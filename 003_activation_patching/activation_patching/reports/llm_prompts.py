"""003's paste-ready LLM prompts: its templates, the artefacts each inlines, and its trims.

Inlined per model: the JSON (pairs, exactness check, battery medians and handover,
attribution agreement, depth comparison) and the patching CSV's rows of the FIRST
fully swept pair only (the causal-tracing grid and the heads). Not inlined: the
battery CSV (pairs x directions x layers; the JSON's per-layer medians summarise
it), the attribution CSV (as long as the patching CSV; the JSON's agreement holds
its r), and the other fully swept pairs' patching rows. Over the budget
(``layers_core.reports.llm_pack``), the trim levels below are tried in order: no
head rows in the patching CSV, then also the JSON's pairs slimmed to their numbers
(prompts and rules kept for the fully swept pairs), then only the residual rows.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

from activation_patching.artefact_schema import PATCHING
from activation_patching.reports.run_artefacts import PatchingModel
from layers_core.reports.csv_trim import keep_rows
from layers_core.reports.llm_pack import Source, TrimLevels, TrimStep, read_source
from layers_core.reports.prompt_pack import PromptPack
from layers_core.runs.artefacts import artefact_name

EXPERIMENT = "003_activation_patching"  # its templates are in prompts/003_activation_patching/
INLINED_CSVS = (PATCHING,)
SLIM_DROPS = ("clean_prompt", "corrupt_prompt", "corrupt_positions", "corrupt_answer_rule")


def keep_components(components: Collection[str], what: str) -> TrimStep:
    """A trim keeping the patching CSV's rows of ``components`` (``what`` names what is removed)."""

    def step(src: Source) -> tuple[Source, list[str]]:
        table = src.tables.get(PATCHING)
        if table is None:
            return src, []
        kept = keep_rows(table, lambda r: r.get("component") in components)
        if len(kept[1]) == len(table[1]):
            return src, []
        note = f"{artefact_name(src.name, PATCHING)}: {what} removed ({len(table[1]) - len(kept[1])} rows)."
        return src.with_table(PATCHING, kept), [note]

    return step


def slim_pairs(src: Source) -> tuple[Source, list[str]]:
    """A trim removing the prompts and rules of the pairs not fully swept (their numbers stay)."""
    pairs: list[dict[str, Any]] = list(src.summary.get("pairs") or [])
    slim = [p if p.get("full_sweep") else {k: v for k, v in p.items() if k not in SLIM_DROPS} for p in pairs]
    if slim == pairs:
        return src, []
    n_slim = sum(not p.get("full_sweep") for p in pairs)
    note = (f"{artefact_name(src.name, 'json')}: {', '.join(SLIM_DROPS)} removed from the {n_slim} pairs not "
            "fully swept (their logit differences, gaps and flags are kept).")
    return src.with_summary({**src.summary, "pairs": slim}), [note]


NO_HEADS = keep_components(("resid_pre", "attn_out", "mlp_out"), "the head rows")
RESIDUAL_ONLY = keep_components(("resid_pre",), "every row but the residual's")
TRIM_LEVELS: TrimLevels = ((), (NO_HEADS,), (NO_HEADS, slim_pairs), (RESIDUAL_ONLY, slim_pairs))


def source_for(model: PatchingModel, run_dir: Path) -> Source:
    """The JSON and the first fully swept pair's patching rows of one ok model."""
    src = read_source(model, run_dir, INLINED_CSVS)
    table = src.tables.get(PATCHING)
    if table is not None:
        src = src.with_table(PATCHING, keep_rows(table, lambda r: r.get("pair_id") == model.first_full))
    return src


PACK = PromptPack(EXPERIMENT, source_for, TRIM_LEVELS)
