"""Experiment 004's reports: plots, factual markdown and LLM prompts, built from a synthetic run folder.

The run folder is written here with ``layers_core.runs.artefacts`` exactly per
``sae_features.artefact_schema`` and the JSON fields of ``model_run.py``, without
running a model: ``alpha-8l`` (8 layers) with SAEs on residuals 2 and 4 trained here and
a release SAE on residual 6 (trained on another model name, hosted on Neuronpedia),
every SAE above the quality thresholds; ``gamma-4l`` with one weak SAE; ``beta-2b``,
failed. The numbers are synthetic and chosen so every verdict is known: alpha has 1, 2
and 3 categories (of 3) with a specialist that holds at depths 0.25, 0.5 and 0.75. Every
specialist has a feature card whose tokens are hostile on purpose (markup, ``|``, newlines,
tabs, backticks, backslashes, emoji, other scripts). Every check reads the artefacts
independently of the report code and compares.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from layers_core.paths import PROMPTS_DIR, REPO_ROOT
from layers_core.reports import llm_pack
from layers_core.reports.run_reader import ReportInputError
from layers_core.runs.artefacts import artefact_path, read_csv_artefact, write_csv, write_json
from sae_features.artefact_schema import (
    FEATURES,
    SAE_QUALITY,
    SCHEMA_VERSION,
    SPECIALISTS,
    TEXT_ACTIVITY,
    TEXT_COLUMNS,
    features_columns,
    sae_quality_columns,
    specialists_columns,
    text_activity_columns,
)
from sae_features.reports import (
    cross_model_plot,
    feature_heatmaps_plot,
    histogram_plot,
    quality_plot,
    specialists_plot,
    write_reports,
)
from sae_features.reports.md_sources import same_model
from tests.fixtures.markdown_tables import tables_by_heading

EXPERIMENT = REPO_ROOT / "004_sae_features"
ALPHA, GAMMA, FAILED = "alpha-8l", "gamma-4l", "beta-2b"
FAIL_REASON = "out of memory while training the SAEs: pick fewer layers"
CATEGORIES = ("code", "urls", "prose")
TEXTS_PER_CATEGORY = 4
RULE = "held-out AUROC >= 0.9 and held-out precision >= 0.8 at the threshold chosen on the find half"
RULES = {"specialist_min_auroc": 0.9, "specialist_min_precision": 0.8, "specialist_min_presence": 0.5,
         "dense_threshold": 0.1, "selective_min_texts": 3}
THRESHOLDS = {"explained_variance": 0.8, "ce_loss_recovered": 0.9}
RELEASE = {"kind": "release", "spec": "alpha-res/layer_6", "release": "alpha-res", "sae_id": "layer_6",
           "model": "org/alpha-base", "repo_id": "org/alpha-saes", "neuronpedia": "alpha-base/6-res"}
DISCOVERY = {"strongest": [5, 9, 12, 20], "frequent": [3, 5], "selective": [12, 9],
             "category": {"code": [5, 3], "urls": [9], "prose": [12]}}
Found = tuple[int, float, float, bool]  # a specialist: feature, held-out AUROC, held-out precision, holds
# Per model: (layer, d_sae, source, explained variance, loss recovered, {category: specialist or None})
SAES: dict[str, list[tuple[int, int, dict[str, Any], float, float, dict[str, Found | None]]]] = {
    ALPHA: [
        (2, 64, {"kind": "train"}, 0.85, 0.95,
         {"code": (5, 0.95, 1.0, True), "urls": (9, 0.85, 0.75, False), "prose": None}),
        (4, 64, {"kind": "train"}, 0.9, 0.93,
         {"code": (5, 0.96, 1.0, True), "urls": (9, 0.92, 0.8, True), "prose": (12, 0.7, 0.5, False)}),
        (6, 128, RELEASE, 0.82, 0.91,
         {"code": (3, 1.0, 1.0, True), "urls": (9, 0.97, 0.9, True), "prose": (12, 0.91, 0.85, True)}),
    ],
    GAMMA: [(2, 32, {"kind": "train"}, 0.41, 0.6, {"code": (5, 0.75, 0.5, False), "urls": None, "prose": None})],
}
N_LAYERS = {ALPHA: 8, GAMMA: 4}
CE_CLEAN, CE_ZERO = 3.0, 9.0


def three(x: float) -> str:
    return f"{x:.3f}"


def pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def rel(name: str, layer: int) -> float:
    return round(layer / N_LAYERS[name], 6)


def sae_name(source: dict[str, Any]) -> str:
    return "trained" if source["kind"] == "train" else source["spec"]


def heading(name: str, layer: int, source: dict[str, Any]) -> str:
    return f"residual {layer} ({three(rel(name, layer))}), `{sae_name(source)}`"


# --- the synthetic artefacts ------------------------------------------------------------------------------------


def texts() -> list[tuple[str, str, str]]:
    """(text_id, category, half) in file order: each category's texts alternate find, test."""
    return [(f"{c}-{i + 1:02d}", c, "find" if i % 2 == 0 else "test")
            for c in CATEGORIES for i in range(TEXTS_PER_CATEGORY)]


TOP_FEATURES = {"code": [5, 5, 7, 9], "urls": [11, 9, 11, 9], "prose": [12, 3, 12, 12]}  # urls: a tie, the lower id


def activity_rows(layer: int, d_sae: int) -> list[dict[str, Any]]:
    rows = []
    for index, (text_id, category, half) in enumerate(texts()):
        c, i = CATEGORIES.index(category), index % TEXTS_PER_CATEGORY
        active = 20 + i + 3 * c
        rows.append({"text_id": text_id, "category": category, "half": half, "tokens": 10 + 3 * i + c,
                     "l0": round(5 + 0.25 * i + 0.1 * layer + 0.5 * c, 6), "features_active": active,
                     "features_active_frac": round(active / d_sae, 6), "top_feature": TOP_FEATURES[category][i],
                     "top_feature_mean": round(0.2 + 0.01 * index, 6)})
    return rows


def discovered() -> dict[int, list[str]]:
    named: dict[int, list[str]] = {}
    for criterion in ("strongest", "frequent", "selective"):
        for feature in DISCOVERY[criterion]:
            named.setdefault(feature, []).append(criterion)
    for category, features in DISCOVERY["category"].items():
        for feature in features:
            named.setdefault(feature, []).append(f"category:{category}")
    return named


