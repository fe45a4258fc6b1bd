"""Experiment 003's analysis of one loaded model: choose the pairs, sweep them, summarise the battery, write.

Outline: the pairs (``pair_selection``); the full sweep grids (``sweeps.sweep_pair``
over ``patch_specs.sweep_specs``) for the first ``full_pairs`` of them; for every
pair the cheap sweep of the residual at the subject's last token and at the answer
position (``battery_sweep``); the battery's medians and handover layer
(``battery_medians``); attribution patching on the fully swept pairs, beside the
exact values, with its agreement (``attribution_sweep``); 001's and 002's depth
measures on the same clean prompts (``depth_comparison``); the CSVs; the JSON fields. The loop around it (load, skip or
fail with a reason, write the JSON, free the memory) is ``layers_core.runs.model_loop``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from activation_patching import artefact_schema
from activation_patching.arguments import CustomPairText
from activation_patching.attribution_patching import correlation
from activation_patching.attribution_sweep import Method, attribute_pair, attribution_rows
from activation_patching.batch_memory import patching_budget, rows_per_batch
from activation_patching.battery_medians import HANDOVER_RULE, MIN_GAP_LOGITS, battery_summary, resolvable
from activation_patching.battery_sweep import battery_rows, battery_specs, subject_position, unpatched_restorations
from activation_patching.depth_comparison import PromptDepths, measure_pairs, summarise
from activation_patching.pair_selection import PairChoice, PreparedPair, battery_choice, custom_choice
from activation_patching.patch_specs import PatchSpec, sweep_specs
from activation_patching.sweeps import PairSweep, sweep_pair
from layers_core.errors import PromptError
from layers_core.prompts.answer_alignment import model_context_length
from layers_core.prompts.prompt_battery import PromptCase
from layers_core.prompts.token_text import TokenText
from layers_core.runs import artefacts
from layers_core.runs.model_loop import Analysis, ModelRun

# Written beside the exact values in the attribution CSV (GradDrop is not run: see _attribution).
ATTRIBUTION_METHODS: tuple[Method, ...] = ("approx", "approx_ig")


@dataclass(frozen=True)
class PatchingAnalysis:
    """What 003 measures on every model. Called by the model loop with each loaded model (``analysis(run)``)."""

    custom: CustomPairText | None
    facts: Sequence[PromptCase]
    battery_name: str | None
    full_pairs: int = 1

    def __call__(self, run: ModelRun) -> Analysis:
        """Analyse one loaded model and write its CSVs; return its JSON fields."""
        return _analyse(run, self)


def _analyse(run: ModelRun, spec: PatchingAnalysis) -> Analysis:
    parts, text = run.loaded.parts, TokenText(run.loaded.tokenizer)
    choice = _choose(run, spec)
    full = choice.pairs[: spec.full_pairs]
    started = time.perf_counter()
    full_sweeps = [(prepared, _sweep(run, prepared, sweep_specs(parts, len(prepared.pair.clean_ids)), text))
                   for prepared in full]
    full_seconds = time.perf_counter() - started
    started = time.perf_counter()
    cheap = _battery_sweeps(run, choice.pairs, text)
    battery_seconds = time.perf_counter() - started
    started = time.perf_counter()
    attribution, agreement = _attribution(run, full_sweeps)
    attribution_seconds = time.perf_counter() - started
    started = time.perf_counter()
    depths = measure_pairs(run.loaded.model, parts, [prepared.pair for prepared in choice.pairs])
    depth_seconds = time.perf_counter() - started
    battery = _write_tables(run, full_sweeps, cheap, attribution, text)

    full_ids = [prepared.pair.pair_id for prepared in full]
    usable = {prepared.pair.pair_id for prepared, sweep in cheap if _resolvable(sweep)}
    usable_ids = [prepared.pair.pair_id for prepared, _ in cheap if prepared.pair.pair_id in usable]
    document = {
        "diagnostics": _diagnostics(run, choice),
        "pairs_source": "custom" if spec.custom is not None else spec.battery_name,
        "pairs": [_pair_entry(run, prepared, sweep, prepared.pair.pair_id in full_ids, text,
                              depths[prepared.pair.pair_id]) for prepared, sweep in cheap],
        "refused": choice.refused,
        "noise": choice.noise,
        "full_sweeps": full_ids,
        "battery": _battery_document(battery, usable, parts.n_layers),
        "attribution": {"methods": list(ATTRIBUTION_METHODS), "agreement": agreement},
        "depth_comparison": summarise(depths, usable_ids, parts.n_layers),
    }
    timing = {"full_sweep_seconds": round(full_seconds, 3), "battery_sweep_seconds": round(battery_seconds, 3),
              "attribution_seconds": round(attribution_seconds, 3), "depth_seconds": round(depth_seconds, 3)}
    return Analysis(document=document, provenance=timing, summary=_console_facts(document, timing),
                    warnings=_warnings(document))


def _write_tables(
    run: ModelRun, full_sweeps: Sequence[tuple[PreparedPair, PairSweep]],
    cheap: Sequence[tuple[PreparedPair, PairSweep]], attribution: list[dict[str, Any]], text: TokenText,
) -> list[dict[str, Any]]:
    """Write the three CSVs; return the battery rows (the medians are taken from them)."""
    patching = [row.as_dict() for _, sweep in full_sweeps for row in sweep.rows]
    battery = [row for prepared, sweep in cheap for row in battery_rows(prepared.pair, sweep, text)]
    artefacts.write_csv(run.artefact(artefact_schema.PATCHING), patching, artefact_schema.patching_columns())
    artefacts.write_csv(run.artefact(artefact_schema.BATTERY), battery, artefact_schema.battery_columns())
    artefacts.write_csv(run.artefact(artefact_schema.ATTRIBUTION), attribution,
                        artefact_schema.attribution_columns())
    return battery


def _choose(run: ModelRun, spec: PatchingAnalysis) -> PairChoice:
    loaded = run.loaded
    if spec.custom is not None:
        return custom_choice(loaded.tokenizer, spec.custom, model_context_length(loaded.model.config))
    choice = battery_choice(loaded.model, loaded.parts, loaded.tokenizer, spec.facts)
    if not choice.pairs:
        reasons = "; ".join(f"{entry['prompt_id']}: {entry['reason']}" for entry in choice.refused[:3])
        raise PromptError(f"no battery fact could be paired or noised ({reasons or 'the battery is empty'})")
    return choice


def _batch_size(run: ModelRun, seq_len: int) -> int:
    plan = run.loaded.plan
    return rows_per_batch(run.loaded.parts, seq_len, plan.torch_dtype(), patching_budget(plan))


def _sweep(run: ModelRun, prepared: PreparedPair, specs: Sequence[PatchSpec], text: TokenText) -> PairSweep:
    pair = prepared.pair
    return sweep_pair(run.loaded.model, run.loaded.parts, pair, specs, text, _batch_size(run, len(pair.clean_ids)),
                      corrupt_patches=prepared.corrupt_patches)


def _battery_sweeps(run: ModelRun, pairs: Sequence[PreparedPair], text: TokenText
                    ) -> list[tuple[PreparedPair, PairSweep]]:
    n_layers, done = run.loaded.parts.n_layers, []
    with tqdm(total=len(pairs), desc=run.name, unit="pair", file=sys.stderr) as bar:
        for prepared in pairs:
            done.append((prepared, _sweep(run, prepared, battery_specs(prepared.pair, n_layers), text)))
            bar.update()
    return done


def _attribution(
    run: ModelRun, full_sweeps: Sequence[tuple[PreparedPair, PairSweep]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Attribution patching on every fully swept pair: the CSV rows, and its agreement with exact patching.

    GradDrop (``atp_star.grad_drop_scores``) is left out of the run: it costs L backward passes
    and did not improve the agreement on the bundled models (NOTES.md).
    """
    model, parts = run.loaded.model, run.loaded.parts
    rows: list[dict[str, Any]] = []
    agreement: list[dict[str, Any]] = []
    for prepared, sweep in full_sweeps:
        pair = prepared.pair
        found = attribute_pair(model, parts, pair, sweep_specs(parts, len(pair.clean_ids)),
                               corrupt_patches=prepared.corrupt_patches, methods=ATTRIBUTION_METHODS)
        pair_rows = attribution_rows(sweep.rows, found.estimates)
        rows += pair_rows
        agreement += _agreement(pair.pair_id, pair_rows, found.seconds)
    return rows, agreement


