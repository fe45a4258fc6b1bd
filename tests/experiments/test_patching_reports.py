"""Experiment 003's reports: plots, factual markdown and LLM prompts, built from a synthetic run folder.

The run folder is written here with ``layers_core.runs.artefacts`` exactly per
``activation_patching.artefact_schema`` and the JSON fields of ``model_run.py`` (one
ok model with four pairs, one of them fully swept, and ``depth_comparison``; one
skipped model). The numbers are synthetic and chosen so every verdict is known:
the handover is at residual layer 3 of 4, the lens milestone comes earlier, the
strongest attention block at the same depth, the strongest MLP block later. Every
check reads the artefacts independently of the report code and compares.
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

from activation_patching.artefact_schema import (
    ATTRIBUTION,
    BATTERY,
    PATCHING,
    TEXT_COLUMNS,
    attribution_columns,
    battery_columns,
    patching_columns,
)
from activation_patching.reports import write_reports
from activation_patching.reports.fact_depth import first_answer_layer, last_subject_layer, order_word
from activation_patching.reports.llm_prompts import slim_pairs
from activation_patching.reports.md_depth import NOT_MEASURED
from layers_core.paths import PROMPTS_DIR, REPO_ROOT
from layers_core.reports import llm_pack
from layers_core.reports.run_reader import ReportInputError
from layers_core.runs.artefacts import artefact_path, read_csv_artefact, write_csv, write_json
from tests.fixtures.markdown_tables import tables_by_heading

EXPERIMENT = REPO_ROOT / "003_activation_patching"
OK_MODEL, SKIPPED = "alpha-4l", "gamma-70b"
SKIP_REASON = "needs 140 GB in bfloat16, 64 GB available: pick a smaller model"
N_LAYERS, N_HEADS = 4, 3
TOKENS = ["<s>", "The", " capital", " of", " Germany", " is"]
SUBJECT, ANSWER = 4, 5
FULL = "germany-france"
# pair_id, corruption, clean diff, corrupt diff, offset of its battery values
PAIRS = ((FULL, "swap", 4.5, -1.25, 0.0), ("france-spain", "swap", 3.0, 0.5, 0.01),
         ("japan-china", "swap", 2.0, 1.8, 0.02), ("italy", "noise", 5.0, 1.0, 0.0))
SUBJECT_DENOISE = [1.0, 0.95, 0.9, 0.1, 0.0]   # residual layers 0..L at the subject's last token (swap pairs)
ANSWER_DENOISE = [0.0, 0.05, 0.3, 0.8, 1.0]    # ... at the answer position
NOISE_SUBJECT = [0.9, 0.8, 0.5, 0.3, 0.0]      # the noise pair's
NOISE_ANSWER = [0.0, 0.1, 0.35, 0.6, 1.0]
RULE = "the first residual layer from which on ... (synthetic)"
LENS_RULE = "the first residual layer where the norm lens ranks the clean answer top-1"
DLA_RULE = "direct logit attribution of (clean answer - corrupt answer) at the answer position"


def rel(layer: int, block: bool = False) -> float:
    return round((layer + block) / N_LAYERS, 6)


# --- the synthetic patching grid of the fully swept pair ---------------------------------------------------------


def denoise_value(component: str, layer: int, position: int | None, head: int | None) -> float:
    """Unique values: the strongest site of each component is known (see the tests)."""
    tiny = 0.001 * layer + 0.0001 * (position if position is not None else 9)
    if component == "resid_pre":
        if position == SUBJECT:
            return SUBJECT_DENOISE[layer]
        if position == ANSWER:
            return ANSWER_DENOISE[layer]
        return round(tiny, 6)
    if component == "attn_out":
        return 0.7 if (layer, position) == (2, ANSWER) else round(tiny, 6)
    if component == "mlp_out":
        return 0.6 if (layer, position) == (1, SUBJECT) else round(tiny, 6)
    return 0.8 if (layer, head, position) == (2, 1, None) else (0.65 if (layer, head) == (3, 0) else round(tiny, 6))


def noise_value(component: str, layer: int, position: int | None, head: int | None) -> float:
    return round(1.0 - 0.9 * denoise_value(component, layer, position, head), 6)


def sites() -> list[tuple[str, int, int | None, int | None]]:
    """(component, layer, head, position) in the run's order."""
    found: list[tuple[str, int, int | None, int | None]] = []
    found += [("resid_pre", layer, None, p) for layer in range(N_LAYERS + 1) for p in range(len(TOKENS))]
    for component in ("attn_out", "mlp_out"):
        found += [(component, layer, None, p) for layer in range(N_LAYERS) for p in range(len(TOKENS))]
    found += [("head", layer, head, p) for layer in range(N_LAYERS) for head in range(N_HEADS) for p in (None, ANSWER)]
    return found