def feature_rows(layer: int) -> list[dict[str, Any]]:
    rows = []
    for feature, criteria in sorted(discovered().items()):
        for c, category in enumerate(CATEGORIES):
            mean = round(0.01 * ((feature * 7 + c * 5 + layer) % 13 + 1), 6)
            rows.append({"category": category, "feature": feature, "mean_activation": mean,
                         "max_activation": round(4 * mean + 0.001 * c, 6), "token_frequency": round(0.1 * (c + 1), 6),
                         "text_frequency": (1.0, 0.75, 0.5)[c], "criteria": ";".join(criteria)})
    return rows


def quality(d_sae: int, explained: float, recovered: float) -> dict[str, Any]:
    return {"d_sae": d_sae, "tokens": 8128, "l0": 32.5, "explained_variance": explained, "ce_clean": CE_CLEAN,
            "ce_sae": round(CE_ZERO - recovered * (CE_ZERO - CE_CLEAN), 6), "ce_zero": CE_ZERO,
            "ce_loss_recovered": recovered, "dead_frac": 0.015625, "dense_frac": 0.03125}


def specialist(category: str, found: Found | None) -> dict[str, Any] | None:
    if found is None:
        return None
    feature, auroc, precision, holds = found
    return {"category": category, "feature": feature, "score": round(1.5 + auroc, 6), "find_mean_in": 0.123456,
            "find_mean_out": 0.000042, "threshold": 0.0615, "heldout_precision": precision, "heldout_recall": 0.9,
            "heldout_auroc": auroc, "holds": holds}


# Decoded tokens of every awkward kind: markup, table pipes, whitespace, backticks, backslashes, other scripts.
HOSTILE = "<script>alert(1)</script>"
PROMOTED = (" def", "a|b", HOSTILE, "\n", "`", " **x**", "\U0001f642", " \u732b", "&lt;", "\\")
SUPPRESSED = (" the", "\t", "|", " <b>", "``", " _y_", " \u0645\u0631\u062d\u0628\u0627", "\r\n", " [z](u)", "#")
CONTEXT = (" the", " cat", HOSTILE, "|", "\n", " def", "`x`", "\\", "\t", " \u732b", "\U0001f642", " &amp;")
EDGES = [round(0.25 * i, 6) for i in range(21)]


def heatmap_text(text_id: str, category: str, peak: float) -> dict[str, Any]:
    tokens = [*CONTEXT[:6], " end"]
    return {"text_id": text_id, "category": category, "half": "test", "tokens": tokens,
            "values": [0.0, round(peak / 2, 6), round(peak, 6), 0.0, 0.0, 0.1, 0.0]}


def card(layer: int, category: str, found: Found) -> dict[str, Any]:
    """A feature card as model_run writes it: 10 + 10 tokens, two contexts, heatmap texts, a histogram."""
    feature, _, _, holds = found
    c = CATEGORIES.index(category)
    peak = round(2.0 + 0.5 * c + 0.1 * layer, 6)
    other = CATEGORIES[(c + 1) % len(CATEGORIES)]
    contexts = [{"window": 3 + i, "peak": 2 + i, "max": round(peak / (i + 1), 6), "tokens": list(CONTEXT),
                 "values": [round(peak / (i + 1), 6) if j == 2 + i else (0.5 if j % 3 == 0 else 0.0)
                            for j in range(len(CONTEXT))]} for i in range(2)]
    texts = [heatmap_text(f"{category}-{i:02d}", category, peak * (1 - 0.1 * i)) for i in (2, 4)]
    return {"category": category, "feature": feature, "holds": holds,
            "promoted": [{"token": t, "value": round(0.9 - 0.05 * i, 4)} for i, t in enumerate(PROMOTED)],
            "suppressed": [{"token": t, "value": round(-0.8 + 0.05 * i, 4)} for i, t in enumerate(SUPPRESSED)],
            "contexts": contexts, "texts": [*texts, heatmap_text(f"{other}-02", other, 0.3)],
            "histogram": {"edges": EDGES, "category": [max(0, 12 - i) for i in range(20)],
                          "other": [max(0, 4 - i) for i in range(20)],
                          "corpus": [max(0, 30 - 3 * i) for i in range(20)],
                          "zeros": {"category": 40, "other": 300, "corpus": 5000}}}


def trained_source(layer: int) -> dict[str, Any]:
    return {"kind": "train", "cache": "hit", "folder": f"/cache/saes/{layer:024d}",
            "recipe": {"architecture": "topk", "expansion": 8, "k": 32, "tokens": 2_000_000, "lr": 0.0004},
            "corpus": "bundled", "corpus_fingerprint": "abc123"}


def sae_entry(name: str, spec: tuple) -> dict[str, Any]:
    layer, d_sae, source, explained, recovered, found = spec
    rows = activity_rows(layer, d_sae)
    tokens = sum(r["tokens"] for r in rows)
    return {"sae": sae_name(source), "layer": layer, "rel_depth": rel(name, layer),
            "hook": f"blocks.{layer}.hook_resid_pre", "d_sae": d_sae,
            "source": trained_source(layer) if source["kind"] == "train" else source,
            "quality": quality(d_sae, explained, recovered),
            "activity": {"features_active": 40, "features_active_frac": 40 / d_sae, "sparsity": 1 - 40 / d_sae,
                         "active_per_token": sum(r["l0"] * r["tokens"] for r in rows) / tokens,
                         "tokens": tokens},
            "discovery": DISCOVERY, "specialists": {c: specialist(c, found[c]) for c in CATEGORIES},
            "cards": [card(layer, c, f) for c, f in found.items() if f]}


def keys(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: entry[k] for k in ("sae", "layer", "rel_depth", "hook")}


