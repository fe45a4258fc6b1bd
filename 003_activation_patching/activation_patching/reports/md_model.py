"""Markdown about one model as a whole: identity, shapes, the noise used, and provenance."""

from __future__ import annotations

import json
from typing import Any

from activation_patching.reports.run_artefacts import PatchingModel
from layers_core.reports.formats import fmt_exact, fmt_text
from layers_core.reports.markdown import md_table


def _value(value: Any) -> str:
    if isinstance(value, dict | list):
        return fmt_text(json.dumps(value, ensure_ascii=False, sort_keys=True)) if value else "none"
    return fmt_text(fmt_exact(value))


def setup_section(model: PatchingModel) -> str:
    """Model identity, shapes, the pairs' source, the noise and provenance, as stored."""
    info, prov, diag = model.summary.get("model") or {}, model.summary.get("provenance") or {}, model.diagnostics
    fields = [("Model spec", info.get("spec")), ("Artefact name", info.get("name")), ("Kind", info.get("kind")),
              ("Architecture", info.get("architecture")), ("model_type", info.get("model_type")),
              ("Layers (L)", diag.get("n_layers")), ("Heads per layer", diag.get("n_heads")),
              ("d_model", diag.get("d_model")), ("Vocabulary", diag.get("vocab_size")),
              ("Prompt lengths (tokens)", diag.get("prompt_lengths")), ("Rows per batch", diag.get("rows_per_batch")),
              ("Pairs from", model.summary.get("pairs_source")), ("Noise", model.summary.get("noise"))]
    fields += [(key, value) for key, value in prov.items()]
    return "## Model and set-up\n\n" + md_table(["Field", "Value"], [[k, _value(v)] for k, v in fields])
