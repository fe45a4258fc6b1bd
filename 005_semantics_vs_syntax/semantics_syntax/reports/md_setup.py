"""Markdown about one model's run as a whole: what was measured, the SAEs, the cloze items, and provenance."""

from __future__ import annotations

import json
from typing import Any

from layers_core.reports.formats import fmt_exact, fmt_text, json_number
from layers_core.reports.markdown import md_table
from semantics_syntax.artefact_schema import SPECIALISTS
from semantics_syntax.reports.md_common import SAE_QUALITY_NOTE, fmt_code, fmt_layer
from semantics_syntax.reports.run_artefacts import SemanticsModel


def _smallest_p(permutations: Any) -> str:
    found = json_number(permutations)
    return "n/a" if found is None else f"{1 / (found + 1):.4g}"


def measured_section(model: SemanticsModel) -> str:
    """What the run measured, in short, with this run's counts and settings."""
    s = model.settings
    cloze, domains = model.cloze, dict(model.cloze.get("domains") or {})
    ranks = model.csv(SPECIALISTS)["rank"]
    per_group = int(ranks.max()) if len(ranks) else 0
    lines = [
        f"{fmt_exact(model.summary.get('texts'))} matched-pairs texts in {len(model.groups)} topic/form groups "
        f"({len(model.topics)} topics, each written in two or three surface forms); "
        f"{fmt_exact(cloze.get('items'))} cloze items, {fmt_exact(cloze.get('scored'))} scored "
        f"({', '.join(f'{fmt_text(d)} {fmt_exact(n)}' for d, n in domains.items()) or 'no domains recorded'}). "
        f"{len(model.saes)} SAE(s).",
        f"- **H1 (specificity)**: each group's specialists (up to {per_group} features, chosen against the texts of "
        "other topics only); `form_jaccard`: the overlap of one topic's specialist sets across its forms (high: the "
        "same features whatever the form, i.e. topic); `same_form_jaccard`: across topics that share a form name "
        "(high: form). Then where the specialists' activation falls by token class, next to the share of tokens.",
        "- **H2 (clustering)**: cosine similarity of each text's pooled SAE features and of its centred residual; "
        "topic effect = mean similarity of same-topic minus different-topic pairs, among pairs of different forms; "
        f"form effect likewise among pairs of different topics; one-sided permutation p with "
        f"{fmt_exact(s.get('permutations'))} permutations (the smallest p it can give is "
        f"{_smallest_p(s.get('permutations'))}).",
        f"- **H3 (behaviour)**: Spearman's rho between the activation of the `{fmt_text(str(s.get('math_topic')))}` "
        "specialists on a cloze prompt and the model's log-probability of the answer, on math and non-math items; "
        "raw, and partial with the answer's token count regressed out of both.",
        f"- **Ablation**: per SAE, up to {fmt_exact(s.get('ablations_per_kind'))} features of each kind removed one at "
        f"a time (error term kept): the `{fmt_text(str(s.get('math_topic')))}` specialists, frequency-matched random "
        f"features, and the `{fmt_text(str(s.get('control_topic')))}` specialists (cross-domain); the change in the "
        "answer's log-probability (nats) and the share of items whose greedy answer flips.",
        "p_holm adjusts a p-value for the other tests of its family in this model: the four clustering tests per SAE "
        "across SAEs, the four correlations per SAE across SAEs, and the specialist ablations on math items across "
        "SAEs.",
        SAE_QUALITY_NOTE,
        skipped_text(model),
    ]
    return "## What was measured\n\n" + "\n\n".join(lines)


def skipped_text(model: SemanticsModel) -> str:
    """The cloze items this tokenizer could not score, with the reason, or that none was skipped."""
    skipped = model.skipped_items
    if not skipped:
        return "Every cloze item was scored: none was skipped."
    items = "; ".join(f"{fmt_code(i)} ({fmt_text(reason or 'no reason recorded')})" for i, reason in skipped)
    return (f"**{len(skipped)} cloze item(s) skipped** (the tokenizer does not keep the prompt's tokens when the "
            f"answer is appended), left out of H3 and the ablations: {items}.")


def _value(value: Any) -> str:
    if isinstance(value, dict | list):
        return fmt_text(json.dumps(value, ensure_ascii=False, sort_keys=True)) if value else "none"
    return fmt_text(fmt_exact(value))


def saes_table(model: SemanticsModel) -> str:
    """One row per SAE: its layer, name, width, hook and source kind."""
    rows = [[fmt_layer(e.get("layer"), e.get("rel_depth")), fmt_code(e.get("sae")), _value(e.get("d_sae")),
             fmt_code(e.get("hook")), _value((e.get("source") or {}).get("kind"))] for e in model.saes]
    return md_table(["Layer", "SAE", "d_sae", "Hook", "Source"], rows)


def setup_section(model: SemanticsModel) -> str:
    """Model identity, its SAEs, the settings, and the provenance as stored."""
    info, prov = model.summary.get("model") or {}, model.summary.get("provenance") or {}
    fields: list[tuple[str, Any]] = [
        ("Model spec", info.get("spec")), ("Artefact name", info.get("name")), ("Kind", info.get("kind")),
        ("Architecture", info.get("architecture")), ("model_type", info.get("model_type")),
        ("Layers (L)", model.n_layers), ("d_model", model.d_model), ("Settings", model.settings),
        ("Cloze", {k: v for k, v in model.cloze.items() if k != "skipped"})]
    fields += list(prov.items())
    return ("## Model and set-up\n\n" + saes_table(model) + "\n\n"
            + md_table(["Field", "Value"], [[k, _value(v)] for k, v in fields]))
