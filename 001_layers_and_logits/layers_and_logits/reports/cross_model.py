"""``evaluation-cross-model.md``: the models of one run side by side, by relative depth.

Factual only, like the per-model reports: numbers are copied from each model's
JSON summary. Skipped and failed models are listed with their reason and left
out of every table and plot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from layers_and_logits.reports.evaluation_md import GENERATED_BY
from layers_and_logits.reports.lens_names import lens_name, ordered_lenses
from layers_and_logits.reports.md_lenses import BATTERY_RANK1, MEAN_KL
from layers_and_logits.reports.md_model import consistency_passed
from layers_and_logits.reports.md_prompts import answer_token, is_aligned, milestone_keys
from layers_and_logits.reports.milestones import fmt_milestone_of, fmt_reached, milestone_label
from layers_and_logits.reports.run_artefacts import LensModel, LensRun
from layers_core.lens.consistency import KL_LIMIT_BITS
from layers_core.reports.formats import (
    MISSING,
    fmt_bits,
    fmt_depth,
    fmt_exact,
    fmt_int,
    fmt_milestone,
    fmt_text,
    fmt_token,
    fmt_yes_no,
)
from layers_core.reports.markdown import md_image, md_table
from layers_core.reports.report_files import cross_model_path, not_included

SAME_PROMPT_MILESTONE = "first_rank1"
NOT_COMPARED = "not compared"  # a lens this model's run did not compare (a linear run has no tuned lens)


def models_table(models: list[LensModel]) -> str:
    """Identity, shape, set-up and the last-layer check of each model."""
    rows = []
    for m in models:
        info, prov = m.summary.get("model") or {}, m.summary.get("provenance") or {}
        check = m.summary["diagnostics"].get("last_layer_consistency") or {}
        rows.append([fmt_token(m.name), fmt_text(info.get("architecture", MISSING)), str(m.n_layers),
                     fmt_text(prov.get("lens_mode", MISSING)), fmt_text(prov.get("device", MISSING)),
                     fmt_text(prov.get("dtype", MISSING)), fmt_exact(check.get("kl_bits")),
                     fmt_yes_no(check.get("top1_agree")), "passed" if consistency_passed(check) else "**FAILED**"])
    header = ["Model", "Architecture", "Layers", "Lens", "Device", "dtype", "Last-layer KL (bits)", "Same top-1",
              "Consistency"]
    text = md_table(header, rows)
    failed = [m.name for m in models if not consistency_passed(m.summary["diagnostics"].get("last_layer_consistency"))]
    if failed:
        names = ", ".join(f"`{n}`" for n in failed)
        text = (f"> **WARNING: the last-layer consistency check failed for {names}** "
                f"(kl_bits >= {KL_LIMIT_BITS:g} or a different top-1): their per-layer numbers are suspect; "
                "leave them out of any comparison.\n\n" + text)
    return text


def main_milestones_table(models: list[LensModel]) -> str:
    """Milestones of each model's main prompt, as ``layer (relative depth)``."""
    mains = [m.prompt(m.main_prompt_id) for m in models]
    keys = milestone_keys(mains)
    rows = [[fmt_token(m.name), fmt_token(m.main_prompt_id), answer_token(p), str(m.n_layers)]
            + [fmt_milestone_of(k, (p.get("milestones") or {}).get(k), is_aligned(p)) for k in keys]
            for m, p in zip(models, mains, strict=True)]
    return md_table(["Model", "Main prompt", "Answer token", "Layers"] + [milestone_label(k) for k in keys], rows)


def same_prompt_table(models: list[LensModel]) -> str:
    """For every prompt id, the first layer where its answer is top-1 in each model."""
    prompt_ids: list[str] = []
    for m in models:
        prompt_ids += [p["prompt_id"] for p in m.summary.get("prompts") or [] if p["prompt_id"] not in prompt_ids]
    rows = []
    for pid in prompt_ids:
        cells = [fmt_token(pid)]
        for m in models:
            entry = next((p for p in m.summary.get("prompts") or [] if p["prompt_id"] == pid), None)
            if entry is None:
                cells.append("not run")
            elif not (entry.get("alignment") or {}).get("ok"):
                cells.append("not aligned")
            else:
                cells.append(fmt_milestone((entry.get("milestones") or {}).get(SAME_PROMPT_MILESTONE)))
        rows.append(cells)
    return md_table(["Prompt"] + [fmt_token(m.name) for m in models], rows)


def facts_table(models: list[LensModel]) -> str:
    """The fact-battery milestone distributions of every model that ran it."""
    rows = []
    for m in models:
        facts: dict[str, Any] = m.summary.get("facts") or {}
        for key, v in (facts.get("milestones") or {}).items():
            rows.append([fmt_token(m.name), fmt_text(facts.get("battery", MISSING)), milestone_label(key),
                         fmt_depth(v.get("median")), fmt_depth(v.get("q1")), fmt_depth(v.get("q3")),
                         fmt_reached(v, facts.get("n_aligned", MISSING))])
    if not rows:
        return "Not run for any model (001 was run without the fact battery)."
    without = [m.name for m in models if not m.summary.get("facts")]
    note = f"\n\nNot run for: {', '.join(f'`{n}`' for n in without)}." if without else ""
    return md_table(["Model", "Battery", "Milestone", "Median depth", "Q1", "Q3", "Facts reaching it"], rows) + note