def hook(component: str, layer: int) -> str:
    if component == "resid_pre":
        return f"blocks.{N_LAYERS - 1}.hook_resid_post" if layer == N_LAYERS else f"blocks.{layer}.hook_resid_pre"
    return f"blocks.{layer}.attn.hook_z" if component == "head" else f"blocks.{layer}.hook_{component}"


def patching_rows() -> list[dict[str, Any]]:
    rows = []
    for direction, value in (("denoise", denoise_value), ("noise", noise_value)):
        for component, layer, head, position in sites():
            rows.append({"pair_id": FULL, "direction": direction, "component": component, "layer": layer,
                         "head": head, "position": position, "token": None if position is None else TOKENS[position],
                         "rel_depth": rel(layer, component != "resid_pre"), "hook": hook(component, layer),
                         "restoration": value(component, layer, position, head)})
    return rows


def attribution_rows() -> list[dict[str, Any]]:
    rows = []
    for i, row in enumerate(patching_rows()):
        exact = row["restoration"]
        rows.append({**{k: v for k, v in row.items() if k != "restoration"}, "exact": exact,
                     "approx": round(0.4 * exact + 0.05 * (i % 7), 6), "approx_ig": round(exact + 0.001 * (i % 5), 6)})
    return rows


def agreement(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["direction"], row["component"]), []).append(row)
        groups.setdefault((row["direction"], "all"), []).append(row)
    return [{"pair_id": FULL, "direction": d, "component": c, "n_sites": len(members),
             **{f"r_{m}": round(statistics.correlation([x["exact"] for x in members], [x[m] for x in members]), 6)
                for m in ("approx", "approx_ig")},
             "seconds_approx": 0.7, "seconds_approx_ig": 5.9} for (d, c), members in sorted(groups.items())]


# --- the battery ------------------------------------------------------------------------------------------------


def battery_rows() -> list[dict[str, Any]]:
    rows = []
    for pair_id, corruption, _, _, offset in PAIRS:
        subject, answer = (SUBJECT_DENOISE, ANSWER_DENOISE) if corruption == "swap" else (NOISE_SUBJECT, NOISE_ANSWER)
        for direction in ("denoise", "noise"):
            for layer in range(N_LAYERS + 1):
                s, a = subject[layer] + offset, answer[layer] - offset
                if direction == "noise":
                    s, a = 1.0 - s, 1.0 - a
                rows.append({"pair_id": pair_id, "corruption": corruption, "direction": direction, "layer": layer,
                             "rel_depth": rel(layer), "hook": hook("resid_pre", layer), "subject_position": SUBJECT,
                             "subject_token": TOKENS[SUBJECT], "answer_position": ANSWER,
                             "restoration_subject": round(s, 6), "restoration_answer": round(a, 6)})
    return rows


def resolvable(pair: tuple) -> bool:
    return abs(pair[2] - pair[3]) >= 0.5


