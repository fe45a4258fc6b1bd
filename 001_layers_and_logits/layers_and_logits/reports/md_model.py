"""Markdown sections about one model as a whole: consistency check, set-up, fact battery."""

from __future__ import annotations

import json
from typing import Any

from layers_and_logits.reports.milestones import fmt_milestone_of, fmt_reached, milestone_label
from layers_core.lens.consistency import KL_LIMIT_BITS, consistency_ok
from layers_core.reports.formats import MISSING, fmt_depth, fmt_exact, fmt_text, fmt_token, fmt_yes_no
from layers_core.reports.markdown import md_table


def consistency_passed(check: dict[str, Any] | None) -> bool:
    """True when the last-layer lens matches the model (``consistency_ok``: kl_bits < 1e-3 and the same top-1)."""
    check = check or {}
    return consistency_ok(check.get("kl_bits"), check.get("top1_agree"))


def consistency_warning(check: dict[str, Any] | None) -> str | None:
    """The loud warning for a failed check, or None when it passed."""
    if consistency_passed(check):
        return None
    check = check or {}
    return ("> **WARNING: the lens does not reproduce the model's own output at the last layer** "
            f"(kl_bits = {fmt_exact(check.get('kl_bits'))}, limit {KL_LIMIT_BITS:g}; same top-1: "
            f"{fmt_yes_no(check.get('top1_agree'))}). Every per-layer number below is suspect: "
            "fix the lens before reading anything into it.")


def per_prompt_consistency(prompts: list[dict[str, Any]]) -> str | None:
    """The same check on every prompt that carries one (JSON prompts[].last_layer_consistency)."""
    checked = [p for p in prompts if isinstance(p.get("last_layer_consistency"), dict)]
    if not checked:
        return None
    rows = []
    for p in checked:
        check = p["last_layer_consistency"]
        rows.append([fmt_token(p["prompt_id"]), fmt_exact(check.get("kl_bits")), fmt_yes_no(check.get("top1_agree")),
                     "passed" if consistency_passed(check) else "**FAILED**"])
    return "Per prompt:\n\n" + md_table(["Prompt", "KL (bits)", "Same top-1", "Check"], rows)


def consistency_section(diagnostics: dict[str, Any], prompts: list[dict[str, Any]]) -> str:
    """The last-layer consistency check, with the warning on top when it failed."""
    check = diagnostics.get("last_layer_consistency") or {}
    rows = [["KL(model output ‖ lens at layer L) in bits", fmt_exact(check.get("kl_bits"))],
            ["Same top-1 token", fmt_yes_no(check.get("top1_agree"))],
            ["Max absolute logit difference", fmt_exact(check.get("max_abs_logit_diff"))],
            ["Checked on prompt", fmt_token(check.get("prompt_id"))],
            ["Prompts checked", fmt_exact(check.get("n_prompts_checked"))],
            ["Run's verdict (ok)", fmt_yes_no(check.get("ok"))],
            ["Run's warning", fmt_text(check.get("warning") or "none")]]
    verdict = ("Passed: the lens at the last layer reproduces the model's output "
               f"(kl_bits < {KL_LIMIT_BITS:g} and the same top-1).")
    failed = [p["prompt_id"] for p in prompts if isinstance(p.get("last_layer_consistency"), dict)
              and not consistency_passed(p["last_layer_consistency"])]
    parts = ["## Last-layer consistency", consistency_warning(check) or verdict]
    if failed:
        parts.append("> **WARNING: the check also fails on prompt(s) " + ", ".join(f"`{f}`" for f in failed) + ".**")
    parts.append(md_table(["Check", "Value"], rows))
    per_prompt = per_prompt_consistency(prompts)
    return "\n\n".join(parts + ([per_prompt] if per_prompt else []))


def _json_value(value: Any) -> str:
    if isinstance(value, dict | list):
        return fmt_text(json.dumps(value, ensure_ascii=False, sort_keys=True)) if value else "none"
    return fmt_text(fmt_exact(value))


