"""002's paste-ready LLM prompts: its templates, the artefacts each inlines, and its trims.

Inlined per model: the JSON, the head summary, the ablation CSV's ``battery`` rows
(all rows when there are none: the ablation was over the prompts) and the layers
CSV's rows of the main prompt. The heads, components and attention CSVs are too
long to paste. Over the budget (``layers_core.reports.llm_pack``), the trim levels
below are tried in order: no per-fact list in the JSON, then only the best-ranked
rows of the head summary.
"""

from __future__ import annotations

from pathlib import Path

from attention_and_attribution.artefact_schema import ABLATION, BATTERY_ROW, HEAD_SUMMARY, LAYERS
from attention_and_attribution.reports.run_artefacts import AttributionModel
from layers_core.reports.csv_trim import keep_rows
from layers_core.reports.llm_pack import Source, TrimLevels, TrimStep, read_source
from layers_core.reports.prompt_pack import PromptPack
from layers_core.runs.artefacts import artefact_name

EXPERIMENT = "002_attention_and_attribution"  # its templates are in prompts/002_attention_and_attribution/
INLINED_CSVS = (HEAD_SUMMARY, ABLATION, LAYERS)


def drop_battery_facts(src: Source) -> tuple[Source, list[str]]:
    """A trim removing the JSON's ``battery.facts`` list (the battery's counts stay)."""
    facts = (src.summary.get("battery") or {}).get("facts")
    if not facts:
        return src, []
    battery = {k: v for k, v in src.summary["battery"].items() if k != "facts"}
    note = (f"{artefact_name(src.name, 'json')}: battery.facts removed ({len(facts)} entries; the battery's counts "
            "are kept).")
    return src.with_summary({**src.summary, "battery": battery}), [note]


def keep_ranks(n: int) -> TrimStep:
    """A trim keeping the head-summary rows of rank 1..n."""

    def step(src: Source) -> tuple[Source, list[str]]:
        table = src.tables.get(HEAD_SUMMARY)
        if table is None or len(table[1]) <= n:
            return src, []
        kept = keep_rows(table, lambda r: r.get("rank", "").isdigit() and int(r["rank"]) <= n)
        note = f"{artefact_name(src.name, HEAD_SUMMARY)}: only the heads of rank 1..{n} kept (of {len(table[1])})."
        return src.with_table(HEAD_SUMMARY, kept), [note]

    return step


TRIM_LEVELS: TrimLevels = ((), (drop_battery_facts,), (drop_battery_facts, keep_ranks(100)),
                           (drop_battery_facts, keep_ranks(30)))


def source_for(model: AttributionModel, run_dir: Path) -> Source:
    """The JSON and the small CSVs of one ok model, with the rows the template says are inlined."""
    src = read_source(model, run_dir, INLINED_CSVS)
    ablation = src.tables.get(ABLATION)
    if ablation is not None and any(r.get("prompt_id") == BATTERY_ROW for r in _records(ablation)):
        src = src.with_table(ABLATION, keep_rows(ablation, lambda r: r.get("prompt_id") == BATTERY_ROW))
    layers = src.tables.get(LAYERS)
    if layers is not None:
        src = src.with_table(LAYERS, keep_rows(layers, lambda r: r.get("prompt_id") == model.main_prompt_id))
    return src


def _records(table: tuple[list[str], list[list[str]]]) -> list[dict[str, str]]:
    return [dict(zip(table[0], row, strict=False)) for row in table[1]]


PACK = PromptPack(EXPERIMENT, source_for, TRIM_LEVELS)