def _agreement(pair_id: str, rows: Sequence[dict[str, Any]], seconds: Mapping[Method, float]) -> list[dict[str, Any]]:
    """Pearson r of each method with exact patching, per direction and component (and over all sites)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["direction"], row["component"]), []).append(row)
        groups.setdefault((row["direction"], "all"), []).append(row)
    return [
        {
            "pair_id": pair_id, "direction": direction, "component": component, "n_sites": len(members),
            **{f"r_{method}": correlation([m["exact"] for m in members], [m[method] for m in members])
               for method in ATTRIBUTION_METHODS},
            **{f"seconds_{method}": round(seconds[method], 3) for method in ATTRIBUTION_METHODS},
        }
        for (direction, component), members in sorted(groups.items())
    ]


def _resolvable(sweep: PairSweep) -> bool:
    return resolvable(sweep.metric.clean_diff, sweep.metric.corrupt_diff)


def _pair_entry(run: ModelRun, prepared: PreparedPair, sweep: PairSweep, full: bool, text: TokenText,
                depths: PromptDepths) -> dict[str, Any]:
    pair, metric = prepared.pair, sweep.metric
    # The baselines' check costs three passes; the full-swept pairs carry it (the code path is the same for all).
    unpatched = (unpatched_restorations(run.loaded.model, run.loaded.parts, pair, prepared.corrupt_patches, metric)
                 if full else None)
    return {
        "pair_id": pair.pair_id, "corruption": pair.corruption, "clean_prompt": pair.clean_prompt,
        "corrupt_prompt": pair.corrupt_prompt, "n_tokens": len(pair.clean_ids),
        "corrupt_positions": list(pair.corrupt_positions), "subject_position": subject_position(pair),
        "answer_token": text(pair.answer_id), "corrupt_answer_token": text(pair.corrupt_answer_id),
        "corrupt_answer_rule": prepared.corrupt_answer_rule,
        "clean_logit_diff": metric.clean_diff, "corrupt_logit_diff": metric.corrupt_diff,
        "gap": metric.clean_diff - metric.corrupt_diff, "resolvable": _resolvable(sweep),
        "unpatched_restoration": unpatched, "full_sweep": full,
        "clean_first_rank1_layer": depths.first_rank1_layer,
    }


def _battery_document(rows: Sequence[dict[str, Any]], usable: set[str], n_layers: int) -> dict[str, Any]:
    summaries = battery_summary(rows, usable, n_layers)
    headline = summaries[0] if summaries else None
    return {
        "min_gap_logits": MIN_GAP_LOGITS, "n_pairs_resolvable": len(usable), "handover_rule": HANDOVER_RULE,
        "handover": None if headline is None else {"corruption": headline["corruption"], **headline["handover"]},
        "summaries": summaries,
    }


def _diagnostics(run: ModelRun, choice: PairChoice) -> dict[str, Any]:
    parts = run.loaded.parts
    lengths = sorted({len(prepared.pair.clean_ids) for prepared in choice.pairs})
    return {
        "n_layers": parts.n_layers, "n_heads": parts.n_heads, "d_model": parts.d_model,
        "vocab_size": parts.vocab_size, "prompt_lengths": lengths,
        "rows_per_batch": {str(n): _batch_size(run, n) for n in lengths},
    }


def _console_facts(document: dict[str, Any], timing: dict[str, float]) -> dict[str, Any]:
    pairs = document["pairs"]
    return {
        "n_layers": document["diagnostics"]["n_layers"],
        "n_swap": sum(p["corruption"] == "swap" for p in pairs),
        "n_noise": sum(p["corruption"] == "noise" for p in pairs),
        "n_refused": len(document["refused"]), "n_resolvable": document["battery"]["n_pairs_resolvable"],
        "handover": document["battery"]["handover"], "full_sweeps": document["full_sweeps"], **timing,
    }


def _warnings(document: dict[str, Any]) -> list[str]:
    small = [p["pair_id"] for p in document["pairs"] if not p["resolvable"]]
    if not small:
        return []
    return [f"{len(small)} pair(s) separate clean and corrupted by less than {MIN_GAP_LOGITS} logits and are left "
            f"out of the battery medians: {', '.join(small[:5])}{' ...' if len(small) > 5 else ''}"]
