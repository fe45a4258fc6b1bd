"""001's paste-ready LLM prompts: its templates, the artefacts each inlines, and its trims.

When the artefacts do not fit the budget (``layers_core.reports.llm_pack``), the
trim levels below are tried in order: fewer top-k columns of the pure next-token
CSV (top1..top5, then only top1), then no ``facts.per_fact`` list in the JSON,
then only the main prompt's rows plus the key layers of the others. The lens-kl
CSV of a run that compared lenses (one row per lens and layer) is small and is
always inlined whole; a run without it inlines nothing in its place.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from layers_and_logits.artefact_schema import LENS_KL, PURE_NEXT_TOKEN
from layers_and_logits.reports.run_artefacts import LensModel
from layers_core.reports.csv_trim import keep_rows, keep_topk, max_topk
from layers_core.reports.llm_pack import Source, TrimLevels, TrimStep, read_source
from layers_core.reports.prompt_pack import PromptPack
from layers_core.runs.artefacts import artefact_name

EXPERIMENT = "001_layers_and_logits"  # its templates are in prompts/001_layers_and_logits/
INLINED_CSVS = (PURE_NEXT_TOKEN, LENS_KL)  # the records and facts CSVs are too long to paste
OPTIONAL_CSVS = frozenset({LENS_KL})  # only runs with --lens tuned or linear write it: absent means not inlined



def keep_top(k: int) -> TrimStep:
    """A trim keeping the top1..top``k`` columns (and their p_) of the pure next-token CSV."""

    def step(src: Source) -> tuple[Source, list[str]]:
        table = src.tables.get(PURE_NEXT_TOKEN)
        if table is None or k >= (top := max_topk(table)):
            return src, []
        kept = "only top1" if k == 1 else f"top1..top{k}"
        note = (f"{artefact_name(src.name, PURE_NEXT_TOKEN)}: columns top{k + 1}..top{top} and "
                f"p_top{k + 1}..p_top{top} removed ({kept} kept).")
        return src.with_table(PURE_NEXT_TOKEN, keep_topk(table, k)), [note]

    return step


def drop_per_fact(src: Source) -> tuple[Source, list[str]]:
    """A trim removing the JSON's per-fact list (the milestone summary over facts stays)."""
    per_fact = (src.summary.get("facts") or {}).get("per_fact")
    if not per_fact:
        return src, []
    facts = {k: v for k, v in src.summary["facts"].items() if k != "per_fact"}
    note = (f"{artefact_name(src.name, 'json')}: facts.per_fact removed ({len(per_fact)} entries; the "
            "facts.milestones summary is kept).")
    return src.with_summary({**src.summary, "facts": facts}), [note]


def _key_layers(summary: dict[str, Any]) -> frozenset[int]:
    main: dict[str, Any] = next(
        (p for p in summary.get("prompts") or [] if p.get("prompt_id") == summary["main_prompt_id"]), {})
    return frozenset(int(k["layer"]) for k in main.get("key_layers") or [])


def keep_key_rows(src: Source) -> tuple[Source, list[str]]:
    """A trim keeping every row of the main prompt, and the other prompts' rows at its key layers only."""
    table = src.tables.get(PURE_NEXT_TOKEN)
    if table is None:
        return src, []
    main, layers = str(src.summary["main_prompt_id"]), _key_layers(src.summary)
    table = keep_rows(table, lambda r: r.get("prompt_id") == main or int(r.get("layer", -1)) in layers)
    note = (f"{artefact_name(src.name, PURE_NEXT_TOKEN)}: rows of prompts other than `{main}` kept only at the key "
            f"layers {sorted(layers)}.")
    return src.with_table(PURE_NEXT_TOKEN, table), [note]


TRIM_LEVELS: TrimLevels = (
    (),
    (keep_top(5),),
    (keep_top(1),),
    (drop_per_fact, keep_top(1)),
    (drop_per_fact, keep_top(1), keep_key_rows),
)


def source_for(model: LensModel, run_dir: Path) -> Source:
    """The exact JSON text, pure next-token CSV and (when the run compared lenses) lens-kl CSV of one ok model."""
    model.prompt(model.main_prompt_id)  # a JSON without its main prompt is refused here, before any trim needs it
    src = read_source(model, run_dir, INLINED_CSVS)
    tables = {kind: t for kind, t in src.tables.items() if t is not None or kind not in OPTIONAL_CSVS}
    return replace(src, tables=tables)


PACK = PromptPack(EXPERIMENT, source_for, TRIM_LEVELS)
