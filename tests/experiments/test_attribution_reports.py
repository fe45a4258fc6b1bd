"""Experiment 002's reports: plots, factual markdown and LLM prompts, built from a synthetic run folder.

The run folder is written here with ``layers_core.runs.artefacts`` exactly per
``attention_and_attribution.artefact_schema`` (one ok model with the fact battery
and the ablation, one skipped model). The numbers are synthetic; every check reads
the artefacts independently of the report code and compares.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from attention_and_attribution.artefact_schema import (
    ABLATION,
    ATTENTION,
    BATTERY_ROW,
    COMPONENTS,
    HEAD_SUMMARY,
    HEADS,
    LAYERS,
    ablation_columns,
    attention_columns,
    components_columns,
    head_summary_columns,
    heads_columns,
    layers_columns,
)
from attention_and_attribution.reports import write_reports
from attention_and_attribution.reports.ablation_check import AGAINST, SUPPORTS, WITHIN_RANGE, comparisons
from attention_and_attribution.reports.llm_prompts import keep_ranks
from attention_and_attribution.reports.run_artefacts import read_attribution_run
from attention_and_attribution.token_roles import ROLES
from layers_core.paths import PROMPTS_DIR, REPO_ROOT
from layers_core.reports import llm_pack
from layers_core.reports.formats import fmt_head
from layers_core.reports.run_reader import ReportInputError
from layers_core.runs.artefacts import artefact_path, read_csv_artefact, write_csv, write_json
from tests.fixtures.markdown_tables import tables_by_heading

EXPERIMENT = REPO_ROOT / "002_attention_and_attribution"
OK_MODEL, SKIPPED = "alpha-4l", "gamma-70b"
SKIP_REASON = "needs 140 GB in bfloat16, 64 GB available: pick a smaller model"
N_LAYERS, N_HEADS = 4, 3
CRITERION = "median_dla_logit_diff >= 1.0 and share_top5 >= 0.5 over the battery"
PROMPTS = (  # prompt_id, role, tokens, roles, answer, foil, used
    ("completion", "completion", ["<s>", "The", " capital", " of", " Germany", " is"],
     ["first", "relation", "relation", "relation", "subject", "self"], " Berlin", " Paris", True),
    ("directional", "directional", ["<s>", "Berlin", " is", " the", " capital", " of"],
     ["first", "subject", "relation", "relation", "relation", "self"], " Germany", " France", True),
    ("control", "control", ["<s>", "The", " capital", " of", " France", " is"],
     ["first", "relation", "relation", "relation", "subject", "self"], " Paris", None, False),
)
FACTS = ("fact-germany", "fact-france", "fact-japan")


def median_dla(layer: int, head: int) -> float:
    """The synthetic median DLA: head 2.1 far ahead, 3.0 second, the rest small and of both signs."""
    special = {(2, 1): 2.5, (3, 0): 1.25}
    return special.get((layer, head), round(0.05 * (layer - 1.5) * (head - 1) + 0.01 * layer, 6))


def rel_depth(layer: int) -> float:
    return round((layer + 1) / N_LAYERS, 6)


def all_heads() -> list[tuple[int, int]]:
    return [(layer, head) for layer in range(N_LAYERS) for head in range(N_HEADS)]


def ranked_heads() -> list[tuple[int, int]]:
    return sorted(all_heads(), key=lambda lh: (-median_dla(*lh), lh))


def prompt_dla(index: int, layer: int, head: int) -> float:
    return round(median_dla(layer, head) * (1.0 + 0.1 * index), 6)


def head_summary_rows() -> list[dict[str, Any]]:
    rows = []
    for rank, (layer, head) in enumerate(ranked_heads(), 1):
        m = median_dla(layer, head)
        attn = {f"median_attn_{role}": 0.0 for role in ROLES}
        attn["median_attn_subject" if (layer, head) == (2, 1) else "median_attn_first"] = 0.8
        attn["median_attn_relation"] = 0.2
        rows.append({"layer": layer, "head": head, "rel_depth": rel_depth(layer), "hook": f"blocks.{layer}.attn.hook_z",
                     "n_prompts": len(FACTS), "median_dla_logit_diff": m, "q25_dla_logit_diff": round(m - 0.25, 6),
                     "q75_dla_logit_diff": round(m + 0.5, 6), "share_top5": 1.0 if rank <= 5 else 0.0,
                     "median_dla_answer": round(m * 1.5, 6), **attn, "rank": rank})
    return rows


def prompt_entry(index: int, spec: tuple, tokens: bool) -> dict[str, Any]:
    pid, role, toks, roles, answer, foil, used = spec
    top = sorted(all_heads(), key=lambda lh: -prompt_dla(index, *lh))[:5]
    entry = {"prompt_id": pid, "prompt": "".join(toks[1:]), "role": role, "subject": "Germany",
             "answer": answer.strip(),
             "answer_token": answer, "answer_token_id": 100 + index, "foil": foil and foil.strip(), "foil_token": foil,
             "foil_token_id": 200 + index if foil else None, "foil_source": "battery pair" if foil else None,
             "used": used, "reason": None if used else "no foil: the prompt names no other answer",
             "model_logit_answer": 18.5 + index, "model_logit_diff": round(4.7828 - index, 6) if used else None,
             "sum_error_answer": 3.9e-6, "sum_error_logit_diff": 2.1e-6 if used else None,
             "softcap_applied_after": None, "final_top1": answer, "final_top1_is_answer": index != 1,
             "top_heads": [{"layer": lh[0], "head": lh[1], "dla_logit_diff": prompt_dla(index, *lh)} for lh in top]}
    return {**entry, "tokens": toks, "roles": roles} if tokens else entry


def layers_summary() -> list[dict[str, Any]]:
    out = []
    for layer in range(N_LAYERS):
        attn = round(sum(median_dla(layer, h) for h in range(N_HEADS)), 6)
        mlp = round(0.4 * layer - 0.3, 6)
        out.append({"layer": layer, "rel_depth": rel_depth(layer), "median_attn_dla_logit_diff": attn,
                    "q25_attn_dla_logit_diff": round(attn - 0.1, 6), "q75_attn_dla_logit_diff": round(attn + 0.1, 6),
                    "median_mlp_dla_logit_diff": mlp, "q25_mlp_dla_logit_diff": round(mlp - 0.2, 6),
                    "q75_mlp_dla_logit_diff": round(mlp + 0.2, 6)})
    return out


def ablation_summary(top_drops: dict[int, float]) -> list[dict[str, Any]]:
    rows = []
    heads = [fmt_head(*lh) for lh in ranked_heads()]
    for k, drop in top_drops.items():
        rows.append({"k": k, "selection": "top", "seed": None, "heads": " ".join(heads[:k]),
                     "mean_logit_diff_drop": drop, "share_top1_flipped": round(min(1.0, drop / 5), 6)})
        for seed in range(3):
            rows.append({"k": k, "selection": "random", "seed": seed, "heads": " ".join(heads[-k - seed:][:k]),
                         "mean_logit_diff_drop": round(0.1 * k + 0.05 * seed, 6), "share_top1_flipped": 0.0})
    return rows


def summary_doc(name: str, battery: bool) -> dict[str, Any]:
    over = "battery" if battery else "prompts"
    top_drops = {1: 1.5, 3: 2.75, 5: 3.5}
    return {
        "schema_version": 1, "status": "ok", "reason": None,
        "model": {"spec": name, "name": name, "kind": "bundled", "architecture": "LlamaForCausalLM",
                  "model_type": "llama"},
        "provenance": {"device": "cpu", "dtype": "float32", "seed": 316, "argv": ["run.py", "--models", name]},
        "diagnostics": {"n_layers": N_LAYERS, "n_heads": N_HEADS, "n_kv_heads": 1, "d_model": 48, "d_head": 16,
                        "vocab_size": 500, "final_logit_softcap": None, "max_sum_error": 3.9e-06,
                        "max_sum_rel_error": 8.2e-07, "frozen": "the final norm's scale, per prompt"},
        "main_prompt_id": "completion",
        "prompts": [prompt_entry(i, spec, tokens=True) for i, spec in enumerate(PROMPTS)],
        "battery": None if not battery else {
            "name": "capitals", "n_facts": 4, "n_used": len(FACTS), "n_final_top1_correct": 2,
            "facts": [{**prompt_entry(0, PROMPTS[0], tokens=False), "prompt_id": f} for f in FACTS]},
        "head_summary_over": over,
        "retrieval_heads": [{"layer": r["layer"], "head": r["head"], "rel_depth": r["rel_depth"],
                             "median_dla_logit_diff": r["median_dla_logit_diff"],
                             "q25_dla_logit_diff": r["q25_dla_logit_diff"],
                             "q75_dla_logit_diff": r["q75_dla_logit_diff"],
                             "share_top5": r["share_top5"]}
                            for r in head_summary_rows() if r["median_dla_logit_diff"] >= 1.0],
        "retrieval_criterion": CRITERION,
        "layers_summary": layers_summary(),
        "ablation": {"over": over, "n_prompts": len(FACTS), "means_over": f"the {over}", "position": "answer",
                     "ks": list(top_drops), "seeds": [0, 1, 2], "summary": ablation_summary(top_drops),
                     "skipped_reason": None},
    }


def heads_and_components(doc: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    heads, components = [], []
    for i, p in enumerate(doc["prompts"]):
        pid = p["prompt_id"]
        components.append({"prompt_id": pid, "component": "embed", "dla_answer": 0.5, "dla_logit_diff": 0.1})
        for layer in range(N_LAYERS):
            hook = f"blocks.{layer}.hook_attn_out"
            components.append({"prompt_id": pid, "component": "attn", "layer": layer, "rel_depth": rel_depth(layer),
                               "hook": hook, "dla_answer": 1.0, "dla_logit_diff": 0.5})
            for head in range(N_HEADS):
                attn = {f"attn_{role}": round(1 / len(ROLES), 6) for role in ROLES}
                heads.append({"prompt_id": pid, "layer": layer, "head": head, "rel_depth": rel_depth(layer),
                              "hook": f"blocks.{layer}.attn.hook_z", "dla_answer": 0.3,
                              "dla_logit_diff": prompt_dla(i, layer, head), **attn, "attn_entropy_bits": 2.1})
    return heads, components


def layer_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows for the prompts and the battery's facts, as the run writes them."""
    rows = []
    for i, pid in enumerate([p["prompt_id"] for p in doc["prompts"]] + list(FACTS if doc["battery"] else ())):
        for layer in range(N_LAYERS):
            rows.append({"prompt_id": pid, "layer": layer, "rel_depth": rel_depth(layer),
                         "attn_dla_answer": 1.0, "mlp_dla_answer": 0.5,
                         "attn_dla_logit_diff": round(0.3 * layer - 0.2 + 0.1 * i, 6),
                         "mlp_dla_logit_diff": round(0.2 * layer - 0.1, 6),
                         "p_answer": round(0.2 * layer + 0.1, 6), "answer_rank": N_LAYERS - layer})
    return rows


