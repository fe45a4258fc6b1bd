"""Markdown sections about one model as a whole: identity and set-up, and the sum check."""

from __future__ import annotations

import json
from typing import Any

from attention_and_attribution.artefact_schema import SUM_REL_LIMIT
from attention_and_attribution.reports.run_artefacts import AttributionModel
from layers_core.reports.formats import fmt_exact, fmt_text
from layers_core.reports.markdown import md_table


def _value(value: Any) -> str:
    if isinstance(value, dict | list):
        return fmt_text(json.dumps(value, ensure_ascii=False, sort_keys=True)) if value else "none"
    return fmt_text(fmt_exact(value))


def _softcap(value: Any) -> str:
    return "none (the model has no final-logit softcap)" if value is None else fmt_exact(value)


def sum_check_passed(diagnostics: dict[str, Any]) -> bool:
    """True when the largest relative sum error is recorded and below ``SUM_REL_LIMIT``."""
    rel = diagnostics.get("max_sum_rel_error")
    return isinstance(rel, int | float) and rel < SUM_REL_LIMIT


def sum_check_section(model: AttributionModel) -> str:
    """The check that the components add up to the model's own logits."""
    diag = model.diagnostics
    intro = ("The embedding, every layer's attention and MLP, the biases and the final constant row must add up "
             "to the model's own logit (and answer - foil difference) on every prompt; head rows split the "
             "attention rows and are not counted twice.")
    verdict = (f"Largest error over the prompts, both directions: {fmt_exact(diag.get('max_sum_error'))} logits "
               f"(relative {fmt_exact(diag.get('max_sum_rel_error'))}).")
    if not sum_check_passed(diag):
        verdict = (f"> **WARNING: the components do not add up to the model's logits** (relative error "
                   f"{fmt_exact(diag.get('max_sum_rel_error'))}, the run warns from {SUM_REL_LIMIT:g}): every "
                   "attribution below is suspect.\n\n" + verdict)
    rows = [["What is frozen", _value(diag.get("frozen"))],
            ["Final-logit softcap (attributed before it)", _softcap(diag.get("final_logit_softcap"))]]
    return "\n\n".join(["## Sum check", intro, verdict, md_table(["Field", "Value"], rows)])


def setup_section(model: AttributionModel) -> str:
    """Model identity, shapes and provenance."""
    info, prov, diag = model.summary.get("model") or {}, model.summary.get("provenance") or {}, model.diagnostics
    fields = [("Model spec", info.get("spec")), ("Artefact name", info.get("name")), ("Kind", info.get("kind")),
              ("Architecture", info.get("architecture")), ("model_type", info.get("model_type")),
              ("Layers (L)", diag.get("n_layers")), ("Heads per layer", diag.get("n_heads")),
              ("Key/value heads", diag.get("n_kv_heads")), ("d_model", diag.get("d_model")),
              ("d_head", diag.get("d_head")), ("Vocabulary", diag.get("vocab_size"))]
    fields += [(key, value) for key, value in prov.items()]
    return "## Model and set-up\n\n" + md_table(["Field", "Value"], [[k, _value(v)] for k, v in fields])
