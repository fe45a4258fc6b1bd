"""Experiment 001's analysis of one loaded model: every prompt and fact through the lens, then its artefacts.

The loop around it (load, skip or fail with a reason, write the JSON, free the
memory) is ``layers_core.runs.model_loop``; this module is only what 001
measures and writes.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

from tqdm import tqdm

from layers_and_logits import artefact_schema
from layers_and_logits.default_prompts import MAIN_PROMPT_ID
from layers_and_logits.device_check import check_against_cpu
from layers_and_logits.fact_battery import fact_rows, facts_summary, run_fact_battery
from layers_and_logits.lens_comparison import battery_rank1, comparison_document, lens_kl_rows
from layers_and_logits.prompt_analysis import (
    PromptResult,
    analyse_prompt,
    prompt_summary,
    pure_next_token_rows,
    record_rows,
)
from layers_core.lens.fit_progress import stderr_progress
from layers_core.lens.fitted_lens import FittedLens, fitted_lenses, heldout_windows
from layers_core.lens.lens import Lens
from layers_core.lens.translators import LENS_KINDS
from layers_core.models.architecture import ModelParts
from layers_core.prompts.prompt_battery import PromptCase, apply_chat_template
from layers_core.prompts.token_text import TokenText
from layers_core.runs import artefacts
from layers_core.runs.model_loop import Analysis, ModelRun


@dataclass(frozen=True)
class LensAnalysis:
    """What 001 measures on every model: the prompts, the fact battery, the lens and its checks.

    Called by the model loop with each loaded model (``analysis(run)``).
    """

    cases: Sequence[PromptCase]
    facts: Sequence[PromptCase]
    battery_name: str | None
    lens_mode: str
    fp32_unembed: bool
    chat: bool
    check_device: bool

    def __call__(self, run: ModelRun) -> Analysis:
        """Analyse one loaded model and write its CSVs; return its JSON fields."""
        return _analyse(run, self)


def _analyse(run: ModelRun, spec: LensAnalysis) -> Analysis:
    loaded = run.loaded
    parts = loaded.parts
    fp32_unembed = spec.fp32_unembed or loaded.plan.dtype != "float32"
    fits = _fitted_lenses(run, spec.lens_mode)
    maps = fits[spec.lens_mode].maps if spec.lens_mode in fits else None
    lens = Lens(parts, mode=spec.lens_mode, fp32_unembed=fp32_unembed, maps=maps)
    head = lens if spec.lens_mode == "norm" else Lens(parts, mode="norm", fp32_unembed=fp32_unembed)
    text = TokenText(loaded.tokenizer)
    cases = [apply_chat_template(loaded.tokenizer, case) for case in spec.cases] if spec.chat else list(spec.cases)
    facts = spec.facts

    results: list[PromptResult] = []
    with tqdm(total=len(cases) + len(facts), desc=run.name, unit="prompt", file=sys.stderr) as bar:
        for case in cases:
            results.append(analyse_prompt(loaded, lens, head, case))
            bar.update(1)
        fact_results = run_fact_battery(loaded, lens, facts, progress=bar.update) if facts else []

    n_layers = parts.n_layers
    artefacts.write_csv(
        run.artefact(artefact_schema.PURE_NEXT_TOKEN),
        [row for r in results for row in pure_next_token_rows(r, n_layers, text)],
        artefact_schema.pure_next_token_columns(),
    )
    artefacts.write_csv(
        run.artefact(artefact_schema.RECORDS), [row for r in results for row in record_rows(r, n_layers, text)],
        artefact_schema.records_columns(),
    )
    if fact_results:
        artefacts.write_csv(
            run.artefact(artefact_schema.FACTS), fact_rows(fact_results, n_layers, text),
            artefact_schema.facts_columns(),
        )

    main_id = _main_prompt_id(cases)
    consistency = _worst_consistency(results)
    device_check = (
        check_against_cpu(loaded, _case(cases, main_id), run.options.trust_remote_code)
        if spec.check_device else None
    )
    facts_entry = facts_summary(spec.battery_name, fact_results, n_layers, text) if fact_results else None
    document = {
        "diagnostics": _diagnostics(parts, lens, consistency, device_check),
        "main_prompt_id": main_id,
        "prompts": [prompt_summary(r, n_layers, text) for r in results],
        "facts": facts_entry,
        "lens_comparison": _compare_lenses(run, spec, fits, head, lens, facts_entry) if fits else None,
    }
    return Analysis(
        document=document,
        provenance={"fp32_unembed": fp32_unembed},
        summary=_console_facts(document),
        warnings=[consistency["warning"]] if consistency["warning"] else [],
    )


def _fitted_lenses(run: ModelRun, lens_mode: str) -> dict[str, FittedLens]:
    """The fitted maps a tuned or linear run needs (the tuned lens's run compares the linear shortcut too)."""
    if lens_mode not in LENS_KINDS:
        return {}
    def status(line: str) -> None:
        print(f"{run.name}: {line}", file=sys.stderr)

    fits = fitted_lenses(run.loaded, lens_mode, progress=stderr_progress(), status=status)
    return {str(kind): fit for kind, fit in fits.items()}


def _compare_lenses(run: ModelRun, spec: LensAnalysis, fits: dict[str, FittedLens], norm: Lens, run_lens: Lens,
                    facts_entry: dict | None) -> dict:
    """Every lens on held-out text and on the battery; writes the lens-kl CSV, returns the JSON entry.

    The run's own lens is the one the prompts and the battery were decoded with: its battery depths are
    taken from ``facts_entry`` rather than measured again.
    """
    loaded = run.loaded
    lenses = {"norm": norm, **{kind: run_lens if kind == run_lens.mode else
                               Lens(loaded.parts, mode=kind, fp32_unembed=norm.upcast, maps=fit.maps)
                               for kind, fit in fits.items()}}
    windows = heldout_windows(loaded)
    rows = lens_kl_rows(loaded, lenses, windows)
    artefacts.write_csv(run.artefact(artefact_schema.LENS_KL), rows, artefact_schema.lens_kl_columns())
    known = {run_lens.mode: facts_entry["milestones"]["first_rank1"]} if facts_entry else {}
    battery = battery_rank1(loaded, lenses, spec.facts, spec.battery_name, known) if spec.facts else None
    return comparison_document(rows, fits, loaded.parts.n_layers, battery, int(windows.numel()))


def _main_prompt_id(cases: Sequence[PromptCase]) -> str:
    ids = [case.prompt_id for case in cases]
    return MAIN_PROMPT_ID if MAIN_PROMPT_ID in ids else ids[0]


def _case(cases: Sequence[PromptCase], prompt_id: str) -> PromptCase:
    return next(case for case in cases if case.prompt_id == prompt_id)


def _worst_consistency(results: Sequence[PromptResult]) -> dict:
    """The prompt whose last-layer lens is furthest from the model's own output."""
    worst = max(results, key=lambda r: (not r.consistency["top1_agree"], r.consistency["kl_bits"]))
    return {**worst.consistency, "prompt_id": worst.case.prompt_id, "n_prompts_checked": len(results)}


def _diagnostics(parts: ModelParts, lens: Lens, consistency: dict, device_check: dict | None) -> dict:
    return {
        "n_layers": parts.n_layers,
        "d_model": parts.d_model,
        "vocab_size": parts.vocab_size,
        "norm_type": parts.norm_type,
        "final_transform": {"softcap": parts.final_logit_softcap, "logit_multiplier": parts.logit_multiplier},
        "architecture_parts": parts.describe(),
        "lens": lens.describe(),
        "last_layer_consistency": consistency,
        "device_check": device_check,
    }


def _console_facts(document: dict) -> dict:
    main = next(p for p in document["prompts"] if p["prompt_id"] == document["main_prompt_id"])
    facts = document["facts"]
    return {
        "main_prompt_id": main["prompt_id"],
        "first_rank1": main["milestones"]["first_rank1"],
        "n_layers": document["diagnostics"]["n_layers"],
        "final_top1": main["final_prediction"]["top"][0],
        "consistency_kl_bits": document["diagnostics"]["last_layer_consistency"]["kl_bits"],
        "consistency_ok": document["diagnostics"]["last_layer_consistency"]["ok"],
        "facts_first_rank1": None if facts is None else facts["milestones"]["first_rank1"],
    }
