"""Markdown about one model as a whole: identity, the category texts, and provenance, as stored."""

from __future__ import annotations

import json
from typing import Any

from layers_core.reports.formats import fmt_exact, fmt_text
from layers_core.reports.markdown import md_table
from sae_features.reports.run_artefacts import SaeModel


def _value(value: Any) -> str:
    if isinstance(value, dict | list):
        return fmt_text(json.dumps(value, ensure_ascii=False, sort_keys=True)) if value else "none"
    return fmt_text(fmt_exact(value))


def setup_section(model: SaeModel) -> str:
    """Model identity, layers, SAEs, the categories and provenance."""
    info, prov = model.summary.get("model") or {}, model.summary.get("provenance") or {}
    fields: list[tuple[str, Any]] = [
        ("Model spec", info.get("spec")), ("Artefact name", info.get("name")), ("Kind", info.get("kind")),
        ("Architecture", info.get("architecture")), ("model_type", info.get("model_type")),
        ("Layers (L, from the SAEs' depths)", model.n_layers), ("SAEs", len(model.saes)),
        ("Categories (texts)", model.categories), ("Quality thresholds", model.summary.get("quality_thresholds")),
        ("Specialist rule", model.specialist_rule), ("Rules", model.summary.get("rules"))]
    fields += list(prov.items())
    return "## Model and set-up\n\n" + md_table(["Field", "Value"], [[k, _value(v)] for k, v in fields])