def summaries(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for corruption in ("swap", "noise"):
        usable = {p[0] for p in PAIRS if p[1] == corruption and resolvable(p)}
        kept = [r for r in rows if r["pair_id"] in usable]
        medians = []
        for layer in range(N_LAYERS + 1):
            entry: dict[str, Any] = {"layer": layer, "rel_depth": rel(layer)}
            for direction in ("denoise", "noise"):
                for site in ("subject", "answer"):
                    at = [r for r in kept if r["layer"] == layer and r["direction"] == direction]
                    entry[f"{direction}_{site}"] = round(statistics.median(r[f"restoration_{site}"] for r in at), 6)
            medians.append(entry)
        handover = {d: {"layer": 3, "rel_depth": rel(3)} for d in ("denoise", "noise")}
        out.append({"corruption": corruption, "n_pairs": len(usable), "handover": handover, "medians": medians})
    return out


def pair_entry(spec: tuple) -> dict[str, Any]:
    pair_id, corruption, clean, corrupt, _ = spec
    full = pair_id == FULL
    return {"pair_id": pair_id, "corruption": corruption, "clean_prompt": "The capital of Germany is",
            "corrupt_prompt": "The capital of France is", "n_tokens": len(TOKENS), "corrupt_positions": [SUBJECT],
            "subject_position": SUBJECT, "answer_token": " Berlin", "corrupt_answer_token": " Paris",
            "corrupt_answer_rule": "the partner fact's answer", "clean_logit_diff": clean,
            "corrupt_logit_diff": corrupt, "gap": clean - corrupt, "resolvable": resolvable(spec),
            "unpatched_restoration": {"denoise": 0.0, "noise": 1.0} if full else None, "full_sweep": full}


def depth_comparison() -> dict[str, Any]:
    dla = [{"layer": layer, "rel_depth": rel(layer, True), "median_attn": 0.1 * layer, "median_mlp": 0.2 * layer}
           for layer in range(N_LAYERS)]
    return {"n_prompts": 3, "lens_rule": LENS_RULE,
            "first_rank1": {"median_layer": 2.0, "median_rel_depth": 0.5, "n_reached": 3, "n_never": 0},
            "dla_rule": DLA_RULE, "dla_layers": dla, "top_attn_layers": [2, 3, 1], "top_mlp_layers": [3, 0]}


def summary_doc(name: str, battery: list[dict[str, Any]], attribution: list[dict[str, Any]]) -> dict[str, Any]:
    found = summaries(battery)
    return {
        "schema_version": 1, "status": "ok", "reason": None,
        "model": {"spec": name, "name": name, "kind": "bundled", "architecture": "LlamaForCausalLM",
                  "model_type": "llama"},
        "provenance": {"device": "cpu", "dtype": "float32", "seed": 316, "full_sweep_seconds": 12.5},
        "diagnostics": {"n_layers": N_LAYERS, "n_heads": N_HEADS, "d_model": 48, "vocab_size": 500,
                        "prompt_lengths": [len(TOKENS)], "rows_per_batch": {str(len(TOKENS)): 64}},
        "pairs_source": "capitals",
        "pairs": [pair_entry(p) for p in PAIRS],
        "refused": [{"prompt_id": "peru", "reason": "no partner of equal token length, and noise cannot be used"}],
        "noise": {"point": "blocks.0.hook_resid_pre", "scale": 3.0, "seed": 0, "embedding_std": 0.1133},
        "full_sweeps": [FULL],
        "battery": {"min_gap_logits": 0.5, "n_pairs_resolvable": sum(resolvable(p) for p in PAIRS),
                    "handover_rule": RULE, "handover": {"corruption": "swap", **found[0]["handover"]},
                    "summaries": found},
        "attribution": {"methods": ["approx", "approx_ig"], "agreement": agreement(attribution)},
        "depth_comparison": depth_comparison(),
    }


def write_ok_model(run_dir: Path, name: str) -> dict[str, Any]:
    """Write output-<name>.json and its three CSVs; returns the JSON document."""
    battery, attribution = battery_rows(), attribution_rows()
    write_csv(artefact_path(run_dir, name, PATCHING), patching_rows(), patching_columns())
    write_csv(artefact_path(run_dir, name, BATTERY), battery, battery_columns())
    write_csv(artefact_path(run_dir, name, ATTRIBUTION), attribution, attribution_columns())
    doc = summary_doc(name, battery, attribution)
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
    folder = build_run(tmp_path_factory.mktemp("patching") / "run-latest")
    write_reports(folder)
    return folder


def doc_of(run_dir: Path, name: str = OK_MODEL) -> dict[str, Any]:
    return json.loads(artefact_path(run_dir, name, "json").read_text(encoding="utf-8"))


def edit_doc(run_dir: Path, change: dict[str, Any], name: str = OK_MODEL) -> None:
    write_json(artefact_path(run_dir, name, "json"), {**doc_of(run_dir, name), **change})


def evaluation(run_dir: Path, name: str = OK_MODEL) -> str:
    return (run_dir / f"evaluation-{name}.md").read_text(encoding="utf-8")


def cross(run_dir: Path) -> str:
    return (run_dir / "evaluation-cross-model.md").read_text(encoding="utf-8")


def copy_run(run_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    return copy


def three(x: float) -> str:
    return f"{x:.3f}"


def patching_csv(run_dir: Path) -> pd.DataFrame:
    return read_csv_artefact(artefact_path(run_dir, OK_MODEL, PATCHING), TEXT_COLUMNS)


# --- every file -------------------------------------------------------------------------------------------------


PLOTS = ("tracing", "heads", "battery", "attribution")


def test_every_report_is_written_and_nothing_for_the_skipped_model(tmp_path: Path) -> None:
    folder = build_run(tmp_path / "run-latest")
    written = write_reports(folder)
    names = sorted(p.name for p in written)
    expected = sorted([*(f"{plot}-{OK_MODEL}.png" for plot in PLOTS), f"evaluation-{OK_MODEL}.md",
                       f"llm-prompt-{OK_MODEL}.md", f"evaluation-{SKIPPED}.md", "cross-model.png",
                       "evaluation-cross-model.md", "llm-prompt-cross-model.md"])
    assert names == expected
    for path in written:
        assert path.parent == folder and path.stat().st_size > 0, path
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = evaluation(folder)
    for plot in PLOTS:
        assert f"![{plot}]({plot}-{OK_MODEL}.png)" in report
    assert "![cross-model](cross-model.png)" in cross(folder)


def test_the_same_artefacts_give_the_same_bytes_and_the_meta_prompt_appears(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    (copy / "llm-evaluation-cross-model.md").write_text("An LLM's answer.\n", encoding="utf-8")
    assert "llm-prompt-meta.md" in {p.name for p in write_reports(copy)}
    meta = (copy / "llm-prompt-meta.md").read_text(encoding="utf-8")
    assert "An LLM's answer." in meta and f"### evaluation-{OK_MODEL}.md" in meta
    assert "exactness" in meta.lower()  # the 003 template went in
    for path in sorted(run_dir.glob("*.md")) + sorted(run_dir.glob("*.png")):
        assert (copy / path.name).read_bytes() == path.read_bytes(), path.name


# --- the per-model markdown against the artefacts ----------------------------------------------------------------


def test_exactness_check_copies_the_stored_values_and_passes(run_dir: Path) -> None:
    report = evaluation(run_dir)
    rows = tables_by_heading(report)["Exactness check"]
    found = [(r["Pair"], r["Direction"], r["Unpatched restoration"], r["Expected"], r["Within tolerance"])
             for r in rows]
    assert found == [(f"`{FULL}`", "denoise", "0.0", "0.0", "yes"), (f"`{FULL}`", "noise", "1.0", "1.0", "yes")]
    assert "Passed: every unpatched run scores its baseline." in report and "WARNING" not in report
    assert report.index("## Exactness check") < report.index("## Pairs")


def test_an_unpatched_run_off_its_baseline_is_flagged(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    pairs = doc_of(copy)["pairs"]
    pairs[0] = {**pairs[0], "unpatched_restoration": {"denoise": 0.0, "noise": 0.99}}
    edit_doc(copy, {"pairs": pairs})
    write_reports(copy)
    report = evaluation(copy)
    assert "**WARNING: an unpatched run does not score its baseline**" in report
    rows = tables_by_heading(report)["Exactness check"]
    assert rows[1]["Unpatched restoration"] == "0.99" and rows[1]["Within tolerance"] == "**NO**"
    assert rows[0]["Within tolerance"] == "yes"
    assert tables_by_heading(cross(copy))["Models"][0]["Exactness"] == "**FAILED**"


def test_a_difference_within_the_tolerance_passes(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    pairs = doc_of(copy)["pairs"]
    pairs[0] = {**pairs[0], "unpatched_restoration": {"denoise": 4e-7, "noise": 1.0}}
    edit_doc(copy, {"pairs": pairs})
    write_reports(copy)
    assert "Passed: every unpatched run scores its baseline." in evaluation(copy)


def test_pairs_are_counted_and_copied(run_dir: Path) -> None:
    report = evaluation(run_dir)
    assert ("4 pair(s), 3 swap (the subject swapped for another fact's), 1 noise (causal tracing's noise on the "
            "subject), 1 fact(s) refused. 3 resolvable (gap at least 0.5 logits; the battery's count: 3)") in report
    gaps = sorted(p[2] - p[3] for p in PAIRS)
    assert f"gap min / median / max: {three(gaps[0])} / {three(statistics.median(gaps))} / {three(gaps[-1])}" in report
    assert "Left out of the battery's medians (gap too small): `japan-china`." in report
    rows = tables_by_heading(report)["Every pair"]
    for row, p in zip(rows, doc_of(run_dir)["pairs"], strict=True):
        assert row["Pair"] == f"`{p['pair_id']}`" and row["Corruption"] == p["corruption"]
        assert row["Clean diff"] == three(p["clean_logit_diff"]) and row["Gap"] == three(p["gap"])
        assert row["Resolvable"] == ("yes" if p["resolvable"] else "no")
    assert "- `peru`: no partner of equal token length, and noise cannot be used" in report


def test_strongest_sites_are_the_extremes_of_the_patching_csv(run_dir: Path) -> None:
    rows = tables_by_heading(evaluation(run_dir))[f"Pair `{FULL}`"]
    assert len(rows) == 2 * 4 * 3
    csv = patching_csv(run_dir)
    for direction in ("denoise", "noise"):
        for component, name in (("resid_pre", "residual"), ("attn_out", "attention output"),
                                ("mlp_out", "MLP output"), ("head", "head output (hook_z)")):
            chosen = csv[(csv["direction"] == direction) & (csv["component"] == component)]
            if component == "resid_pre":  # layers 0 and L are fixed by construction and left out
                chosen = chosen[chosen["layer"].between(1, N_LAYERS - 1)]
            best = chosen["restoration"].max() if direction == "denoise" else chosen["restoration"].min()
            top = next(r for r in rows if r["Direction"] == direction and r["Component"] == name and r["Rank"] == "1")
            assert top["Restoration"] == three(best), (direction, component)
    top = {(r["Direction"], r["Component"]): r for r in rows if r["Rank"] == "1"}
    head = top[("denoise", "head output (hook_z)")]
    assert (head["Layer / head"], head["Position"], head["Rel. depth"]) == ("L2H1", "all", "0.750")
    attn = top[("noise", "attention output")]
    assert (attn["Layer / head"], attn["Position"], attn["Token"]) == ("2", str(ANSWER), "` is`")
    assert attn["Effect"] == three(1 - noise_value("attn_out", 2, ANSWER, None))


def test_handover_is_stated_with_its_medians(run_dir: Path) -> None:
    report = evaluation(run_dir)
    medians = doc_of(run_dir)["battery"]["summaries"][0]["medians"]
    at, before = medians[3], medians[2]
    assert (f"- swap pairs (2), denoise: residual layer 3 (0.750); there the medians are subject "
            f"{three(at['denoise_subject'])}, answer {three(at['denoise_answer'])}; one layer before (layer 2): "
            f"subject {three(before['denoise_subject'])}, answer {three(before['denoise_answer'])}.") in report
    assert f"Handover rule (from the JSON): {RULE}." in report
    rows = tables_by_heading(report)["Medians per layer: swap pairs (2)"]
    assert [r["Layer"] for r in rows] == [str(e["layer"]) for e in medians]
    for row, e in zip(rows, medians, strict=True):
        assert row["Denoise: subject"] == three(e["denoise_subject"])
        assert row["Noise: answer"] == three(e["noise_answer"])


def test_no_handover_is_said_plainly(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    battery = doc_of(copy)["battery"]
    battery["summaries"][0]["handover"]["denoise"] = None
    edit_doc(copy, {"battery": battery})
    write_reports(copy)
    report = evaluation(copy)
    assert "- swap pairs (2), denoise: no handover: at the last residual layer the answer position's median is not " \
           "above the subject's, so no layer meets the rule." in report
    assert "- Handover (denoising): none found." in report
    assert tables_by_heading(cross(copy))["Where the fact lives, by relative depth"][0]["Handover, denoise"] == "none"


def test_pairs_whose_directions_are_the_same_runs_are_counted(run_dir: Path, tmp_path: Path) -> None:
    """Every synthetic pair is corrupted at position 4 alone, the answer at 5: denoise and noise mirror."""
    assert "3 of the 3 resolvable pairs are corrupted at the subject's last token alone" in evaluation(run_dir)
    copy = copy_run(run_dir, tmp_path)
    pairs = [{**p, "corrupt_positions": [3, 4]} for p in doc_of(copy)["pairs"]]
    edit_doc(copy, {"pairs": pairs})
    write_reports(copy)
    assert "No resolvable pair is corrupted at the subject's last token alone" in evaluation(copy)


def test_where_the_fact_lives_follows_the_numbers(run_dir: Path) -> None:
    report = evaluation(run_dir)
    section = report.split("## Where the fact lives", 1)[1].split("\n## ", 1)[0]
    medians = doc_of(run_dir)["battery"]["summaries"][0]["medians"]
    assert (f"the median restoration is at least 0.5 up to residual layer 2 (0.500) (median "
            f"{three(medians[2]['denoise_subject'])} there)") in section
    assert f"first reaches 0.5 at residual layer 3 (0.750) (median {three(medians[3]['denoise_answer'])})" in section
    assert "The lens milestone, at depth 0.500, comes earlier than the patching handover (depth 0.750)." in section
    assert ("block 2 (depth 0.750), block 3 (depth 1.000), block 1 (depth 0.500). Block 2, the strongest, at depth "
            "0.750, comes at the same depth as the patching handover") in section
    assert "Block 3, the strongest, at depth 1.000, comes later than the patching handover" in section
    assert f"Lens: {LENS_RULE}. DLA: {DLA_RULE}." in section and "3 prompt(s) reach rank 1, 0 never" in section
    rows = {r["Measure"]: r for r in tables_by_heading(report)["Against 001's lens and 002's DLA"]}
    assert rows["First rank-1 layer, median (001's lens)"]["Layer"] == "2"
    assert rows["Top MLP block 2 by median DLA (002)"]["Rel. depth"] == "0.250"
    assert rows["Handover, noise (patching)"]["Layer"] == "3"


def test_a_run_without_depth_comparison_says_it_was_not_measured(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    doc = doc_of(copy)
    del doc["depth_comparison"]
    write_json(artefact_path(copy, OK_MODEL, "json"), doc)
    write_reports(copy)
    assert NOT_MEASURED in evaluation(copy)
    assert "Against 001's lens" not in evaluation(copy)
    row = tables_by_heading(cross(copy))["Where the fact lives, by relative depth"][0]
    assert row["Lens first rank-1 (median)"] == "not measured" and row["Top MLP DLA blocks"] == "not measured"


def test_attribution_agreement_is_copied(run_dir: Path) -> None:
    report = evaluation(run_dir)
    rows = tables_by_heading(report)["Attribution patching"]
    stored = doc_of(run_dir)["attribution"]["agreement"]
    assert len(rows) == len(stored)
    for row, e in zip(rows, stored, strict=True):
        assert (row["Direction"], row["Component"], row["Sites"]) == (e["direction"], e["component"], str(e["n_sites"]))
        assert row["r plain"] == three(e["r_approx"]) and row["r path-averaged"] == three(e["r_approx_ig"])
    better = sum(e["r_approx_ig"] > e["r_approx"] for e in stored)
    assert f"agrees better than the plain one in {better} of {len(stored)} groups" in report


def test_a_run_without_full_sweeps_leaves_out_the_grid_plots(tmp_path: Path) -> None:
    write_ok_model(tmp_path, OK_MODEL)
    doc = doc_of(tmp_path)
    pairs = [{**p, "full_sweep": False, "unpatched_restoration": None} for p in doc["pairs"]]
    edit_doc(tmp_path, {"full_sweeps": [], "pairs": pairs, "attribution": {"methods": ["approx"], "agreement": []}})
    write_csv(artefact_path(tmp_path, OK_MODEL, PATCHING), [], patching_columns())
    write_csv(artefact_path(tmp_path, OK_MODEL, ATTRIBUTION), [], attribution_columns())
    names = {p.name for p in write_reports(tmp_path)}
    assert f"battery-{OK_MODEL}.png" in names
    assert not names & {f"{plot}-{OK_MODEL}.png" for plot in ("tracing", "heads", "attribution")}
    report = evaluation(tmp_path)
    assert "No pair was fully swept in this run" in report
    assert "No pair carries the check (no pair was fully swept)" in report
    assert "Not drawn (tracing, heads, attribution)" in report
    assert tables_by_heading(cross(tmp_path))["Models"][0]["Exactness"] == "not run"


# --- skipped model and cross-model ------------------------------------------------------------------------------


def test_skipped_model_gets_its_reason_everywhere(run_dir: Path) -> None:
    assert f"Status: **skipped**. Reason: {SKIP_REASON}" in evaluation(run_dir, SKIPPED)
    assert f"- `{SKIPPED}` (skipped): {SKIP_REASON}" in cross(run_dir)
    assert not list(run_dir.glob(f"*-{SKIPPED}.png")) and not (run_dir / f"llm-prompt-{SKIPPED}.md").exists()
    assert SKIPPED not in (run_dir / "llm-prompt-cross-model.md").read_text(encoding="utf-8")


def test_cross_model_places_the_depths_side_by_side(run_dir: Path) -> None:
    tables = tables_by_heading(cross(run_dir))
    row = tables["Where the fact lives, by relative depth"][0]
    assert row["Model"] == f"`{OK_MODEL}`" and row["Pairs"] == "swap"
    assert row["Handover, denoise"] == "3 (0.750)" and row["Subject: last layer >= 0.5"] == "2 (0.500)"
    assert row["Answer: first layer >= 0.5"] == "3 (0.750)" and row["Lens first rank-1 (median)"] == "2 (0.500)"
    assert row["Top attention DLA blocks"] == "2 (0.750), 3 (1.000), 1 (0.500)"
    models = tables["Models"][0]
    assert models["Pairs swap / noise / refused"] == "3 / 1 / 1" and models["Exactness"] == "passed"
    stored = {e["direction"]: e for e in doc_of(run_dir)["attribution"]["agreement"] if e["component"] == "all"}
    agree = tables["Attribution patching against exact patching"][0]
    assert agree["r plain, noise"] == three(stored["noise"]["r_approx"])
    assert agree["r path-averaged, denoise"] == three(stored["denoise"]["r_approx_ig"])


def test_fact_depth_milestones_and_order() -> None:
    medians = [{"layer": i, "rel_depth": i / 4, "denoise_subject": s, "denoise_answer": a}
               for i, (s, a) in enumerate(zip([0.9, 0.4, 0.6, 0.1, None], [0.0, 0.5, 0.2, 0.9, 1.0], strict=True))]
    assert last_subject_layer(medians) is not None and last_subject_layer(medians).layer == 2  # type: ignore[union-attr]
    assert first_answer_layer(medians) is not None and first_answer_layer(medians).layer == 1  # type: ignore[union-attr]
    assert last_subject_layer([{**m, "denoise_subject": 0.1} for m in medians]) is None
    assert order_word(0.5, 0.75) == "earlier than" and order_word(0.8, 0.75) == "later than"
    assert order_word(0.75, 0.75) == "at the same depth as"
    # Block 12 of 18 writes into residual 13: the artefacts round one depth (0.722222), not always the other.
    assert order_word(0.722222, 13 / 18) == "at the same depth as"


# --- LLM prompts ------------------------------------------------------------------------------------------------


def test_llm_prompt_inlines_the_json_and_the_first_pairs_patching_rows_only(run_dir: Path) -> None:
    text = (run_dir / f"llm-prompt-{OK_MODEL}.md").read_text(encoding="utf-8")
    artefacts = text.split("## Artefacts", 1)[1]
    assert artefacts.count(f"### output-{OK_MODEL}.json") == 1
    assert f"### output-{OK_MODEL}-{PATCHING}.csv" in artefacts
    for kind in (BATTERY, ATTRIBUTION):
        assert f"output-{OK_MODEL}-{kind}.csv" not in artefacts
    rows = artefacts.split(f"### output-{OK_MODEL}-{PATCHING}.csv", 1)[1].split("```")[1].splitlines()[2:]
    assert len(rows) == len(patching_rows()) and all(r.startswith(f"{FULL},") for r in rows)
    assert "Nothing was trimmed" in text
    assert "exactness" in text.lower() and "handover" in text  # the template went in


def test_llm_prompt_over_budget_says_what_was_trimmed(run_dir: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    copy = copy_run(run_dir, tmp_path)
    size = len((copy / f"llm-prompt-{OK_MODEL}.md").read_text(encoding="utf-8"))
    n_heads = sum(r["component"] == "head" for r in patching_rows())
    monkeypatch.setattr(llm_pack, "CHAR_BUDGET", size - 3_000)
    write_reports(copy)
    text = (copy / f"llm-prompt-{OK_MODEL}.md").read_text(encoding="utf-8")
    assert f"- output-{OK_MODEL}-{PATCHING}.csv: the head rows removed ({n_heads} rows)." in text
    assert f"{FULL},denoise,head," not in text and f"{FULL},denoise,mlp_out," in text
    monkeypatch.setattr(llm_pack, "CHAR_BUDGET", 1_000)
    write_reports(copy)
    text = (copy / f"llm-prompt-{OK_MODEL}.md").read_text(encoding="utf-8")
    assert "Over budget even after every trim" in text and "every row but the residual's removed" in text
    assert f"{FULL},denoise,mlp_out," not in text and f"{FULL},denoise,resid_pre," in text


def test_slim_pairs_keeps_the_numbers_and_the_full_pairs_prompts() -> None:
    pairs = [pair_entry(p) for p in PAIRS]
    src = llm_pack.Source("m", {"pairs": pairs}, "{}", {})
    trimmed, notes = slim_pairs(src)
    slim = trimmed.summary["pairs"]
    assert slim[0] == pairs[0] and "clean_prompt" not in slim[1] and slim[1]["gap"] == pairs[1]["gap"]
    assert notes == ["output-m.json: clean_prompt, corrupt_prompt, corrupt_positions, corrupt_answer_rule removed "
                     "from the 3 pairs not fully swept (their logit differences, gaps and flags are kept)."]
    assert slim_pairs(trimmed) == (trimmed, [])


def test_templates_exist_and_say_what_to_check() -> None:
    folder = PROMPTS_DIR / "003_activation_patching"
    for name in ("prompt-single-model-evaluation.txt", "prompt-cross-model-evaluation.txt",
                 "prompt-meta-evaluation.txt"):
        text = (folder / name).read_text(encoding="utf-8").lower()
        for word in ("exactly 0", "handover", "attribution patching", "depth_comparison", "one pair"):
            assert word in text, (name, word)


# --- refused inputs ---------------------------------------------------------------------------------------------


def _one_line_error(folder: Path) -> str:
    with pytest.raises(ReportInputError) as info:
        write_reports(folder)
    message = info.value.message
    assert "\n" not in message and "003_activation_patching/run.py" in message, message
    return message


def test_a_damaged_csv_is_one_line(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    path = artefact_path(copy, OK_MODEL, BATTERY)
    path.write_bytes(path.read_bytes()[:-40])  # cut short mid-row
    assert path.name in _one_line_error(copy)


def test_a_missing_csv_is_one_line(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    artefact_path(copy, OK_MODEL, ATTRIBUTION).unlink()
    assert f"output-{OK_MODEL}-attribution.csv is missing" in _one_line_error(copy)


def test_a_csv_without_a_needed_column_is_one_line(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    path = artefact_path(copy, OK_MODEL, PATCHING)
    frame = pd.read_csv(path).drop(columns=["restoration"])
    frame.to_csv(path, index=False, lineterminator="\n")
    assert "lacks the column(s) restoration" in _one_line_error(copy)


def test_a_fully_swept_pair_without_rows_is_one_line(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    edit_doc(copy, {"full_sweeps": [FULL, "france-spain"]})
    assert "has no rows for the fully swept pair 'france-spain'" in _one_line_error(copy)
    edit_doc(copy, {"full_sweeps": ["atlantis"]})
    assert "has no pair 'atlantis'" in _one_line_error(copy)


def test_a_newer_schema_version_is_refused(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    edit_doc(copy, {"schema_version": 99})
    assert "newer" in _one_line_error(copy)


def test_an_ok_model_without_its_battery_is_refused(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    doc = doc_of(copy)
    del doc["battery"]
    write_json(artefact_path(copy, OK_MODEL, "json"), doc)
    assert "has status ok but no 'battery'" in _one_line_error(copy)


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
    assert f"tracing-{OK_MODEL}.png" in result.stdout


def test_every_reports_module_is_torch_free() -> None:
    folder = EXPERIMENT / "activation_patching" / "reports"
    modules = [f"activation_patching.reports.{p.stem}" for p in sorted(folder.glob("*.py"))]
    script = "import importlib, sys\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules) + (
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'torch was imported'\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr


def test_report_cli_help_and_bad_folder(tmp_path: Path) -> None:
    help_text = _report("--help").stdout
    assert "usage: report.py" in help_text
    for name in ("tracing-<model>.png", "heads-<model>.png", "battery-<model>.png", "attribution-<model>.png",
                 "evaluation-<model>.md", "llm-prompt-<model>.md", "cross-model.png", "evaluation-cross-model.md",
                 "llm-prompt-cross-model.md", "llm-prompt-meta.md"):
        assert name in help_text, name
    result = _report(str(tmp_path / "nothing-here"))
    assert result.returncode == 2 and result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
