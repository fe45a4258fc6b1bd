"""Experiment 002's analysis of one loaded model: measure every prompt and fact, summarise, ablate, write.

The loop around it (load, skip or fail with a reason, write the JSON, free the
memory) is ``layers_core.runs.model_loop``; this module is only what 002
measures and writes.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from attention_and_attribution import artefact_rows, artefact_schema
from attention_and_attribution.ablation_run import run_ablation
from attention_and_attribution.answer_position_pass import DIRECTIONS, Measured, measure_items
from attention_and_attribution.artefact_schema import SUM_REL_LIMIT
from attention_and_attribution.battery_summary import RETRIEVAL_RULE, head_summary_rows, layers_summary, retrieval_heads
from attention_and_attribution.default_prompts import MAIN_PROMPT_ID
from attention_and_attribution.head_ablation import KS, SEEDS
from attention_and_attribution.prompt_items import PromptItem, prepare_items
from layers_core.lens.lens import Lens
from layers_core.models.architecture import ModelParts
from layers_core.prompts.answer_alignment import model_context_length
from layers_core.prompts.batching import pad_token_id
from layers_core.prompts.prompt_battery import PromptCase
from layers_core.prompts.token_text import TokenText
from layers_core.runs import artefacts
from layers_core.runs.model_loop import Analysis, ModelRun

FROZEN = (
    "the final norm's scale, measured on the last block's output in the same forward pass (every family); "
    "on Gemma 2/3 and OLMo-2 also each post-attention norm's scale, measured on the attention's whole output, "
    "which only splits a layer's attention row into head rows"
)


@dataclass(frozen=True)
class AttributionAnalysis:
    """What 002 measures on every model. Called by the model loop with each loaded model (``analysis(run)``)."""

    prompts: Sequence[PromptCase]
    facts: Sequence[PromptCase]
    battery_name: str | None
    foil: str | None
    ablation: bool = True

    def __call__(self, run: ModelRun) -> Analysis:
        """Analyse one loaded model and write its CSVs; return its JSON fields."""
        return _analyse(run, self)


def _analyse(run: ModelRun, spec: AttributionAnalysis) -> Analysis:
    loaded, parts = run.loaded, run.loaded.parts
    text = TokenText(loaded.tokenizer)
    items = prepare_items(
        loaded.tokenizer, spec.prompts, spec.facts, model_context_length(loaded.model.config), spec.foil
    )
    used = [item for item in items if item.used]
    lens = Lens(parts, mode="norm", fp32_unembed=loaded.plan.dtype != "float32")
    with tqdm(total=len(used), desc=run.name, unit="prompt", file=sys.stderr) as bar:
        measured = measure_items(loaded.model, parts, lens, used, pad_token_id(loaded.tokenizer), progress=bar.update)
    _write_tables(run, measured, text)

    facts = [m for m in measured if m.item.is_fact]
    over, summarised = ("battery", facts) if facts else ("prompts", [m for m in measured if not m.item.is_fact])
    summary = head_summary_rows(artefact_rows.head_arrays(summarised, parts.n_layers, parts.n_heads), parts.n_layers)
    artefacts.write_csv(run.artefact(artefact_schema.HEAD_SUMMARY), summary, artefact_schema.head_summary_columns())
    ablation = _ablation(run, summarised, summary, over) if spec.ablation else None
    attn, mlp = artefact_rows.layer_arrays(summarised, parts.n_layers)
    diagnostics = _diagnostics(parts, measured)
    document = {
        "diagnostics": diagnostics,
        "main_prompt_id": _main_prompt_id(items),
        "prompts": [_entry(item, measured, True, text) for item in items if not item.is_fact],
        "battery": _battery(spec.battery_name, items, measured, text),
        "head_summary_over": over,
        "retrieval_heads": retrieval_heads(summary),
        "retrieval_criterion": RETRIEVAL_RULE,
        "layers_summary": layers_summary(attn, mlp, parts.n_layers),
        "ablation": ablation,
    }
    warnings = []
    if diagnostics["max_sum_rel_error"] > SUM_REL_LIMIT:
        warnings.append(f"the attribution's sum is off by {diagnostics['max_sum_rel_error']:.3g} relative "
                        f"(limit {SUM_REL_LIMIT:g}); the decomposition may be wrong for this model")
    return Analysis(document=document, summary=_console_facts(document), warnings=warnings)


def _write_tables(run: ModelRun, measured: Sequence[Measured], text: TokenText) -> None:
    n_layers = run.loaded.parts.n_layers
    tables = (
        (artefact_schema.HEADS, artefact_rows.heads_rows, artefact_schema.heads_columns()),
        (artefact_schema.COMPONENTS, artefact_rows.components_rows, artefact_schema.components_columns()),
        (artefact_schema.LAYERS, artefact_rows.layers_rows, artefact_schema.layers_columns()),
    )
    for kind, rows_of, columns in tables:
        artefacts.write_csv(run.artefact(kind), [row for m in measured for row in rows_of(m, n_layers)], columns)
    rows = [row for m in measured if not m.item.is_fact for row in artefact_rows.attention_rows(m, text)]
    artefacts.write_csv(run.artefact(artefact_schema.ATTENTION), rows, artefact_schema.attention_columns())


def _ablation(
    run: ModelRun, summarised: Sequence[Measured], summary: list[dict[str, Any]], over: str
) -> dict[str, Any]:
    base: dict[str, Any] = {
        "over": over, "n_prompts": len(summarised), "position": "answer", "ks": list(KS), "seeds": list(SEEDS),
        "means_over": f"hook_z at the answer position, averaged over the {len(summarised)} {over} prompts ablated",
        "summary": [], "skipped_reason": None,
    }
    if len(summarised) < 2:
        base["skipped_reason"] = "a mean over one prompt is that prompt's own value; ablation needs 2 or more"
        artefacts.write_csv(run.artefact(artefact_schema.ABLATION), [], artefact_schema.ablation_columns())
        return base
    ranked = [(row["layer"], row["head"]) for row in sorted(summary, key=lambda row: row["rank"])]
    rows, entries = run_ablation(run.loaded, summarised, ranked, run.name)
    artefacts.write_csv(run.artefact(artefact_schema.ABLATION), rows, artefact_schema.ablation_columns())
    return {**base, "summary": entries}


def _entry(item: PromptItem, measured: Sequence[Measured], with_tokens: bool, text: TokenText) -> dict[str, Any]:
    found = next((m for m in measured if m.item.case.prompt_id == item.case.prompt_id
                  and m.item.is_fact == item.is_fact), None)
    if found is None:
        return artefact_rows.unused_entry(item, with_tokens, text)
    return artefact_rows.prompt_entry(found, with_tokens, text)


def _battery(name: str | None, items: Sequence[PromptItem], measured: Sequence[Measured],
             text: TokenText) -> dict[str, Any] | None:
    facts = [item for item in items if item.is_fact]
    if not facts:
        return None
    entries = [_entry(item, measured, False, text) for item in facts]
    return {
        "name": name, "n_facts": len(facts), "n_used": sum(entry["used"] for entry in entries),
        "n_final_top1_correct": sum(bool(entry.get("final_top1_is_answer")) for entry in entries),
        "facts": entries,
    }


def _main_prompt_id(items: Sequence[PromptItem]) -> str:
    ids = [item.case.prompt_id for item in items if not item.is_fact and item.used]
    if not ids:
        ids = [item.case.prompt_id for item in items if item.used]
    return MAIN_PROMPT_ID if MAIN_PROMPT_ID in ids else ids[0]


def _diagnostics(parts: ModelParts, measured: Sequence[Measured]) -> dict[str, Any]:
    errors = [m.attributions[name] for m in measured for name in DIRECTIONS]
    return {
        "n_layers": parts.n_layers, "n_heads": parts.n_heads, "n_kv_heads": parts.n_kv_heads,
        "d_model": parts.d_model, "d_head": parts.d_head, "vocab_size": parts.vocab_size,
        "final_logit_softcap": parts.final_logit_softcap,
        "max_sum_error": max(abs(a.error) for a in errors),
        "max_sum_rel_error": max(abs(a.error) / max(1.0, abs(a.model_value)) for a in errors),
        "frozen": FROZEN,
    }


def _console_facts(document: dict[str, Any]) -> dict[str, Any]:
    main = next(p for p in document["prompts"] + (document["battery"] or {}).get("facts", [])
                if p["prompt_id"] == document["main_prompt_id"])
    return {
        "main_prompt_id": main["prompt_id"],
        "model_logit_diff": main.get("model_logit_diff"),
        "top_heads": main.get("top_heads", []),
        "retrieval_heads": document["retrieval_heads"],
        "max_sum_rel_error": document["diagnostics"]["max_sum_rel_error"],
    }