def attention_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for p in doc["prompts"]:
        n = len(p["tokens"])
        for layer, head in all_heads():
            weights = [round(1 / n, 6)] * n
            if (layer, head) == (2, 1):
                weights = [0.1 if r != "subject" else 0.0 for r in p["roles"]]
                weights[p["roles"].index("subject")] = round(1 - sum(weights), 6)
            cells = enumerate(zip(p["tokens"], p["roles"], weights, strict=True))
            rows += [{"prompt_id": p["prompt_id"], "layer": layer, "head": head, "pos": pos, "token": tok, "role": role,
                      "weight": w} for pos, (tok, role, w) in cells]
    return rows


def ablation_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for entry in doc["ablation"]["summary"]:
        common = {"k": entry["k"], "selection": entry["selection"], "seed": entry["seed"], "heads": entry["heads"]}
        rows.append({"prompt_id": BATTERY_ROW, **common, "logit_diff_clean": 4.0,
                     "logit_diff_ablated": round(4.0 - entry["mean_logit_diff_drop"], 6),
                     "logit_diff_drop": entry["mean_logit_diff_drop"], "top1_flipped": entry["share_top1_flipped"]})
        rows += [{"prompt_id": fact, **common, "logit_diff_clean": 4.0, "logit_diff_ablated": 3.0,
                  "logit_diff_drop": 1.0, "top1_flipped": 0} for fact in FACTS]
    return rows


