"""Markdown of where each SAE comes from: trained here, a local folder, or a SAELens release (with Neuronpedia).

A release SAE was trained on the model SAELens's directory names (``source.model``).
When this run loaded something else under another name (a bundled GGUF alias, a GGUF
file, a local folder, another hub id), the section says so: if it is the same model
in another form, quantization shifts its residual activations a little, so the SAE
reads inputs slightly off the distribution it was trained on. Nothing here checks
that the weights are the same; the SAE's quality on held-out text measures the cost.
"""

from __future__ import annotations

from typing import Any

from layers_core.reports.formats import fmt_at, fmt_text
from layers_core.reports.markdown import md_table
from sae_features.reports.md_common import NEURONPEDIA, fmt_count, neuronpedia_id

QUANTIZED_KINDS = {"bundled": "a bundled GGUF file (quantized weights, dequantized to load)",
                   "gguf": "a GGUF file (quantized weights, dequantized to load)"}


def _code(value: Any) -> str:
    return f"`{fmt_text(str(value))}`"


def _trained(source: dict[str, Any], d_sae: Any) -> str:
    recipe = dict(source.get("recipe") or {})
    return (f"trained here: {fmt_text(str(recipe.get('architecture', 'n/a')))}, k {recipe.get('k', 'n/a')}, "
            f"expansion {recipe.get('expansion', 'n/a')} ({fmt_count(d_sae)} features), "
            f"{fmt_count(recipe.get('tokens'))} tokens of the corpus {_code(source.get('corpus', 'n/a'))}; cache: "
            f"{fmt_text(str(source.get('cache', 'n/a')))}; folder {_code(source.get('folder', 'n/a'))}")


def _release(source: dict[str, Any]) -> str:
    text = (f"SAELens release {_code(source.get('release'))}, id {_code(source.get('sae_id'))} (repository "
            f"{_code(source.get('repo_id', 'n/a'))}), trained on {_code(source.get('model', 'n/a'))}")
    site = neuronpedia_id({"source": source})
    return text + (f"; Neuronpedia: [{fmt_text(site)}]({NEURONPEDIA}/{site})" if site else "; not on Neuronpedia")


def describe_source(entry: dict[str, Any]) -> str:
    """One line on where one SAE comes from."""
    source = dict(entry.get("source") or {})
    kind = source.get("kind")
    if kind == "train":
        return _trained(source, entry.get("d_sae"))
    if kind == "folder":
        return f"read from the folder {_code(source.get('folder', source.get('spec')))}"
    if kind == "release":
        return _release(source)
    return f"unknown source kind {_code(kind)}"


def same_model(release_model: str, loaded: dict[str, Any]) -> bool:
    """True when this run loaded exactly the hub model the release names."""
    return loaded.get("kind") == "hub" and str(loaded.get("spec", "")).lower() == release_model.lower()


def model_mismatch_note(release_model: str, loaded: dict[str, Any]) -> str:
    """What it means that a release SAE's model and the loaded model have different names."""
    kind = str(loaded.get("kind"))
    form = QUANTIZED_KINDS.get(kind, f"a {fmt_text(kind)} model")
    return (f"The SAE was trained on {_code(release_model)}; this run loaded {_code(loaded.get('spec'))}, "
            f"{form}. If that is the same model in another form (the bundled `gemma3-270m`, for instance, is "
            "`google/gemma-3-270m` quantized to Q4_K_M), quantization shifts the residual activations a little, so "
            "the SAE reads inputs slightly off the distribution it was trained on; its quality (next section) "
            "measures what that costs. If it is another model, the SAE's features need not mean anything here.")


def mismatch_notes(saes: list[dict[str, Any]], loaded: dict[str, Any]) -> list[str]:
    """One note per release model that differs from the loaded model."""
    models = dict.fromkeys(str((e.get("source") or {}).get("model")) for e in saes
                           if (e.get("source") or {}).get("kind") == "release"
                           and (e.get("source") or {}).get("model"))
    return [model_mismatch_note(m, loaded) for m in models if not same_model(m, loaded)]


def sources_section(saes: list[dict[str, Any]], loaded: dict[str, Any]) -> str:
    """The sources section: one row per SAE, then the notes on release SAEs used on another model."""
    rows = [[fmt_at(e.get("layer"), e.get("rel_depth")), _code(e.get("hook")), fmt_text(str(e.get("sae"))),
             fmt_text(str((e.get("source") or {}).get("kind"))), describe_source(e)] for e in saes]
    parts = ["## SAE sources", md_table(["Layer", "Hook", "SAE", "Kind", "Source"], rows)]
    return "\n\n".join(parts + mismatch_notes(saes, loaded))