def _lens_rows(compared: list[LensModel], key: str) -> list[str]:
    return ordered_lenses(lens for m in compared for lens in ((m.lens_comparison or {}).get(key) or {}))


def lens_kl_table(compared: list[LensModel]) -> str:
    """Mean KL(last layer ‖ lens) over layers 0..L-1 on held-out text: one row per lens, one column per model."""
    rows = []
    for lens in _lens_rows(compared, MEAN_KL):
        means = [(m.lens_comparison or {}).get(MEAN_KL) or {} for m in compared]
        rows.append([fmt_token(lens)] + [fmt_bits(m[lens]) if lens in m else NOT_COMPARED for m in means])
    return md_table(["Lens"] + [fmt_token(m.name) for m in compared], rows)


def _rank1_cell(battery: dict[str, Any] | None, lens: str) -> str:
    if battery is None:
        return "not run"
    if lens not in battery:
        return NOT_COMPARED
    stats = battery[lens]
    if not isinstance(stats, dict):
        return MISSING
    reached = fmt_reached(stats, MISSING)
    if stats.get("median") is None:
        return f"never ({reached})"
    return f"{fmt_depth(stats['median'])} ({fmt_depth(stats.get('q1'))}-{fmt_depth(stats.get('q3'))}; {reached})"


def lens_rank1_table(compared: list[LensModel]) -> str:
    """The battery's median first-rank-1 depth under each lens: one row per lens, one column per model."""
    rows = [[fmt_token(lens)] + [_rank1_cell((m.lens_comparison or {}).get(BATTERY_RANK1), lens) for m in compared]
            for lens in _lens_rows(compared, BATTERY_RANK1)]
    if not rows:
        return "Not measured: no model ran the fact battery with its lens comparison."
    return md_table(["Lens"] + [fmt_token(m.name) for m in compared], rows)


def lenses_section(models: list[LensModel]) -> str | None:
    """The lenses compared across models (each model under the same lens); None when no model compared them."""
    compared = [m for m in models if m.lens_comparison is not None]
    if not compared:
        return None
    held = "; ".join(f"{fmt_token(m.name)}: {fmt_int(((m.lens_comparison or {}).get('heldout') or {}).get('tokens'))}"
                     for m in compared)
    parts = ["## Lenses compared",
             "Runs with `--lens tuned` or `--lens linear` compare the norm lens with fitted lenses ("
             + ", ".join(f"`{lens}`: {lens_name(lens)}" for lens in _lens_rows(compared, MEAN_KL)) + ") on "
             f"held-out text of the bundled corpus. Read a row to compare the models under the same lens. Held-out "
             f"tokens per model: {held} (each model's own tokenizer). `{NOT_COMPARED}`: that model's run did not "
             "compare this lens (a `--lens linear` run compares only the norm lens and the linear shortcut).",
             "### Mean KL to the last layer over layers 0..L-1 (bits)", lens_kl_table(compared),
             "### Battery: median rank-1 depth by lens",
             "Relative depth of the first layer where the lens ranks the answer top-1: median (Q1-Q3; facts "
             "reaching rank 1 of the aligned facts), over the facts that reach it; `never` when none does.",
             lens_rank1_table(compared)]
    lens_modes = {m.name: (m.summary.get("provenance") or {}).get("lens_mode", MISSING) for m in models}
    without = [f"{fmt_token(m.name)} (lens {fmt_text(str(lens_modes[m.name]))})"
               for m in models if m.lens_comparison is None]
    if without:
        parts.append(f"No lens comparison for: {', '.join(without)}.")
    return "\n\n".join(parts)


def build_cross_model(run: LensRun, plot: Path | None) -> str:
    """The whole cross-model markdown."""
    models = run.ok_models
    parts = ["# 001 layers and logits: cross-model comparison", GENERATED_BY,
             "Models have different numbers of layers, so they are compared by relative depth = layer / L "
             "(0 = embeddings, 1 = last block output). Each cell `a (b)` is layer a, relative depth b.",
             "## Not included (skipped or failed)", not_included(run.other_models)]
    if not models:
        return "\n\n".join(parts + ["## Models", "No model ran; nothing to compare."]) + "\n"
    if len(models) == 1:
        parts.append("Only one model ran, so there is nothing to compare it with yet.")
    parts += ["## Models", models_table(models),
              "## Main prompt milestones", main_milestones_table(models),
              "## The same prompt across models",
              f"First layer where the answer is top-1 ({milestone_label(SAME_PROMPT_MILESTONE)}) for each "
              "battery prompt.", same_prompt_table(models),
              "## Fact battery", facts_table(models)]
    lenses = lenses_section(models)
    parts += [lenses] if lenses else []
    if plot is not None:
        parts += ["## Plot", "Top: p(answer), answer rank and KL to the last layer against relative depth, main "
                  "prompt of each model. Bottom (when the fact battery ran): relative depth where each fact first "
                  f"reaches each milestone.\n\n{md_image('cross-model', plot.name)}"]
    return "\n\n".join(parts) + "\n"


def write_cross_model(run: LensRun, plot: Path | None) -> Path:
    """Write ``evaluation-cross-model.md`` into the run folder."""
    path = cross_model_path(run.run_dir)
    path.write_text(build_cross_model(run, plot), encoding="utf-8")
    return path
