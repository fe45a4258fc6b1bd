"""One model through experiment 001: load, analyse every prompt, measure, write its artefacts.

A model that cannot run (too large, not found, a prompt it cannot read) still
leaves ``output-<name>.json`` with ``status`` and ``reason``; the other models
go on. Memory is released before the next model loads.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from layers_core import artefacts
from layers_core.answer_alignment import model_context_length
from layers_core.architecture import ModelParts, model_parts
from layers_core.errors import ModelTooLargeError, TinycaveError
from layers_core.lens import Lens
from layers_core.loading import LoadedModel, free_model, load_model
from layers_core.model_spec import ModelSpec
from layers_core.prompt_battery import MAIN_PROMPT_ID, PromptCase, apply_chat_template
from layers_core.provenance import run_provenance
from layers_core.reproducibility import SEED, determinism_settings
from layers_core.token_text import TokenText
from lens_run.arguments import RunOptions
from lens_run.device_check import check_against_cpu
from lens_run.fact_battery import fact_rows, facts_summary, run_fact_battery
from lens_run.prompt_analysis import (
    PromptResult, analyse_prompt, prompt_summary, pure_next_token_rows, record_rows,
)

SCHEMA_VERSION = 1
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ModelOutcome:
    """What the console summary needs to know about one model's run."""

    name: str
    status: str  # "ok" | "skipped" | "failed"
    reason: str | None = None
    summary: dict = field(default_factory=dict)


def output_paths(run_dir: Path, name: str) -> dict[str, Path]:
    """The artefact files of one model."""
    return {
        "json": run_dir / f"output-{name}.json",
        "pure": run_dir / f"output-{name}-pure-next-token.csv",
        "records": run_dir / f"output-{name}-records.csv",
        "facts": run_dir / f"output-{name}-facts.csv",
    }


def run_model(
    spec: ModelSpec, name: str, cases: Sequence[PromptCase], facts: Sequence[PromptCase],
    options: RunOptions, run_dir: Path, battery_name: str | None,
) -> ModelOutcome:
    """Run experiment 001 on one model and write its artefacts into ``run_dir``."""
    paths = output_paths(run_dir, name)
    model_entry = {"spec": spec.text, "name": name, "kind": spec.kind}
    started = time.time()
    provenance = {
        **run_provenance(REPO_ROOT, argv=sys.argv[1:]),
        "seed": SEED, "determinism": determinism_settings(), "lens_mode": options.lens_mode,
    }
    try:
        loaded = load_model(
            spec, device=options.device, dtype=options.dtype, trust_remote_code=options.trust_remote_code
        )
    except ModelTooLargeError as err:
        return _write_not_run(paths["json"], model_entry, provenance, "skipped", err.message, name)
    except TinycaveError as err:
        return _write_not_run(paths["json"], model_entry, provenance, "failed", err.message, name)
    try:
        return _analyse_loaded(loaded, model_entry, provenance, cases, facts, options, paths, battery_name, started)
    except TinycaveError as err:
        return _write_not_run(paths["json"], model_entry, provenance, "failed", err.message, name)
    except (RuntimeError, ValueError, OSError) as err:
        # An unexpected failure of this model (out of memory, a kernel missing on this device):
        # keep its traceback beside the artefacts, record it, and let the other models run.
        log = run_dir / f"error-{name}.log"
        log.write_text("".join(traceback.format_exception(err)), encoding="utf-8")
        reason = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''} (details in {log.name})"
        return _write_not_run(paths["json"], model_entry, provenance, "failed", reason, name)
    finally:
        free_model(loaded)


def _write_not_run(json_path: Path, model_entry: dict, provenance: dict, status: str, reason: str, name: str) -> ModelOutcome:
    print(f"{name}: {status}: {reason}", file=sys.stderr)
    artefacts.write_json(json_path, {
        "schema_version": SCHEMA_VERSION, "status": status, "reason": reason,
        "model": model_entry, "provenance": provenance,
    })
    return ModelOutcome(name=name, status=status, reason=reason)


def _analyse_loaded(
    loaded: LoadedModel, model_entry: dict, provenance: dict, cases: Sequence[PromptCase],
    facts: Sequence[PromptCase], options: RunOptions, paths: dict[str, Path],
    battery_name: str | None, started: float,
) -> ModelOutcome:
    model, tokenizer, plan = loaded.model, loaded.tokenizer, loaded.plan
    parts = model_parts(model)
    fp32_unembed = options.fp32_unembed or plan.dtype != "float32"
    lens = Lens(parts, mode=options.lens_mode, fp32_unembed=fp32_unembed)
    head = lens if options.lens_mode == "norm" else Lens(parts, mode="norm", fp32_unembed=fp32_unembed)
    text = TokenText(tokenizer)
    context = model_context_length(model.config)
    if options.chat:
        cases = [apply_chat_template(tokenizer, case) for case in cases]

    results: list[PromptResult] = []
    with tqdm(total=len(cases) + len(facts), desc=model_entry["name"], unit="prompt", file=sys.stderr) as bar:
        for case in cases:
            results.append(analyse_prompt(model, tokenizer, parts, lens, head, case, context))
            bar.update(1)
        fact_results = run_fact_battery(model, tokenizer, parts, lens, facts, context, progress=bar.update) if facts else []

    n_layers = parts.n_layers
    artefacts.write_csv(
        paths["pure"], [row for r in results for row in pure_next_token_rows(r, n_layers, text)],
        artefacts.pure_next_token_columns(),
    )
    artefacts.write_csv(
        paths["records"], [row for r in results for row in record_rows(r, n_layers, text)],
        artefacts.records_columns(),
    )
    if fact_results:
        artefacts.write_csv(paths["facts"], fact_rows(fact_results, n_layers, text), artefacts.facts_columns())

    main_id = _main_prompt_id(cases)
    consistency = _worst_consistency(results)
    device_check = (
        check_against_cpu(loaded, _case(cases, main_id), options.trust_remote_code) if options.check_device else None
    )
    provenance.update({
        "device": plan.device, "dtype": plan.dtype, "device_reason": plan.reason,
        "device_warnings": list(plan.warnings), "fp32_unembed": fp32_unembed,
        "load": loaded.source, "seconds": round(time.time() - started, 3),
    })
    document = {
        "schema_version": SCHEMA_VERSION, "status": "ok", "reason": None,
        "model": {**model_entry, "architecture": type(model).__name__, "model_type": model.config.model_type},
        "provenance": provenance,
        "diagnostics": _diagnostics(parts, lens, consistency, device_check),
        "main_prompt_id": main_id,
        "prompts": [prompt_summary(r, n_layers, text) for r in results],
        "facts": facts_summary(battery_name, fact_results, n_layers, text) if fact_results else None,
    }
    artefacts.write_json(paths["json"], document)
    if consistency["warning"]:
        print(f"WARNING {model_entry['name']}: {consistency['warning']}", file=sys.stderr)
    return ModelOutcome(name=model_entry["name"], status="ok", summary=_console_facts(document))


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