def setup_section(summary: dict[str, Any]) -> str:
    """Model identity, shapes, lens and device set-up, provenance."""
    model, prov = summary.get("model") or {}, summary.get("provenance") or {}
    diag = summary.get("diagnostics") or {}
    transform = diag.get("final_transform") or {}
    rows = [(label, value) for label, value in [
        ("Model spec", model.get("spec")), ("Artefact name", model.get("name")), ("Kind", model.get("kind")),
        ("Architecture", model.get("architecture")), ("model_type", model.get("model_type")),
        ("Layers (L)", diag.get("n_layers")), ("d_model", diag.get("d_model")),
        ("Vocabulary", diag.get("vocab_size")), ("Norm type", diag.get("norm_type")),
        ("Final-logit softcap", transform.get("softcap")), ("Logit multiplier", transform.get("logit_multiplier")),
        ("Lens mode", prov.get("lens_mode")), ("fp32 unembedding", prov.get("fp32_unembed")),
        ("Device", prov.get("device")), ("dtype", prov.get("dtype")), ("Device reason", prov.get("device_reason")),
        ("Device warnings", prov.get("device_warnings")), ("Device check", diag.get("device_check")),
        ("Seed", prov.get("seed")), ("Started at", prov.get("started_at")), ("Seconds", prov.get("seconds")),
        ("Git commit", prov.get("git_commit")), ("Uncommitted changes", prov.get("git_dirty")),
        ("Python", prov.get("python")), ("Platform", prov.get("platform")), ("Packages", prov.get("packages")),
        ("Command", prov.get("argv")), ("Load", prov.get("load")), ("Model parts", diag.get("architecture_parts")),
        ("What the lens did", diag.get("lens")),
    ]]
    table = md_table(["Field", "Value"], [[label, _json_value(value)] for label, value in rows])
    return "## Model and set-up\n\n" + table


def facts_section(facts: dict[str, Any] | None) -> str:
    """The fact battery: milestone depth distribution, then one row per fact."""
    if not facts:
        return "## Fact battery\n\nNot run for this model (001 was run without the fact battery)."
    n_aligned = facts.get("n_aligned")
    summary_rows = [[milestone_label(k), fmt_depth(v.get("median")), fmt_depth(v.get("q1")), fmt_depth(v.get("q3")),
                     fmt_reached(v, n_aligned)] for k, v in (facts.get("milestones") or {}).items()]
    correct = facts.get("n_final_top1_correct")
    intro = (f"Battery `{facts.get('battery', MISSING)}`: {facts.get('n_facts', MISSING)} facts, {n_aligned} with "
             "an aligned answer token" + ("" if correct is None else f", {correct} where the model's own top-1 is "
             "the answer") + ". Relative depth (layer / L) at which each milestone is first reached, over the facts "
             "that reach it; answer milestones count aligned facts only.")
    parts = ["## Fact battery", intro,
             md_table(["Milestone", "Median depth", "Q1", "Q3", "Facts reaching it"], summary_rows)]
    per_fact = facts.get("per_fact") or []
    if per_fact:
        parts += ["### Per fact", per_fact_table(per_fact)]
    return "\n\n".join(parts)


def per_fact_table(per_fact: list[dict[str, Any]]) -> str:
    """One row per fact: alignment, the model's final answer, each milestone."""
    keys: list[str] = []
    for fact in per_fact:
        keys += [k for k, v in fact.items() if isinstance(v, dict) and "layer" in v and k not in keys]
    rows = []
    for f in per_fact:
        aligned = f.get("aligned", True) is not False
        rows.append([fmt_token(f.get("prompt_id")), fmt_text(f.get("answer", MISSING)), fmt_yes_no(f.get("aligned")),
                     fmt_token(f.get("final_top1")), fmt_exact(f.get("final_answer_rank"))]
                    + [fmt_milestone_of(k, f.get(k), aligned) for k in keys])
    header = ["Fact", "Answer", "Aligned", "Final top-1", "Final answer rank"] + [milestone_label(k) for k in keys]
    return md_table(header, rows)