def write_ok_model(run_dir: Path, name: str, battery: bool = True) -> dict[str, Any]:
    """Write output-<name>.json and its six CSVs; returns the JSON document."""
    doc = summary_doc(name, battery)
    heads, components = heads_and_components(doc)
    tables = {HEADS: (heads, heads_columns()), COMPONENTS: (components, components_columns()),
              LAYERS: (layer_rows(doc), layers_columns()), HEAD_SUMMARY: (head_summary_rows(), head_summary_columns()),
              ABLATION: (ablation_rows(doc), ablation_columns()), ATTENTION: (attention_rows(doc), attention_columns())}
    for kind, (rows, columns) in tables.items():
        write_csv(artefact_path(run_dir, name, kind), rows, columns)
    write_json(artefact_path(run_dir, name, "json"), doc)
    return doc


def write_skipped(run_dir: Path, name: str) -> None:
    write_json(artefact_path(run_dir, name, "json"), {
        "schema_version": 1, "status": "skipped", "reason": SKIP_REASON,
        "model": {"spec": "org/gamma-70b", "name": name, "kind": "hub", "architecture": None, "model_type": None}})


def build_run(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_ok_model(folder, OK_MODEL)
    write_skipped(folder, SKIPPED)
    return folder


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic run folder with every report written."""
    folder = build_run(tmp_path_factory.mktemp("attribution") / "run-latest")
    write_reports(folder)
    return folder


def doc_of(run_dir: Path, name: str = OK_MODEL) -> dict[str, Any]:
    return json.loads(artefact_path(run_dir, name, "json").read_text(encoding="utf-8"))


def edit_doc(run_dir: Path, change: dict[str, Any], name: str = OK_MODEL) -> None:
    path = artefact_path(run_dir, name, "json")
    write_json(path, {**doc_of(run_dir, name), **change})


def evaluation(run_dir: Path, name: str = OK_MODEL) -> str:
    return (run_dir / f"evaluation-{name}.md").read_text(encoding="utf-8")


def copy_run(run_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    return copy


def three(x: float) -> str:
    return f"{x:.3f}"


# --- every file -------------------------------------------------------------------------------------------------


def test_every_report_is_written_and_nothing_for_the_skipped_model(tmp_path: Path) -> None:
    folder = build_run(tmp_path / "run-latest")
    written = write_reports(folder)
    names = sorted(p.name for p in written)
    expected = sorted([f"head-grid-{OK_MODEL}.png", f"attention-{OK_MODEL}.png", f"layers-{OK_MODEL}.png",
                       f"evaluation-{OK_MODEL}.md", f"llm-prompt-{OK_MODEL}.md", f"evaluation-{SKIPPED}.md",
                       "cross-model.png", "evaluation-cross-model.md", "llm-prompt-cross-model.md"])
    assert names == expected
    for path in written:
        assert path.parent == folder and path.stat().st_size > 0, path
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = evaluation(folder)
    for plot in ("head-grid", "attention", "layers"):
        assert f"![{plot}]({plot}-{OK_MODEL}.png)" in report


def test_the_same_artefacts_give_the_same_bytes_and_the_meta_prompt_appears(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    (copy / "llm-evaluation-cross-model.md").write_text("An LLM's answer.\n", encoding="utf-8")
    assert "llm-prompt-meta.md" in {p.name for p in write_reports(copy)}
    meta = (copy / "llm-prompt-meta.md").read_text(encoding="utf-8")
    assert "An LLM's answer." in meta and f"### evaluation-{OK_MODEL}.md" in meta
    for path in sorted(run_dir.glob("*.md")) + sorted(run_dir.glob("*.png")):
        assert (copy / path.name).read_bytes() == path.read_bytes(), path.name


# --- the per-model markdown against the artefacts ----------------------------------------------------------------


def test_sum_check_reports_the_stored_errors(run_dir: Path) -> None:
    report = evaluation(run_dir)
    diag = doc_of(run_dir)["diagnostics"]
    assert f"{diag['max_sum_error']!r} logits (relative {diag['max_sum_rel_error']!r})" in report
    assert "WARNING" not in report


def test_a_sum_that_does_not_add_up_is_flagged(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    diag = {**doc_of(copy)["diagnostics"], "max_sum_error": 0.9, "max_sum_rel_error": 0.2}
    edit_doc(copy, {"diagnostics": diag})
    write_reports(copy)
    assert "WARNING: the components do not add up" in evaluation(copy)
    assert "**FAILED**" in (copy / "evaluation-cross-model.md").read_text(encoding="utf-8")


def test_prompts_table_copies_each_prompt(run_dir: Path) -> None:
    rows = tables_by_heading(evaluation(run_dir))["Prompts"]
    prompts = doc_of(run_dir)["prompts"]
    assert [r["Prompt"] for r in rows] == ["`completion` (main)", "`directional`", "`control`"]
    for row, p in zip(rows, prompts, strict=True):
        assert row["Logit diff (answer - foil)"] == (three(p["model_logit_diff"]) if p["used"] else "n/a")
        assert row["Answer"] == f"`{p['answer_token']}`"
    report = evaluation(run_dir)
    top = prompts[0]["top_heads"][0]
    assert f"L{top['layer']}H{top['head']} ({three(top['dla_logit_diff'])})" in report
    assert "`control`: 'The capital of France is': not used (no foil: the prompt names no other answer)." in report


def test_head_summary_table_is_the_ten_best_ranks_of_the_csv(run_dir: Path) -> None:
    csv = read_csv_artefact(artefact_path(run_dir, OK_MODEL, HEAD_SUMMARY), {"hook"}).sort_values("rank")
    rows = tables_by_heading(evaluation(run_dir))["Top 10 heads by median DLA"]
    assert len(rows) == 10
    for row, (_, want) in zip(rows, csv.head(10).iterrows(), strict=True):
        assert row["Head"] == f"L{int(want['layer'])}H{int(want['head'])}"
        assert row["Median DLA"] == three(want["median_dla_logit_diff"])
        assert row["IQR"] == f"[{three(want['q25_dla_logit_diff'])}, {three(want['q75_dla_logit_diff'])}]"
    assert rows[0]["Head"] == "L2H1" and rows[0]["Reads most"] == "subject (0.8000)"
    assert rows[1]["Head"] == "L3H0" and rows[1]["Reads most"] == "first (0.8000)"


def test_retrieval_heads_are_named_from_the_json(run_dir: Path) -> None:
    report = evaluation(run_dir)
    assert f"Criterion: {CRITERION}. 2 head(s) meet it." in report
    rows = tables_by_heading(report)["Retrieval heads"]
    assert [r["Head"] for r in rows] == ["L2H1", "L3H0"]
    assert rows[0]["Median DLA"] == "2.500" and rows[0]["Rel. depth"] == "0.750"


def test_no_retrieval_head_is_said_plainly(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    edit_doc(copy, {"retrieval_heads": []})
    write_reports(copy)
    assert f"No head meets the criterion ({CRITERION})." in evaluation(copy)
    assert "none meets the criterion" in (copy / "evaluation-cross-model.md").read_text(encoding="utf-8")


def test_layer_table_copies_layers_summary(run_dir: Path) -> None:
    rows = tables_by_heading(evaluation(run_dir))["Attention against MLP, per layer"]
    summary = doc_of(run_dir)["layers_summary"]
    assert [r["Layer"] for r in rows] == [str(e["layer"]) for e in summary]
    for row, e in zip(rows, summary, strict=True):
        assert row["Attention median"] == three(e["median_attn_dla_logit_diff"])
        assert row["MLP median"] == three(e["median_mlp_dla_logit_diff"])


def test_ablation_table_and_verdict_follow_the_numbers(run_dir: Path) -> None:
    report = evaluation(run_dir)
    rows = {r["k"]: r for r in tables_by_heading(report)["Ablation"]}
    summary = doc_of(run_dir)["ablation"]["summary"]
    for k in ("1", "3", "5"):
        top = next(e for e in summary if e["k"] == int(k) and e["selection"] == "top")
        randoms = [e["mean_logit_diff_drop"] for e in summary if e["k"] == int(k) and e["selection"] == "random"]
        assert rows[k]["Top-k drop"] == three(top["mean_logit_diff_drop"])
        assert rows[k]["Random drop (mean)"] == three(statistics.fmean(randoms))
        assert rows[k]["Random drop range"] == f"[{three(min(randoms))}, {three(max(randoms))}]"
        assert rows[k]["Top-k heads"] == top["heads"]
        assert rows[k]["Ranking"] == SUPPORTS
    assert "**Verdict: the ablation supports the DLA ranking**" in report
    assert "top-5 ablation drops the logit difference by 3.500 vs 0.550 (range [0.500, 0.600])" in report


def test_an_ablation_that_does_not_beat_random_heads_is_said_not_to_support(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    doc = doc_of(copy)
    summary = [{**e, "mean_logit_diff_drop": 0.05} if e["selection"] == "top" else e
               for e in doc["ablation"]["summary"]]
    edit_doc(copy, {"ablation": {**doc["ablation"], "summary": summary}})
    write_reports(copy)
    report = evaluation(copy)
    assert "**Verdict: the ablation does NOT support the DLA ranking**" in report
    assert "supports the DLA ranking**" not in report


def test_verdict_per_k_separates_above_within_and_below_the_random_range() -> None:
    rows = [{"k": 5, "selection": "random", "seed": s, "heads": "L0H0", "mean_logit_diff_drop": d,
             "share_top1_flipped": 0} for s, d in enumerate((0.5, 1.0, 1.5))]
    for top, want in ((1.6, SUPPORTS), (1.2, WITHIN_RANGE), (1.5, WITHIN_RANGE), (0.9, AGAINST)):
        found = comparisons({"ks": [5], "summary": [*rows, {"k": 5, "selection": "top", "seed": None, "heads": "L1H0",
                                                         "mean_logit_diff_drop": top, "share_top1_flipped": 0.2}]})
        assert found[0].verdict == want, top


def test_skipped_ablation_and_missing_battery_are_said(tmp_path: Path) -> None:
    doc = write_ok_model(tmp_path, "small", battery=False)
    edit_doc(tmp_path, {"ablation": {**doc["ablation"], "skipped_reason": "no head ranking over one prompt"}}, "small")
    write_reports(tmp_path)
    report = evaluation(tmp_path, "small")
    assert "The fact battery was not run" in report
    assert "Skipped: no head ranking over one prompt." in report
    edit_doc(tmp_path, {"ablation": None}, "small")
    write_reports(tmp_path)
    assert "Not run for this model" in evaluation(tmp_path, "small")


def test_a_battery_fact_as_main_prompt_leaves_out_only_the_attention_plot(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    for old in copy.glob("*.png"):
        old.unlink()
    edit_doc(copy, {"main_prompt_id": FACTS[0]})
    names = {p.name for p in write_reports(copy)}
    assert f"attention-{OK_MODEL}.png" not in names and f"layers-{OK_MODEL}.png" in names
    assert "No attention plot: the attention CSV has no rows for the main prompt" in evaluation(copy)


# --- skipped model and cross-model ------------------------------------------------------------------------------


def test_skipped_model_gets_its_reason_everywhere(run_dir: Path) -> None:
    assert f"Status: **skipped**. Reason: {SKIP_REASON}" in evaluation(run_dir, SKIPPED)
    cross = (run_dir / "evaluation-cross-model.md").read_text(encoding="utf-8")
    assert f"- `{SKIPPED}` (skipped): {SKIP_REASON}" in cross
    assert not list(run_dir.glob(f"*-{SKIPPED}.png")) and not (run_dir / f"llm-prompt-{SKIPPED}.md").exists()
    assert SKIPPED not in (run_dir / "llm-prompt-cross-model.md").read_text(encoding="utf-8")


def test_cross_model_places_heads_and_layers_by_relative_depth(run_dir: Path) -> None:
    tables = tables_by_heading((run_dir / "evaluation-cross-model.md").read_text(encoding="utf-8"))
    row = tables["Where the answer is written"][0]
    assert row["Model"] == f"`{OK_MODEL}`"
    assert row["Top 3 heads (rel. depth)"].startswith("L2H1 (0.750), L3H0 (1.000), ")
    assert row["Retrieval heads (rel. depth)"] == "L2H1 (0.750), L3H0 (1.000)"
    mlp = max(layers_summary(), key=lambda e: e["median_mlp_dla_logit_diff"])
    assert row["Largest MLP median: layer (rel. depth): DLA"] == (
        f"{mlp['layer']} ({mlp['rel_depth']:.3f}): {three(mlp['median_mlp_dla_logit_diff'])}")
    ablation = tables["Ablation at k = 5"][0]
    assert ablation["Top-k drop"] == "3.500" and ablation["Random drop (mean)"] == "0.550"
    assert tables["Models"][0]["Max sum error"] == "3.9e-06"


# --- LLM prompts ------------------------------------------------------------------------------------------------


def test_llm_prompt_inlines_the_json_and_the_small_csvs_only(run_dir: Path) -> None:
    text = (run_dir / f"llm-prompt-{OK_MODEL}.md").read_text(encoding="utf-8")
    assert text.count(f"### output-{OK_MODEL}.json") == 1
    for kind in (HEAD_SUMMARY, ABLATION, LAYERS):
        assert f"### output-{OK_MODEL}-{kind}.csv" in text
    for kind in (HEADS, COMPONENTS, ATTENTION):
        assert f"output-{OK_MODEL}-{kind}.csv" not in text.split("## Artefacts", 1)[1]
    ablation = text.split(f"### output-{OK_MODEL}-{ABLATION}.csv", 1)[1].split("```")[1]
    assert all(line.startswith(BATTERY_ROW) for line in ablation.splitlines()[2:] if line)
    layers = text.split(f"### output-{OK_MODEL}-{LAYERS}.csv", 1)[1].split("```")[1].splitlines()[2:]
    assert len(layers) == N_LAYERS and all(line.startswith("completion,") for line in layers)
    assert "Nothing was trimmed" in text
    assert "DLA is not causal" in text  # the template went in


def test_llm_prompt_over_budget_says_what_was_trimmed(run_dir: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    copy = copy_run(run_dir, tmp_path)
    monkeypatch.setattr(llm_pack, "CHAR_BUDGET", 20_000)
    write_reports(copy)
    text = (copy / f"llm-prompt-{OK_MODEL}.md").read_text(encoding="utf-8")
    assert f"- output-{OK_MODEL}.json: battery.facts removed ({len(FACTS)} entries" in text
    assert '"n_final_top1_correct": 2' in text and '"facts": [' not in text
    monkeypatch.setattr(llm_pack, "CHAR_BUDGET", 1_000)
    write_reports(copy)
    text = (copy / f"llm-prompt-{OK_MODEL}.md").read_text(encoding="utf-8")
    assert "Over budget even after every trim" in text


def test_keep_ranks_keeps_the_best_ranked_heads_and_says_so() -> None:
    header = ["layer", "head", "rank"]
    table = (header, [["0", str(h), str(r)] for h, r in ((0, 3), (1, 1), (2, 4), (3, 2))])
    src = llm_pack.Source("m", {}, "{}", {HEAD_SUMMARY: table})
    trimmed, notes = keep_ranks(2)(src)
    assert trimmed.tables[HEAD_SUMMARY] == (header, [["0", "1", "1"], ["0", "3", "2"]])
    assert notes == ["output-m-head-summary.csv: only the heads of rank 1..2 kept (of 4)."]
    assert keep_ranks(4)(src) == (src, [])


def test_templates_exist_and_say_what_to_check() -> None:
    folder = PROMPTS_DIR / "002_attention_and_attribution"
    for name in ("prompt-single-model-evaluation.txt", "prompt-cross-model-evaluation.txt",
                 "prompt-meta-evaluation.txt"):
        text = (folder / name).read_text(encoding="utf-8")
        assert "not causal" in text and "random" in text, name


# --- refused inputs ---------------------------------------------------------------------------------------------


def _one_line_error(folder: Path) -> str:
    with pytest.raises(ReportInputError) as info:
        write_reports(folder)
    message = info.value.message
    assert "\n" not in message and "002_attention_and_attribution/run.py" in message, message
    return message


def test_a_damaged_csv_is_one_line(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    path = artefact_path(copy, OK_MODEL, HEAD_SUMMARY)
    path.write_bytes(path.read_bytes()[:-40])  # cut short mid-row
    assert path.name in _one_line_error(copy)


def test_a_missing_csv_is_one_line(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    artefact_path(copy, OK_MODEL, ATTENTION).unlink()
    assert f"output-{OK_MODEL}-attention.csv is missing" in _one_line_error(copy)


def test_a_csv_without_a_needed_column_is_one_line(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    path = artefact_path(copy, OK_MODEL, LAYERS)
    frame = pd.read_csv(path).drop(columns=["p_answer"])
    frame.to_csv(path, index=False, lineterminator="\n")
    assert "lacks the column(s) p_answer" in _one_line_error(copy)


def test_a_newer_schema_version_is_refused(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    edit_doc(copy, {"schema_version": 99})
    assert "newer" in _one_line_error(copy)


def test_the_heads_column_stays_text() -> None:
    """The ablation CSV's heads ("L2H1 L3H0") and the other label columns are read as text."""
    from attention_and_attribution.reports.run_artefacts import SCHEMA

    assert {"heads", "hook", "selection", "component", "role"} <= SCHEMA.text_columns


def test_read_run_checks_the_main_prompt_has_rows(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    edit_doc(copy, {"main_prompt_id": "qa"})
    with pytest.raises(ReportInputError, match="has no prompt 'qa'"):
        read_attribution_run(copy)


# --- the command line, without torch ----------------------------------------------------------------------------


def _report(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "2000"}  # argparse wraps --help to the terminal, breaking names at hyphens
    return subprocess.run([sys.executable, str(EXPERIMENT / "report.py"), *args], capture_output=True, text=True,
                          timeout=300, check=False, env=env)


def test_report_cli_regenerates_without_torch(tmp_path: Path) -> None:
    folder = build_run(tmp_path / "out" / "run-latest")
    script = (f"import runpy, sys\nsys.argv = ['report.py', {str(tmp_path / 'out')!r}]\n"
              f"try:\n    runpy.run_path({str(EXPERIMENT / 'report.py')!r}, run_name='__main__')\n"
              "except SystemExit as exit_:\n    assert exit_.code == 0, exit_.code\n"
              "assert 'torch' not in sys.modules, 'report.py imported torch'\n"
              "assert 'transformers' not in sys.modules, 'report.py imported transformers'\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert f"in {folder}:" in result.stdout and "evaluation-cross-model.md" in result.stdout


def test_every_reports_module_is_torch_free() -> None:
    folder = EXPERIMENT / "attention_and_attribution" / "reports"
    modules = [f"attention_and_attribution.reports.{p.stem}" for p in sorted(folder.glob("*.py"))]
    script = "import importlib, sys\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules) + (
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'torch was imported'\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr


def test_report_cli_help_and_bad_folder(tmp_path: Path) -> None:
    help_text = _report("--help").stdout
    assert "usage: report.py" in help_text
    for name in ("head-grid-<model>.png", "attention-<model>.png", "layers-<model>.png", "evaluation-<model>.md",
                 "llm-prompt-<model>.md", "cross-model.png", "evaluation-cross-model.md", "llm-prompt-cross-model.md",
                 "llm-prompt-meta.md"):
        assert name in help_text, name
    result = _report(str(tmp_path / "nothing-here"))
    assert result.returncode == 2 and result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