def write_ok_model(run_dir: Path, name: str) -> dict[str, Any]:
    """Write output-<name>.json and its four CSVs; returns the JSON document."""
    saes = [sae_entry(name, spec) for spec in SAES[name]]
    write_csv(artefact_path(run_dir, name, SAE_QUALITY), [{**keys(e), **e["quality"]} for e in saes],
              sae_quality_columns())
    write_csv(artefact_path(run_dir, name, FEATURES),
              [{**keys(e), **row} for e in saes for row in feature_rows(e["layer"])], features_columns())
    write_csv(artefact_path(run_dir, name, SPECIALISTS),
              [{**keys(e), **s} for e in saes for s in e["specialists"].values() if s], specialists_columns())
    write_csv(artefact_path(run_dir, name, TEXT_ACTIVITY),
              [{**keys(e), **row} for e in saes for row in activity_rows(e["layer"], e["d_sae"])],
              text_activity_columns())
    depth = [{"layer": e["layer"], "rel_depth": e["rel_depth"],
              "categories_with_specialist": sum(bool(s and s["holds"]) for s in e["specialists"].values()),
              "categories": len(CATEGORIES)} for e in saes]
    doc = {"schema_version": SCHEMA_VERSION, "status": "ok", "reason": None,
           "model": {"spec": name, "name": name, "kind": "bundled", "architecture": "LlamaForCausalLM",
                     "model_type": "llama"},
           "provenance": {"device": "cpu", "dtype": "float32", "seed": 316, "corpus": "bundled"},
           "saes": saes, "categories": {c: TEXTS_PER_CATEGORY for c in CATEGORIES}, "specialist_rule": RULE,
           "depth": depth, "quality_thresholds": THRESHOLDS, "rules": RULES}
    write_json(artefact_path(run_dir, name, "json"), doc)
    return doc


def write_failed(run_dir: Path, name: str) -> None:
    write_json(artefact_path(run_dir, name, "json"), {
        "schema_version": SCHEMA_VERSION, "status": "failed", "reason": FAIL_REASON,
        "model": {"spec": "org/beta-2b", "name": name, "kind": "hub"}, "provenance": {"seed": 316}})


def build_run(folder: Path, ok_models: tuple[str, ...] = (ALPHA, GAMMA)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ok_models:
        write_ok_model(folder, name)
    write_failed(folder, FAILED)
    return folder


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """A synthetic run folder with every report written, and the files ``write_reports`` returned."""
    folder = build_run(tmp_path_factory.mktemp("sae-features") / "run-latest")
    return folder, write_reports(folder)


@pytest.fixture(scope="module")
def run_dir(written: tuple[Path, list[Path]]) -> Path:
    """The synthetic run folder with every report written."""
    return written[0]


@pytest.fixture
def undrawn_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    """For tests that rewrite the reports only to read markdown: every figure is built but not drawn (an empty file).

    Drawing is most of a rewrite's time on a small machine; ``written`` and the same-bytes test draw every figure.
    """
    def empty(fig: Any, path: Path) -> Path:
        path.write_bytes(b"")
        return path

    for module in (specialists_plot, quality_plot, cross_model_plot, feature_heatmaps_plot, histogram_plot):
        monkeypatch.setattr(module, "save_png", empty)


def doc_of(run_dir: Path, name: str = ALPHA) -> dict[str, Any]:
    return json.loads(artefact_path(run_dir, name, "json").read_text(encoding="utf-8"))


def edit_doc(run_dir: Path, change: dict[str, Any], name: str = ALPHA) -> None:
    write_json(artefact_path(run_dir, name, "json"), {**doc_of(run_dir, name), **change})


def evaluation(run_dir: Path, name: str = ALPHA) -> str:
    return (run_dir / f"evaluation-{name}.md").read_text(encoding="utf-8")


def cards_md(run_dir: Path, name: str = ALPHA) -> str:
    return (run_dir / f"feature-cards-{name}.md").read_text(encoding="utf-8")


def cards_html(run_dir: Path, name: str = ALPHA) -> str:
    return (run_dir / f"feature-cards-{name}.html").read_text(encoding="utf-8")


def cross(run_dir: Path) -> str:
    return (run_dir / "evaluation-cross-model.md").read_text(encoding="utf-8")


def copy_run(run_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    return copy


def csv_of(run_dir: Path, kind: str, name: str = ALPHA) -> pd.DataFrame:
    return read_csv_artefact(artefact_path(run_dir, name, kind), TEXT_COLUMNS)


def with_sae(run_dir: Path, layer: int, change: dict[str, Any], name: str = ALPHA) -> None:
    """Change one SAE's JSON entry (keys merged one level deep, e.g. ``{"quality": {...}}``)."""
    saes = doc_of(run_dir, name)["saes"]
    for entry in saes:
        if entry["layer"] == layer:
            for key, value in change.items():
                entry[key] = {**entry[key], **value} if isinstance(value, dict) else value
    edit_doc(run_dir, {"saes": saes}, name)


# --- every file -------------------------------------------------------------------------------------------------


PLOTS = ("specialists", "quality")
CARD_PLOTS = ("heatmaps", "histograms")


def test_every_report_is_written_and_only_the_evaluation_for_the_failed_model(
        written: tuple[Path, list[Path]]) -> None:
    folder, files = written
    names = sorted(p.name for p in files)
    expected = sorted([*(f"{plot}-{m}.png" for plot in PLOTS for m in (ALPHA, GAMMA)),
                       *(f"{plot}-{m}-L{spec[0]}.png" for plot in CARD_PLOTS for m in (ALPHA, GAMMA)
                         for spec in SAES[m]),
                       *(f"feature-cards-{m}.{ext}" for ext in ("md", "html") for m in (ALPHA, GAMMA)),
                       *(f"evaluation-{m}.md" for m in (ALPHA, GAMMA, FAILED)),
                       *(f"llm-prompt-{m}.md" for m in (ALPHA, GAMMA)),
                       "cross-model.png", "evaluation-cross-model.md", "llm-prompt-cross-model.md"])
    assert names == expected
    for path in files:
        assert path.parent == folder and path.stat().st_size > 0, path
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for plot in PLOTS:
        assert f"![{plot}]({plot}-{ALPHA}.png)" in evaluation(folder)
    report = evaluation(folder)
    assert f"[feature-cards-{ALPHA}.md](feature-cards-{ALPHA}.md)" in report
    assert f"[feature-cards-{ALPHA}.html](feature-cards-{ALPHA}.html)" in report
    for spec in SAES[ALPHA]:
        for plot in CARD_PLOTS:
            assert f"({plot}-{ALPHA}-L{spec[0]}.png)" in report
            assert f"![{plot}, residual {spec[0]}]({plot}-{ALPHA}-L{spec[0]}.png)" in cards_md(folder)
            assert f'<img src="{plot}-{ALPHA}-L{spec[0]}.png"' in cards_html(folder)
    assert "![cross-model](cross-model.png)" in cross(folder)


def test_the_same_artefacts_give_the_same_bytes_and_the_meta_prompt_appears(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    (copy / "llm-evaluation-cross-model.md").write_text("An LLM's answer.\n", encoding="utf-8")
    assert "llm-prompt-meta.md" in {p.name for p in write_reports(copy)}
    meta = (copy / "llm-prompt-meta.md").read_text(encoding="utf-8")
    assert "An LLM's answer." in meta and f"### evaluation-{ALPHA}.md" in meta
    assert "undefined" in meta and "seed" in meta  # the 004 template went in
    compared = sorted(run_dir.glob("*.md")) + sorted(run_dir.glob("*.png")) + sorted(run_dir.glob("*.html"))
    assert {f"feature-cards-{ALPHA}.html", f"heatmaps-{ALPHA}-L4.png", f"histograms-{GAMMA}-L2.png"} <= \
        {p.name for p in compared}
    for path in compared:
        assert (copy / path.name).read_bytes() == path.read_bytes(), path.name


# --- SAE quality and the warning at the top ---------------------------------------------------------------------


def _before_first_section(report: str) -> str:
    return report.split("\n## ", 1)[0]


def test_no_warning_when_every_sae_meets_the_thresholds(run_dir: Path) -> None:
    report = evaluation(run_dir)
    assert "WARNING" not in report
    assert "Every SAE meets the thresholds (explained variance >= 0.8 and loss recovered >= 0.9)." in report
    assert [r["Meets thresholds"] for r in tables_by_heading(report)["SAE quality"]] == ["yes", "yes", "yes"]


def test_a_weak_sae_is_announced_at_the_top(run_dir: Path) -> None:
    report = evaluation(run_dir, GAMMA)
    top = _before_first_section(report)
    assert ("> **WARNING: 1 of 1 SAEs are below the quality thresholds** (explained variance >= 0.8 and loss "
            "recovered >= 0.9, on held-out text): residual 2 (0.500) (explained variance 0.410 < 0.8; loss "
            "recovered 0.600 < 0.9).") in top
    assert report.index("WARNING") < report.index("Generated by")
    assert tables_by_heading(report)["SAE quality"][0]["Meets thresholds"] == "**NO**"


def test_one_layer_below_a_threshold_puts_the_warning_on_top(run_dir: Path, tmp_path: Path,
                                                             undrawn_figures: None) -> None:
    copy = copy_run(run_dir, tmp_path)
    with_sae(copy, 4, {"quality": {"explained_variance": 0.79}})
    write_reports(copy)
    report = evaluation(copy)
    top = _before_first_section(report)
    assert "**WARNING: 1 of 3 SAEs are below the quality thresholds**" in top
    assert "residual 4 (0.500) (explained variance 0.790 < 0.8)." in top and "residual 2" not in top
    rows = tables_by_heading(report)["SAE quality"]
    assert [r["Meets thresholds"] for r in rows] == ["yes", "**NO**", "yes"]
    assert "**NO**" in tables_by_heading(report)["Specialists across depth"][1]["SAE meets thresholds"]


def test_a_loss_recovered_without_meaning_is_flagged(run_dir: Path, tmp_path: Path,
                                                     undrawn_figures: None) -> None:
    """Zeroing the residual lowers the loss (a random model): loss recovered above 1 says nothing good."""
    copy = copy_run(run_dir, tmp_path)
    with_sae(copy, 6, {"quality": {"ce_zero": 2.5, "ce_sae": 4.0, "ce_loss_recovered": 3.0}})
    write_reports(copy)
    top = _before_first_section(evaluation(copy))
    assert ("residual 6 (0.750) (loss recovered undefined: zeroing the residual does not raise the loss (CE zero "
            "2.500 <= CE clean 3.000))") in top


def test_quality_table_copies_the_json(run_dir: Path) -> None:
    rows = tables_by_heading(evaluation(run_dir))["SAE quality"]
    saes = doc_of(run_dir)["saes"]
    assert len(rows) == len(saes)
    for row, entry in zip(rows, saes, strict=True):
        q = entry["quality"]
        assert row["Layer"] == f"{entry['layer']} ({three(entry['rel_depth'])})" and row["SAE"] == entry["sae"]
        assert row["Features"] == f"{q['d_sae']:,}" and row["Tokens"] == f"{q['tokens']:,}"
        for column, key in (("L0", "l0"), ("Explained variance", "explained_variance"), ("CE clean", "ce_clean"),
                            ("CE SAE", "ce_sae"), ("CE zero", "ce_zero"), ("Loss recovered", "ce_loss_recovered")):
            assert row[column] == three(q[key]), column
        assert row["Dead"] == pct(q["dead_frac"]) == "1.56%" and row["Dense"] == pct(q["dense_frac"])


# --- sources, activity, depth, specialists ------------------------------------------------------------------------


def test_sources_name_the_release_and_its_model_and_link_neuronpedia(run_dir: Path) -> None:
    report = evaluation(run_dir)
    rows = tables_by_heading(report)["SAE sources"]
    assert [r["Kind"] for r in rows] == ["train", "train", "release"]
    assert rows[0]["Source"].startswith("trained here: topk, k 32, expansion 8 (64 features), 2,000,000 tokens")
    assert "trained on `org/alpha-base`" in rows[2]["Source"]
    assert "[alpha-base/6-res](https://www.neuronpedia.org/alpha-base/6-res)" in rows[2]["Source"]
    assert ("The SAE was trained on `org/alpha-base`; this run loaded `alpha-8l`, a bundled GGUF file (quantized "
            "weights, dequantized to load).") in report
    assert "quantization shifts the residual activations a little" in report


def test_a_release_of_the_loaded_hub_model_needs_no_note() -> None:
    assert same_model("google/gemma-3-270m", {"kind": "hub", "spec": "google/gemma-3-270m"})
    assert not same_model("google/gemma-3-270m", {"kind": "bundled", "spec": "gemma3-270m"})
    assert not same_model("google/gemma-3-270m", {"kind": "hub", "spec": "google/gemma-3-1b"})


def test_activity_is_given_per_sae_in_the_seeds_words(run_dir: Path) -> None:
    report = evaluation(run_dir)
    for entry in doc_of(run_dir)["saes"]:
        a = entry["activity"]
        assert (f"- Residual {entry['layer']} ({three(entry['rel_depth'])}): {pct(a['sparsity'])} sparsity, "
                f"{a['features_active']:,} of {entry['d_sae']:,} features active.") in report
    assert "- Residual 6 (0.750): 68.75% sparsity, 40 of 128 features active." in report
    assert "the seed prototype reported 87.35% sparsity, 3,108 of 24,576 features active" in report
    rows = tables_by_heading(report)["Feature activity on the category texts"]
    for row, entry in zip(rows, doc_of(run_dir)["saes"], strict=True):
        a = entry["activity"]
        assert row["Active per token"] == three(a["active_per_token"]) and row["Tokens"] == f"{a['tokens']:,}"
        assert row["Active share"] == pct(a["features_active_frac"])


def test_depth_table_and_the_comparison_with_the_seed(run_dir: Path) -> None:
    report = evaluation(run_dir)
    rows = tables_by_heading(report)["Specialists across depth"]
    depth = doc_of(run_dir)["depth"]
    assert [r["Categories with a specialist that holds"] for r in rows] == \
        [f"{d['categories_with_specialist']} of {d['categories']}" for d in depth] == ["1 of 3", "2 of 3", "3 of 3"]
    assert [r["Which"] for r in rows] == ["`code`", "`code`, `urls`", "`code`, `urls`, `prose`"]
    assert "The model has 8 layers (recovered from the SAEs' relative depths)." in report
    assert "5 of 7 at layer 6 (0.500), 7 of 7 at layer 10 (0.833), 7 of 7 at layer 11 (0.917)" in report
    assert ("This run: nearest depth 0.5, residual 4 (0.500) has 2 of 3; the deepest SAE, residual 6 (0.750), has 3 "
            "of 3. As in the seed, the deepest SAE has more categories with a holding specialist than the one "
            "nearest depth 0.5 (3 of 3 against 2 of 3), on 3 SAEs.") in report
    assert "not comparable one for one, only the direction is" in report


def test_fewer_categories_deeper_is_said_unlike_the_seed(run_dir: Path, tmp_path: Path,
                                                         undrawn_figures: None) -> None:
    copy = copy_run(run_dir, tmp_path)
    depth = doc_of(copy)["depth"]
    depth[2]["categories_with_specialist"] = 1
    edit_doc(copy, {"depth": depth})
    write_reports(copy)
    assert "Unlike the seed, the deepest SAE has fewer categories with a holding specialist" in evaluation(copy)
    assert tables_by_heading(cross(copy))["Mid-depth against the deepest SAE"][0]["The deepest has"] == "fewer"


def test_specialists_tables_copy_the_json(run_dir: Path) -> None:
    tables = tables_by_heading(evaluation(run_dir))
    for entry, spec in zip(doc_of(run_dir)["saes"], SAES[ALPHA], strict=True):
        rows = tables[f"Specialists at {heading(ALPHA, spec[0], spec[2])}"]
        assert [r["Category"] for r in rows] == [f"`{c}`" for c in CATEGORIES]
        for row, category in zip(rows, CATEGORIES, strict=True):
            found = entry["specialists"][category]
            if found is None:
                assert row["Feature"].startswith("none: no feature fires on at least 50% of the category's find "
                                                  "texts") and row["Holds"] == ""
                continue
            feature = str(found["feature"])
            expected = (f"[{feature}](https://www.neuronpedia.org/alpha-base/6-res/{feature})"
                        if entry["layer"] == 6 else feature)
            assert row["Feature"] == expected
            assert row["Score"] == three(found["score"])
            assert row["Held-out precision"] == three(found["heldout_precision"])
            assert row["Held-out recall"] == three(found["heldout_recall"])
            assert row["Held-out AUROC"] == three(found["heldout_auroc"])
            assert row["Holds"] == ("**yes**" if found["holds"] else "no")
            assert row["Find mean in"] == "0.1235" and row["Find mean out"] == "4.200e-05"


# --- discovery and text activity, from the CSVs ------------------------------------------------------------------


def test_discovery_profiles_come_from_the_features_csv(run_dir: Path) -> None:
    tables = tables_by_heading(evaluation(run_dir))
    csv = csv_of(run_dir, FEATURES)
    for spec in SAES[ALPHA]:
        layer = spec[0]
        rows = tables[f"Discovered at {heading(ALPHA, layer, spec[2])}"]
        listed = [(c, f) for c in ("strongest", "frequent", "selective") for f in DISCOVERY[c]]
        assert [(r["Criterion"], r["Feature"]) for r in rows] == [
            (c, f"[{f}](https://www.neuronpedia.org/alpha-base/6-res/{f})" if layer == 6 else str(f))
            for c, f in listed]
        for row, (_, feature) in zip(rows, listed, strict=True):
            mine = csv[(csv["layer"] == layer) & (csv["feature"] == feature)]
            means = dict(zip(mine["category"], mine["mean_activation"], strict=True))
            top = max(CATEGORIES, key=lambda c: means[c])
            runner = max((c for c in CATEGORIES if c != top), key=lambda c: means[c])
            total = sum(means.values())
            assert row["Top category"] == f"`{top}`"
            assert row["Share"] == pct(means[top] / total)
            assert row["Mean in top category"] == format(means[top], "#.4g")
            assert row["Runner-up (share)"] == f"`{runner}` ({pct(means[runner] / total)})"
            assert row["Max activation"] == format(mine["max_activation"].max(), "#.4g")
    assert "- `code`: 5, 3\n- `urls`: 9\n- `prose`: 12" in evaluation(run_dir)


def test_text_activity_per_category_comes_from_the_csv(run_dir: Path) -> None:
    tables = tables_by_heading(evaluation(run_dir))
    csv = csv_of(run_dir, TEXT_ACTIVITY)
    for spec in SAES[ALPHA]:
        layer = spec[0]
        rows = tables[f"Activity at {heading(ALPHA, layer, spec[2])}"]
        for row, category in zip(rows, CATEGORIES, strict=True):
            mine = csv[(csv["layer"] == layer) & (csv["category"] == category)]
            per_token = [float(x) for x in mine["l0"]]
            tokens = [int(x) for x in mine["tokens"]]
            assert row["Texts"] == str(len(mine)) and row["Tokens"] == str(sum(tokens))
            assert row["Active per token"] == three(sum(a * t for a, t in zip(per_token, tokens, strict=True))
                                                    / sum(tokens))
            assert row["Features per text"] == three(mine["features_active"].mean())
        tops = [r["Top feature (texts)"] for r in rows]
        linked = (lambda f: f"[{f}](https://www.neuronpedia.org/alpha-base/6-res/{f})") if layer == 6 else str
        assert tops == [f"{linked(5)} (2 of 4)", f"{linked(9)} (2 of 4)", f"{linked(12)} (3 of 4)"]


# --- the failed model and the cross-model report -----------------------------------------------------------------


def test_the_failed_model_gets_its_reason_and_nothing_else(run_dir: Path) -> None:
    report = evaluation(run_dir, FAILED)
    assert f"Status: **failed**. Reason: {FAIL_REASON}" in report and "No SAE results exist for it." in report
    assert "## " not in report
    assert not list(run_dir.glob(f"*-{FAILED}.png")) and not (run_dir / f"llm-prompt-{FAILED}.md").exists()
    assert f"- `{FAILED}` (failed): {FAIL_REASON}" in cross(run_dir)
    assert FAILED not in (run_dir / "llm-prompt-cross-model.md").read_text(encoding="utf-8")


def test_cross_model_sets_the_models_side_by_side(run_dir: Path) -> None:
    text = cross(run_dir)
    tables = tables_by_heading(text)
    models = {r["Model"]: r for r in tables["Models"]}
    assert models[f"`{ALPHA}`"]["SAE sources"] == "train, release" and models[f"`{ALPHA}`"]["Layers"] == "8"
    assert models[f"`{GAMMA}`"]["SAEs below the thresholds"] == "1 of 1"
    assert "- **gamma-4l**: 1 of 1 SAEs below the quality thresholds (residuals 2)" in text
    depth = tables["Specialists that hold, by relative depth"]
    assert [(r["Model"], r["Layer"], r["Categories that hold"], r["SAE meets thresholds"]) for r in depth] == [
        (f"`{ALPHA}`", "2 (0.250)", "1 of 3", "yes"), (f"`{ALPHA}`", "4 (0.500)", "2 of 3", "yes"),
        (f"`{ALPHA}`", "6 (0.750)", "3 of 3", "yes"), (f"`{GAMMA}`", "2 (0.500)", "0 of 3", "**NO**")]
    trend = {r["Model"]: r for r in tables["Mid-depth against the deepest SAE"]}
    assert trend[f"`{ALPHA}`"]["The deepest has"] == "more" and trend[f"`{GAMMA}`"]["The deepest has"] == "one SAE only"


# --- LLM prompts ------------------------------------------------------------------------------------------------


def test_llm_prompt_inlines_the_json_features_and_text_activity(run_dir: Path) -> None:
    text = (run_dir / f"llm-prompt-{ALPHA}.md").read_text(encoding="utf-8")
    artefacts = text.split("## Artefacts", 1)[1]
    assert artefacts.count(f"### output-{ALPHA}.json") == 1
    for kind in (FEATURES, TEXT_ACTIVITY):
        assert f"### output-{ALPHA}-{kind}.csv" in artefacts
        assert artefact_path(run_dir, ALPHA, kind).read_text(encoding="utf-8") in artefacts
    for kind in (SAE_QUALITY, SPECIALISTS):
        assert f"output-{ALPHA}-{kind}.csv" not in artefacts
    assert f"- output-{ALPHA}.json: each SAE's cards shortened to feature, category, holds" in text  # nothing else
    assert "held-out" in text and "saes[].cards" in text  # the template went in


def test_llm_prompt_over_budget_says_what_was_trimmed(run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      undrawn_figures: None) -> None:
    copy = copy_run(run_dir, tmp_path)
    size = len((copy / f"llm-prompt-{ALPHA}.md").read_text(encoding="utf-8"))
    monkeypatch.setattr(llm_pack, "CHAR_BUDGET", size - 3_000)
    write_reports(copy)
    text = (copy / f"llm-prompt-{ALPHA}.md").read_text(encoding="utf-8")
    assert f"- output-{ALPHA}-{FEATURES}.csv: columns sae, rel_depth, hook removed" in text
    assert "layer,category,feature,mean_activation" in text and "blocks.2.hook_resid_pre,code" not in text
    assert "only the first 3 features" not in text
    monkeypatch.setattr(llm_pack, "CHAR_BUDGET", 1_000)
    write_reports(copy)
    text = (copy / f"llm-prompt-{ALPHA}.md").read_text(encoding="utf-8")
    assert "Over budget even after every trim" in text
    removed = 3 * len(CATEGORIES)  # feature 20, fourth of the strongest list only, in each of the three SAEs
    assert (f"- output-{ALPHA}-{FEATURES}.csv: only the first 3 features of each discovery list kept ({removed} rows "
            "removed).") in text
    assert f"- output-{ALPHA}-{TEXT_ACTIVITY}.csv: all {3 * len(texts())} rows removed" in text
    assert "\n2,code,20," not in text and "\n2,code,12," in text and "\n2,code-01," not in text


def test_templates_exist_and_say_what_to_check() -> None:
    folder = PROMPTS_DIR / "004_sae_features"
    for name in ("prompt-single-model-evaluation.txt", "prompt-cross-model-evaluation.txt",
                 "prompt-meta-evaluation.txt"):
        text = (folder / name).read_text(encoding="utf-8").lower()
        for word in ("explained variance", "loss recovered", "held-out", "87.35%", "not held out"):
            assert word in text.replace("explained_variance", "explained variance"), (name, word)


# --- feature cards -----------------------------------------------------------------------------------------------


def card_heading(layer: int, category: str, holds: bool, name: str = ALPHA) -> str:
    return (f"Feature {dict(card_specs(name, layer))[category][0]}, `{category}`, residual {layer} "
            f"({three(rel(name, layer))}): {'holds' if holds else 'does not hold'}")


def card_specs(name: str, layer: int) -> list[tuple[str, Found]]:
    found = next(spec[5] for spec in SAES[name] if spec[0] == layer)
    return [(c, f) for c, f in found.items() if f]


def test_cards_copy_the_specialists_and_keep_every_token_inside_its_table_cell(run_dir: Path) -> None:
    tables = tables_by_heading(cards_md(run_dir))
    entry = next(e for e in doc_of(run_dir)["saes"] if e["layer"] == 4)
    for category, (feature, auroc, precision, holds) in card_specs(ALPHA, 4):
        facts, tokens = tables[card_heading(4, category, holds)], tables[card_heading(4, category, holds) + " #2"]
        found = entry["specialists"][category]
        assert facts == [{"Feature": str(feature), "Category": f"`{category}`", "Holds": "**yes**" if holds else "no",
                          "Score": three(found["score"]), "Held-out precision": three(precision),
                          "Held-out recall": three(found["heldout_recall"]), "Held-out AUROC": three(auroc)}]
        assert len(tokens) == len(PROMOTED) and [r["Rank"] for r in tokens] == [str(i) for i in range(1, 11)]
    rows = tables[card_heading(4, "code", True) + " #2"]
    assert [rows[i]["Promoted"] for i in (0, 1, 3, 4)] == ["`\u2423def`", "`a|b`", "`\u21b5`", "`` ` ``"]
    assert rows[2]["Suppressed"] == "`|`" and rows[1]["Suppressed"] == "`\u21e5`"
    assert rows[0]["Promoted logit per unit"] == "0.900" and rows[0]["Suppressed logit per unit"] == "-0.800"
    text = cards_md(run_dir)
    outside_code = re.sub(r"(`+).*?\1", "", text)  # a code span shows its text as it is
    assert re.search(r"(?<!\\)<script", outside_code) is None
    assert "\\<script\\>alert\\(1\\)\\<\\/script\\>" in outside_code
    lines = [line for line in text.splitlines() if line.startswith("1. window 3, ")]
    assert len(lines) == sum(len(card_specs(ALPHA, spec[0])) for spec in SAES[ALPHA])
    # the peak (position 2) in bold with its value; a firing token with its value; a silent token bare
    assert lines[0] == ("1. window 3, max 2.2:  the\u27e80.5\u27e9 cat<b>\\<script\\>alert\\(1\\)\\<\\/script\\></b>"
                        "\u27e82.2\u27e9\\|\u27e80.5\u27e9\u21b5 def\\`x\\`\u27e80.5\u27e9\\\\\u21e5 "
                        "\u732b\u27e80.5\u27e9\U0001f642 \\&amp\\;")
    assert "contexts come from held-out corpus windows the sae did not train on" in text.lower()


def test_cards_html_is_static_and_escapes_every_token(run_dir: Path) -> None:
    page = cards_html(run_dir)
    lowered = page.lower()
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert "<script" not in lowered and "javascript:" not in lowered and "@import" not in lowered
    assert re.search(r"<[^>]*\son[a-z]+\s*=", lowered) is None  # no event handler attribute
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "a|b" in page
    assert set(re.findall(r'src="([^"]*)"', page)) == {f"{kind}-{ALPHA}-L{spec[0]}.png" for kind in CARD_PLOTS
                                                         for spec in SAES[ALPHA]}
    spans = re.findall(r'<span class="tok( peak)?"( style="[^"]*")? title="([^"]*)">([^<]*)</span>', page)
    contexts = 2 * sum(len(card_specs(ALPHA, spec[0])) for spec in SAES[ALPHA])
    assert sum(1 for peak, *_ in spans if peak) == contexts
    assert all("\n" not in token for *_, token in spans) and any(token == "\u21b5" for *_, token in spans)
    # shaded by value / the card's largest (2.2 at residual 2, code), the value on hover
    assert '<span class="tok peak" style="background:rgba(230,120,0,1.000)" title="2.200">' in page
    assert '<span class="tok peak" style="background:rgba(230,120,0,0.500)" title="1.100">' in page
    assert "contexts come from held-out corpus windows the sae did not train on" in lowered


def test_damaged_cards_are_refused_in_one_line(run_dir: Path, tmp_path: Path) -> None:
    cards = next(e for e in doc_of(run_dir)["saes"] if e["layer"] == 4)["cards"]
    short = json.loads(json.dumps(cards))
    short[1]["contexts"][0]["values"].pop()
    copy = copy_run(run_dir, tmp_path)
    with_sae(copy, 4, {"cards": short})
    message = _one_line_error(copy)
    assert message.startswith(f"output-{ALPHA}.json has a damaged feature card (residual 4 card 1.contexts[0] has "
                              f"{len(CONTEXT) - 1} values for {len(CONTEXT)} tokens)"), message
    copy = copy_run(run_dir, tmp_path / "again")
    with_sae(copy, 4, {"cards": cards[1:]})  # a specialist without its card
    assert "the cards are not one per category with a specialist" in _one_line_error(copy)
    saes = doc_of(copy)["saes"]
    del saes[0]["cards"]
    edit_doc(copy, {"saes": saes})
    assert "residual 2 has no 'cards'" in _one_line_error(copy)


def test_report_text_follows_the_runs_rules(run_dir: Path, tmp_path: Path, undrawn_figures: None) -> None:
    defaults = ("more than 10% of them", "features firing on at least 3 texts",
                "among features firing on at least 50% of the category's find texts")
    assert all(phrase in evaluation(run_dir) for phrase in defaults)
    assert "a specialist holds when held-out AUROC >= 0.9 and held-out precision >= 0.8." in cards_md(run_dir)
    copy = copy_run(run_dir, tmp_path)
    edit_doc(copy, {"rules": {**RULES, "dense_threshold": 0.25, "selective_min_texts": 5,
                              "specialist_min_presence": 0.6, "specialist_min_auroc": 0.95}})
    write_reports(copy)
    report = evaluation(copy)
    assert not any(phrase in report for phrase in defaults)
    assert "more than 25% of them" in report and "features firing on at least 5 texts" in report
    assert "among features firing on at least 60% of the category's find texts" in report
    assert "a specialist holds when held-out AUROC >= 0.95 and held-out precision >= 0.8." in cards_md(copy)
    edit_doc(copy, {"rules": {**RULES, "dense_threshold": "10%"}})
    assert "has a damaged 'rules' (no number for dense_threshold)" in _one_line_error(copy)


def test_an_sae_without_specialists_gets_no_card_and_no_figure(run_dir: Path, tmp_path: Path,
                                                                undrawn_figures: None) -> None:
    copy = copy_run(run_dir, tmp_path)
    with_sae(copy, 2, {"specialists": {c: None for c in CATEGORIES}, "cards": []}, GAMMA)
    write_csv(artefact_path(copy, GAMMA, SPECIALISTS), [], specialists_columns())
    for path in copy.glob(f"*-{GAMMA}-L2.png"):
        path.unlink()
    write_reports(copy)
    assert not list(copy.glob(f"*-{GAMMA}-L2.png"))
    assert "No category has a specialist at this SAE: no card." in cards_md(copy, GAMMA)
    assert "No SAE has a specialist: no card." in evaluation(copy, GAMMA)


def test_llm_prompt_gives_each_card_compact(run_dir: Path) -> None:
    text = (run_dir / f"llm-prompt-{ALPHA}.md").read_text(encoding="utf-8")
    inlined = json.loads(text.split("```json\n", 1)[1].split("\n```", 1)[0])
    cards = next(e for e in inlined["saes"] if e["layer"] == 4)["cards"]
    assert [(c["category"], c["feature"], c["holds"]) for c in cards] == [
        (category, f[0], f[3]) for category, f in card_specs(ALPHA, 4)]
    assert cards[0]["promoted"] == [" def", "a|b", HOSTILE, "\u21b5", "`"]
    assert cards[0]["contexts"] == [
        f" the cat\u27e6{HOSTILE}\u27e7|\u21b5 def`x`\\\u21e5 \u732b\U0001f642 &amp;",
        f" the cat{HOSTILE}\u27e6|\u27e7\u21b5 def`x`\\\u21e5 \u732b\U0001f642 &amp;"]
    assert '"histogram"' not in text and '"suppressed"' not in text
    assert "the full cards are in feature-cards-alpha-8l.md" in text


# --- refused inputs ---------------------------------------------------------------------------------------------


def _one_line_error(folder: Path) -> str:
    with pytest.raises(ReportInputError) as info:
        write_reports(folder)
    message = info.value.message
    assert "\n" not in message and "004_sae_features/run.py" in message, message
    return message


def test_a_damaged_csv_is_one_line_naming_the_file(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    path = artefact_path(copy, ALPHA, FEATURES)
    path.write_bytes(path.read_bytes()[:-40])  # cut short mid-row
    assert path.name in _one_line_error(copy)


def test_a_missing_csv_is_one_line(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    artefact_path(copy, ALPHA, TEXT_ACTIVITY).unlink()
    assert f"output-{ALPHA}-{TEXT_ACTIVITY}.csv is missing" in _one_line_error(copy)


def test_a_csv_without_a_needed_column_is_one_line(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    path = artefact_path(copy, ALPHA, FEATURES)
    pd.read_csv(path).drop(columns=["mean_activation"]).to_csv(path, index=False, lineterminator="\n")
    assert f"output-{ALPHA}-{FEATURES}.csv lacks the column(s) mean_activation" in _one_line_error(copy)


def test_a_word_where_a_number_belongs_is_one_line(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    path = artefact_path(copy, ALPHA, TEXT_ACTIVITY)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[3, "l0"] = "lots"
    frame.to_csv(path, index=False, lineterminator="\n")
    message = _one_line_error(copy)
    assert path.name in message and "not a number" in message


def test_csvs_from_another_run_are_refused(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    shutil.copy(artefact_path(copy, GAMMA, SPECIALISTS), artefact_path(copy, ALPHA, SPECIALISTS))
    assert f"output-{ALPHA}-{SPECIALISTS}.csv does not hold the JSON's specialists" in _one_line_error(copy)
    copy = copy_run(run_dir, tmp_path / "again")
    shutil.copy(artefact_path(copy, GAMMA, SAE_QUALITY), artefact_path(copy, ALPHA, SAE_QUALITY))
    assert f"output-{ALPHA}-{SAE_QUALITY}.csv does not hold the JSON's SAEs (residuals [2, 4, 6])" in \
        _one_line_error(copy)


def test_a_newer_schema_or_a_missing_key_is_refused(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    edit_doc(copy, {"schema_version": 99})
    assert "newer" in _one_line_error(copy)
    doc = {**doc_of(copy), "schema_version": SCHEMA_VERSION}
    del doc["depth"]
    write_json(artefact_path(copy, ALPHA, "json"), doc)
    assert "has status ok but no 'depth'" in _one_line_error(copy)


# --- the command line, without torch ----------------------------------------------------------------------------


def _report(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "2000"}  # argparse wraps --help to the terminal, breaking names at hyphens
    return subprocess.run([sys.executable, str(EXPERIMENT / "report.py"), *args], capture_output=True, text=True,
                          timeout=300, check=False, env=env)


def test_report_cli_regenerates_without_torch(tmp_path: Path) -> None:
    folder = build_run(tmp_path / "out" / "run-latest", (GAMMA,))  # one small model: the CLI, not the content
    script = (f"import runpy, sys\nsys.argv = ['report.py', {str(tmp_path / 'out')!r}]\n"
              f"try:\n    runpy.run_path({str(EXPERIMENT / 'report.py')!r}, run_name='__main__')\n"
              "except SystemExit as exit_:\n    assert exit_.code == 0, exit_.code\n"
              "assert 'torch' not in sys.modules, 'report.py imported torch'\n"
              "assert 'transformers' not in sys.modules, 'report.py imported transformers'\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert f"in {folder}:" in result.stdout and "evaluation-cross-model.md" in result.stdout
    assert f"specialists-{GAMMA}.png" in result.stdout and f"feature-cards-{GAMMA}.html" in result.stdout


def test_every_reports_module_is_torch_free() -> None:
    folder = EXPERIMENT / "sae_features" / "reports"
    modules = [f"sae_features.reports.{p.stem}" for p in sorted(folder.glob("*.py"))]
    script = "import importlib, sys\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules) + (
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'torch was imported'\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr


def test_report_cli_help_and_bad_folder(tmp_path: Path) -> None:
    help_text = _report("--help").stdout
    assert "usage: report.py" in help_text
    for name in ("specialists-<model>.png", "quality-<model>.png", "evaluation-<model>.md", "llm-prompt-<model>.md",
                 "cross-model.png", "evaluation-cross-model.md", "llm-prompt-cross-model.md", "llm-prompt-meta.md"):
        assert name in help_text, name
    result = _report(str(tmp_path / "nothing-here"))
    assert result.returncode == 2 and result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
