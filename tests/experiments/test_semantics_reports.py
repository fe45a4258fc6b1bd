"""Experiment 005's reports: plots, factual markdown and LLM prompts, built from a synthetic run folder.

The run folder is written here with ``layers_core.runs.artefacts`` exactly per
``semantics_syntax.artefact_schema`` and the JSON fields of ``model_run.py``, without
running a model; its hypotheses table comes from the run's own ``hypotheses.table``, so
every ``held`` follows the run's rule. ``alpha-6l`` (6 layers) has SAEs on residuals 2
and 4; ``gamma-4l`` (4 layers, narrower) one SAE on residual 2 and a skipped cloze item;
``beta-2b`` failed. The numbers are synthetic and chosen so every verdict is known:
alpha's form overlap holds at residual 2 only by its interval (mean 0.10, outside
0.13-0.18) and fails at residual 4; its topic clustering reaches significance at
residual 2 and not at 4; its raw math correlation is significant and its partial one
is not. Every check reads the artefacts independently of the report code.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from layers_core.paths import PROMPTS_DIR, REPO_ROOT
from layers_core.reports import llm_pack
from layers_core.reports.run_reader import ReportInputError
from layers_core.runs.artefacts import artefact_path, read_csv_artefact, write_csv, write_json
from layers_core.stats.tests_of_claims import Estimate
from semantics_syntax import hypotheses
from semantics_syntax.artefact_schema import (
    ABLATION,
    CLOZE,
    COLUMNS,
    HYPOTHESES,
    OVERLAPS,
    SCHEMA_VERSION,
    SIMILARITY,
    SPECIALISTS,
    TEXT_COLUMNS,
    TOKEN_CLASSES,
)
from semantics_syntax.hypotheses import Row
from semantics_syntax.reports import (
    ablation_plot,
    cross_model_plot,
    similarity_plot,
    token_classes_plot,
    write_reports,
)
from semantics_syntax.reports.llm_prompts import PACK
from semantics_syntax.reports.run_artefacts import read_semantics_run
from semantics_syntax.reports.seed_claims import HELD_RULES
from semantics_syntax.token_classes import CLASSES, SYNTACTIC
from tests.fixtures.markdown_tables import tables_by_heading

EXPERIMENT = REPO_ROOT / "005_semantics_vs_syntax"
ALPHA, GAMMA, FAILED = "alpha-6l", "gamma-4l", "beta-2b"
FAIL_REASON = "out of memory while training the SAEs: pick fewer layers"
SHAPES = {ALPHA: (6, 64), GAMMA: (4, 32)}  # n_layers, d_model
LAYERS = {ALPHA: (2, 4), GAMMA: (2,)}
GROUPS = ("arithmetic/symbols", "arithmetic/words", "emotion/emoji", "emotion/words", "fact/english", "fact/french")
TOPICS = ("arithmetic", "emotion", "fact")
ITEMS = [(f"math-{i:03d}", "math", f" {i + 10}", 1 + i % 3) for i in range(1, 5)] + \
        [(f"nonmath-{i:03d}", "nonmath", " Paris", 1 + i % 2) for i in range(1, 5)]
SKIPPED = ["math-009", "the prompt's own tokens change when the answer is appended"]
SETTINGS = {"math_topic": "arithmetic", "control_topic": "emotion", "ablations_per_kind": 2, "permutations": 999,
            "seed": 0}
# Per model and SAE: form_jaccard (value, ci_low, ci_high), syntactic share, topic effect and p (SAE space),
# raw and partial math rho with their p, selectivity-free specialist deltas on math items.
SPEC: dict[str, dict[int, dict[str, Any]]] = {
    ALPHA: {2: {"form": (0.15, 0.05, 0.25), "syntactic": 0.95, "topic": (0.20, 0.001), "rho": (0.40, 0.0001),
                "partial": (0.05, 0.6), "deltas": (-0.5, -0.3), "random": (0.01, -0.02), "flips": (0.02, 0.04)},
            4: {"form": (0.30, 0.25, 0.35), "syntactic": 0.50, "topic": (0.05, 0.2), "rho": (0.10, 0.3),
                "partial": (0.02, 0.8), "deltas": (-0.02, 0.01), "random": (0.01, -0.01), "flips": (0.10, 0.01)}},
    GAMMA: {2: {"form": (0.15, 0.10, 0.20), "syntactic": 0.92, "topic": (-0.01, 0.9), "rho": (0.30, 0.01),
                "partial": (0.25, 0.03), "deltas": (-0.2, -0.1), "random": (-0.05, 0.05), "flips": (0.03, 0.01)}},
}


def three(x: float) -> str:
    return f"{x:.3f}"


def rel(name: str, layer: int) -> float:
    return round(layer / SHAPES[name][0], 6)


def at(name: str, layer: int) -> str:
    return f"{layer} ({three(rel(name, layer))})"


def features(layer: int) -> dict[str, list[int]]:
    """Each kind's features at one SAE: two specialists, their random stand-ins, two cross-domain specialists."""
    return {"specialist": [10 + layer, 20 + layer], "random": [30 + layer, 40 + layer],
            "cross_domain": [50 + layer, 60 + layer]}


# --- the synthetic artefacts ------------------------------------------------------------------------------------


def group_specialists(layer: int) -> dict[str, list[tuple[int, float]]]:
    """Each group's specialists (feature, score); arithmetic's are the ablated ones, emotion's the cross-domain."""
    kinds = features(layer)
    found = {"arithmetic/symbols": [(kinds["specialist"][0], 3.0), (kinds["specialist"][1], 2.5)],
             "arithmetic/words": [(kinds["specialist"][1], 2.8), (70 + layer, 1.9)],
             "emotion/emoji": [(kinds["cross_domain"][0], 2.2), (80 + layer, 1.5)],
             "emotion/words": [(kinds["cross_domain"][1], 2.1), (70 + layer, 1.4)]}
    found["fact/english"] = [(90 + layer, 2.0)]
    found["fact/french"] = [(90 + layer, 1.7), (91 + layer, 1.2)]
    return found


def class_rows(layer: int) -> list[dict[str, Any]]:
    """Every specialist's shares by token class; fact/french's second specialist never fires."""
    rows = []
    for g, (group, found) in enumerate(group_specialists(layer).items()):
        tokens = [0.0] * len(CLASSES)
        tokens[CLASSES.index("content_word")], tokens[CLASSES.index("function_word")] = 0.5, 0.3
        tokens[CLASSES.index("digit")] = 0.2
        for rank, (feature, _) in enumerate(found):
            silent = group == "fact/french" and rank == 1
            activation = [0.0] * len(CLASSES)
            if not silent:
                activation[CLASSES.index("digit")] = round(0.1 + 0.05 * g + 0.1 * rank, 6)
                activation[CLASSES.index("content_word")] = round(1 - activation[CLASSES.index("digit")], 6)
            rows += [{"group": group, "feature": feature, "token_class": c, "activation_share": activation[i],
                      "token_share": tokens[i]} for i, c in enumerate(CLASSES)]
    return rows


def ablation_rows(name: str, layer: int) -> list[dict[str, Any]]:
    spec, kinds = SPEC[name][layer], features(layer)
    deltas = {"specialist": spec["deltas"], "random": spec["random"], "cross_domain": (0.003, -0.004)}
    flips = {"specialist": spec["flips"], "random": (0.05, 0.0), "cross_domain": (0.0, 0.01)}
    rows = []
    for kind, found in kinds.items():
        for i, feature in enumerate(found):
            for domain, scale in (("math", 1.0), ("nonmath", 0.1)):
                delta = deltas[kind][i] * scale
                rows.append({"feature": feature, "kind": kind, "domain": domain, "items": 4,
                             "mean_delta_logprob": delta, "ci_low": delta - 0.01, "ci_high": delta + 0.01,
                             "p_value": 0.001 if abs(delta) > 0.1 else 0.4, "flip_rate": flips[kind][i] * scale,
                             "score": None if kind == "random" else 3.0 - i,
                             "frequency": 0.2 + 0.01 * i, "matched_to": kinds["specialist"][i] if kind == "random"
                             else None})
    return rows


def similarity_rows(name: str, layer: int) -> list[dict[str, Any]]:
    topic, p_topic = SPEC[name][layer]["topic"]
    rows = []
    for space, shift in (("sae", 0.0), ("residual", -0.3)):
        for label, effect, p in (("topic", topic, p_topic), ("form", 0.02, 0.3)):
            across = round(0.5 + shift, 6)
            rows.append({"space": space, "label": label, "within": round(across + effect, 6), "across": across,
                         "effect": effect, "p_value": p, "pairs_within": 40, "pairs_across": 80})
    return rows


def claim_rows(name: str, layer: int, ablations: list[dict[str, Any]]) -> list[Row]:
    """The hypotheses rows of one SAE, as ``model_run`` builds them from the same numbers."""
    spec = SPEC[name][layer]
    form, rows = spec["form"], []
    rows.append(Row("H1", "form_jaccard", "trained", layer, form[0], form[1], form[2], math.nan, 3))
    rows.append(Row("H1", "same_form_jaccard", "trained", layer, 0.2, 0.1, 0.3, math.nan, 1))
    rows.append(Row("H1", "syntactic_activation_share", "trained", layer, spec["syntactic"], 0.4, 0.99, math.nan, 11))
    rows.append(Row("H1", "syntactic_share_minus_token_share", "trained", layer, 0.05, -0.1, 0.2, 0.4, 11))
    for r in similarity_rows(name, layer):
        rows.append(Row("H2", f"{r['label']}_clustering_{r['space']}", "trained", layer, r["effect"],
                        p_value=r["p_value"], n=r["pairs_within"] + r["pairs_across"]))
    for domain, scale in (("math", 1.0), ("nonmath", 0.0)):
        for prefix, (value, p) in (("activation_logprob_rho", spec["rho"]),
                                   ("activation_logprob_partial_rho", spec["partial"])):
            found = Estimate(value * scale, value * scale - 0.2, value * scale + 0.2, p if scale else 0.9, 4)
            rows.append(Row.of("H3", f"{prefix}_{domain}", "trained", layer, found))
    on_math = [r for r in ablations if r["domain"] == "math"]
    for r in on_math:
        if r["kind"] == "specialist":
            rows.append(Row("ablation", f"ablation_delta_f{r['feature']}", "trained", layer, r["mean_delta_logprob"],
                            r["ci_low"], r["ci_high"], r["p_value"], r["items"]))
    specialist = [abs(r["mean_delta_logprob"]) for r in on_math if r["kind"] == "specialist"]
    control = [abs(r["mean_delta_logprob"]) for r in on_math if r["kind"] == "random"]
    noise = sum(control) / len(control)
    rows.append(Row("ablation", "signal_to_noise_math", "trained", layer, sum(specialist) / len(specialist) / noise,
                    n=len(specialist)))
    rows.append(Row("ablation", "max_flip_rate_math", "trained", layer,
                    max(r["flip_rate"] for r in on_math if r["kind"] == "specialist"), n=len(specialist)))
    return rows


def grid(layer: int, offset: float) -> list[list[float]]:
    return [[round(offset + (0.5 if i == j else 0.1 * ((i + j + layer) % 4)), 6) for j in range(len(GROUPS))]
            for i in range(len(GROUPS))]


def write_ok_model(run_dir: Path, name: str) -> dict[str, Any]:
    """Write output-<name>.json and its seven CSVs; returns the JSON document."""
    layers = LAYERS[name]
    keys = {layer: {"sae": "trained", "layer": layer, "rel_depth": rel(name, layer)} for layer in layers}
    ablations = {layer: ablation_rows(name, layer) for layer in layers}
    rows = [row for layer in layers for row in claim_rows(name, layer, ablations[layer])]
    rows.append(Row("ablation", "selectivity_vs_effect_rho", "all", None, -0.3, -0.9, 0.6, 0.4, 2 * len(layers)))
    table = hypotheses.table(rows, {layer: rel(name, layer) for layer in layers})

    def write(kind: str, found: list[dict[str, Any]]) -> None:
        write_csv(artefact_path(run_dir, name, kind), found, COLUMNS[kind])

    write(SPECIALISTS, [{**keys[layer], "group": group, "topic": group.split("/")[0], "form": group.split("/")[1],
                         "rank": rank, "feature": feature, "score": score} for layer in layers
                        for group, found in group_specialists(layer).items()
                        for rank, (feature, score) in enumerate(found, start=1)])
    write(OVERLAPS, [{**keys[layer], "kind": kind, "first": a, "second": b, "jaccard": j} for layer in layers
                     for kind, a, b, j in (("across_forms", GROUPS[0], GROUPS[1], 1 / 3),
                                           ("across_forms", GROUPS[2], GROUPS[3], 0.0),
                                           ("across_forms", GROUPS[4], GROUPS[5], 0.5),
                                           ("same_form", GROUPS[1], GROUPS[3], 1 / 3))])
    write(TOKEN_CLASSES, [{**keys[layer], **row} for layer in layers for row in class_rows(layer)])
    write(SIMILARITY, [{**keys[layer], **row} for layer in layers for row in similarity_rows(name, layer)])
    write(CLOZE, [{**keys[layer], "item_id": i, "domain": d, "answer": a, "answer_tokens": n,
                   "logprob": -2.0 * n - 0.1 * k, "specialist_activation": 0.01 * k}
                  for layer in layers for k, (i, d, a, n) in enumerate(ITEMS)])
    write(ABLATION, [{**keys[layer], **row} for layer in layers for row in ablations[layer]])
    write(HYPOTHESES, table)
    saes = [{**keys[layer], "hook": f"blocks.{layer}.hook_resid_pre", "d_sae": 128,
             "source": {"kind": "train", "cache": "hit", "corpus": "bundled"},
             "targets": [{"feature": f, "kind": kind, "score": None if kind == "random" else 3.0, "frequency": 0.2,
                          "matched_to": None} for kind, found in features(layer).items() for f in found],
             "group_similarity": {"sae": grid(layer, 0.3), "residual": grid(layer, -0.2)}} for layer in layers]
    skipped = [SKIPPED] if name == GAMMA else []
    doc = {"schema_version": SCHEMA_VERSION, "status": "ok", "reason": None,
           "model": {"spec": name, "name": name, "kind": "bundled", "architecture": "LlamaForCausalLM",
                     "model_type": "llama"},
           "provenance": {"device": "cpu", "dtype": "float32", "seed": 316},
           "saes": saes, "groups": list(GROUPS), "topics": list(TOPICS), "texts": 3 * len(GROUPS),
           "cloze": {"items": len(ITEMS) + len(skipped), "scored": len(ITEMS), "skipped": skipped,
                     "domains": {"math": 4, "nonmath": 4}},
           "settings": SETTINGS, "hypotheses": table,
           "model_shape": {"n_layers": SHAPES[name][0], "d_model": SHAPES[name][1]},
           "warnings": [f"{len(skipped)} cloze items could not be scored with this tokenizer"] if skipped else []}
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
    folder = build_run(tmp_path_factory.mktemp("semantics") / "run-latest")
    return folder, write_reports(folder)


@pytest.fixture(scope="module")
def run_dir(written: tuple[Path, list[Path]]) -> Path:
    return written[0]


@pytest.fixture
def undrawn_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    """For tests that rewrite the reports only to read markdown: figures built but not drawn (an empty file)."""
    def empty(fig: Any, path: Path) -> Path:
        path.write_bytes(b"")
        return path

    for module in (similarity_plot, token_classes_plot, ablation_plot, cross_model_plot):
        monkeypatch.setattr(module, "save_png", empty)


def doc_of(run_dir: Path, name: str = ALPHA) -> dict[str, Any]:
    return json.loads(artefact_path(run_dir, name, "json").read_text(encoding="utf-8"))


def edit_doc(run_dir: Path, change: dict[str, Any], name: str = ALPHA) -> None:
    write_json(artefact_path(run_dir, name, "json"), {**doc_of(run_dir, name), **change})


def evaluation(run_dir: Path, name: str = ALPHA) -> str:
    return (run_dir / f"evaluation-{name}.md").read_text(encoding="utf-8")


def cross(run_dir: Path) -> str:
    return (run_dir / "evaluation-cross-model.md").read_text(encoding="utf-8")


def copy_run(run_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    return copy


def csv_of(run_dir: Path, kind: str, name: str = ALPHA) -> pd.DataFrame:
    return read_csv_artefact(artefact_path(run_dir, name, kind), TEXT_COLUMNS)


def section(report: str, heading: str) -> str:
    """The text of one ``## `` section (up to the next one)."""
    return report.split(f"\n## {heading}", 1)[1].split("\n## ", 1)[0]


# --- every file -------------------------------------------------------------------------------------------------


PLOTS = ("similarity", "token-classes", "ablation")


def test_every_report_is_written_and_only_the_evaluation_for_the_failed_model(
        written: tuple[Path, list[Path]]) -> None:
    folder, files = written
    expected = sorted([*(f"{plot}-{m}.png" for plot in PLOTS for m in (ALPHA, GAMMA)),
                       *(f"evaluation-{m}.md" for m in (ALPHA, GAMMA, FAILED)),
                       *(f"llm-prompt-{m}.md" for m in (ALPHA, GAMMA)),
                       "cross-model.png", "evaluation-cross-model.md", "llm-prompt-cross-model.md"])
    assert sorted(p.name for p in files) == expected
    for path in files:
        assert path.parent == folder and path.stat().st_size > 0, path
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = evaluation(folder)
    for alt, plot in (("similarity", "similarity"), ("token classes", "token-classes"), ("ablation", "ablation")):
        assert f"![{alt}]({plot}-{ALPHA}.png)" in report
    assert "![cross-model](cross-model.png)" in cross(folder)
    failed = evaluation(folder, FAILED)
    assert "Status: **failed**" in failed and FAIL_REASON in failed
    assert f"- `{FAILED}` (failed): {FAIL_REASON}" in cross(folder)


def test_h3_says_why_a_correlation_is_undefined(run_dir: Path, tmp_path: Path, undrawn_figures: None) -> None:
    # Gemma's residual 4 in the real run: the math specialists fire on no non-math item, so the
    # correlation over those items has no ranking and the hypotheses CSV leaves it empty.
    copy = copy_run(run_dir, tmp_path)
    cloze_path = artefact_path(copy, GAMMA, CLOZE)
    cloze = pd.read_csv(cloze_path)
    cloze.loc[cloze["domain"] == "nonmath", "specialist_activation"] = 0.0
    cloze.to_csv(cloze_path, index=False)
    claims_path = artefact_path(copy, GAMMA, HYPOTHESES)
    claims = pd.read_csv(claims_path)
    undefined = claims["measure"].str.endswith("rho_nonmath")
    claims.loc[undefined, ["value", "ci_low", "ci_high", "p_value", "p_holm"]] = math.nan
    claims.to_csv(claims_path, index=False)
    rows = doc_of(copy, GAMMA)["hypotheses"]
    for row in rows:
        if row["measure"].endswith("rho_nonmath"):
            row.update(dict.fromkeys(("value", "ci_low", "ci_high", "p_value", "p_holm")))
    edit_doc(copy, {"hypotheses": rows}, GAMMA)
    write_reports(copy)
    h3 = section(evaluation(copy, GAMMA), "H3")
    assert (f"- {at(GAMMA, 2)}, nonmath: n/a because the math specialists fire on none of its items, so there is "
            "no ranking to correlate.") in h3
    assert ", math: n/a because" not in h3


def test_the_same_artefacts_give_the_same_bytes_and_the_meta_prompt_appears(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    (copy / "llm-evaluation-cross-model.md").write_text("An LLM's answer.\n", encoding="utf-8")
    assert "llm-prompt-meta.md" in {p.name for p in write_reports(copy)}
    meta = (copy / "llm-prompt-meta.md").read_text(encoding="utf-8")
    assert "An LLM's answer." in meta and f"### evaluation-{ALPHA}.md" in meta and "semantics vs syntax" in meta
    compared = sorted(run_dir.glob("*.md")) + sorted(run_dir.glob("*.png"))
    assert len(compared) == 14
    for path in compared:
        assert (copy / path.name).read_bytes() == path.read_bytes(), path.name


# --- held, as the CSV says, with its rule -----------------------------------------------------------------------


SECTIONS = {"H1": "H1: the seed's claims against this run", "H2": "H2: the seed's claims against this run",
            "H3": "H3: the seed's claims against this run", "ablation": "Ablation: the seed's claims against this run"}


def layer_cell(name: str, layer: Any) -> str:
    return "all SAEs together" if pd.isna(layer) else at(name, int(layer))


@pytest.mark.parametrize("name", [ALPHA, GAMMA])
def test_every_claim_table_states_held_as_the_csv_does(run_dir: Path, name: str) -> None:
    tables = tables_by_heading(evaluation(run_dir, name))
    frame = csv_of(run_dir, HYPOTHESES, name)
    for hypothesis, heading in SECTIONS.items():
        expected = [(f"`{r.measure}`", layer_cell(name, r.layer), r.held or "no claim", r.seed_claim or "no claim")
                    for r in frame[frame["hypothesis"] == hypothesis].itertuples()]
        shown = [(r["Measure"], r["Layer"], r["Held"], r["Seed claim"]) for r in tables[heading]]
        assert shown == expected, hypothesis
    # the verdicts the synthetic numbers were chosen for
    held = {(r.measure, None if pd.isna(r.layer) else int(r.layer)): r.held for r in frame.itertuples()}
    if name == ALPHA:
        assert held[("form_jaccard", 2)] == "yes" and held[("form_jaccard", 4)] == "no"
        assert held[("topic_clustering_sae", 2)] == "yes" and held[("topic_clustering_sae", 4)] == "no"
        assert held[("activation_logprob_rho_math", 2)] == "yes" and held[("max_flip_rate_math", 4)] == "no"


def test_held_rules_name_exactly_the_seed_claims_and_quote_their_thresholds() -> None:
    assert set(HELD_RULES) == set(hypotheses.SEED_CLAIMS)
    doc = " ".join((hypotheses.__doc__ or "").split())
    for measure, rule in HELD_RULES.items():
        for number in re.findall(r"\d+\.\d+", rule):
            assert number in doc, (measure, number)


def test_each_section_states_its_rules_and_what_misses_significance(run_dir: Path) -> None:
    report = evaluation(run_dir)
    h1, h2 = section(report, "H1"), section(report, "H2")
    assert f"- `form_jaccard`: {HELD_RULES['form_jaccard']}." in h1
    assert f"- `topic_clustering_sae`: {HELD_RULES['topic_clustering_sae']}." in h2
    # alpha's topic effect at residual 4 (p 0.2, Holm over 8 tests: 1.000) does not reach significance
    line = next(x for x in h2.splitlines() if x.startswith("- `topic_clustering_sae`") and "significance" in x)
    assert f"does **not reach significance** at {at(ALPHA, 4)} (p_holm 1.000)" in line
    assert f"reaches significance at {at(ALPHA, 2)} (p_holm 0.008)" in line
    assert ("Held by the rule although the value lies outside the seed's number or range: `topic_clustering_sae` at "
            f"{at(ALPHA, 2)} (0.200 against the seed's within 0.503 vs across 0.137)") in h2
    ablation = section(report, "Ablation")
    assert "`selectivity_vs_effect_rho` does **not reach significance** over all SAEs together (p 0.400)" in ablation


def test_h3_names_the_token_count_confound_and_the_controlled_result(run_dir: Path) -> None:
    h3 = section(evaluation(run_dir), "H3")
    assert "a raw correlation can arise from answer token counts alone" in h3
    assert (f"- {at(ALPHA, 2)}: math correlation significant raw, **not** once the answer's token count is "
            "controlled") in h3
    # gamma's partial rho: p 0.03, but Holm over its four correlations gives 0.090
    gamma = section(evaluation(run_dir, GAMMA), "H3")
    assert (f"- `activation_logprob_partial_rho_math` does **not reach significance** at {at(GAMMA, 2)} "
            "(p_holm 0.090).") in gamma
    assert f"- {at(GAMMA, 2)}: math correlation significant raw and once the answer's token count is" not in gamma
    assert "n/a because" not in gamma
    rows = tables_by_heading(evaluation(run_dir))["Answer token counts (the confound)"]
    math_items = [n for _, d, _, n in ITEMS if d == "math"]
    assert rows[0]["Items"] == "math" and rows[0]["Mean answer tokens"] == f"{sum(math_items) / len(math_items):.2f}"


def test_sae_quality_note_and_skipped_items(run_dir: Path) -> None:
    alpha, gamma = evaluation(run_dir), evaluation(run_dir, GAMMA)
    for report in (alpha, gamma):
        assert "measured by experiment 004, not here" in report
    assert "none was skipped" in alpha and "WARNING" not in alpha
    assert "**1 cloze item(s) skipped**" in gamma and f"`{SKIPPED[0]}` ({SKIPPED[1]})" in gamma
    assert gamma.index("**WARNING**: 1 cloze items could not be scored") < gamma.index("Generated by")


# --- the numbers of the tables ----------------------------------------------------------------------------------


def test_ablation_table_averages_each_kind_from_the_csv(run_dir: Path) -> None:
    frame = csv_of(run_dir, ABLATION)
    rows = tables_by_heading(evaluation(run_dir))["By kind of feature"]
    assert [(r["Layer"], r["Kind"]) for r in rows] == [(at(ALPHA, layer), kind) for layer in LAYERS[ALPHA]
                                                       for kind in ("specialist", "random", "cross_domain")]
    for row, (layer, kind) in zip(rows, [(la, k) for la in LAYERS[ALPHA]
                                         for k in ("specialist", "random", "cross_domain")], strict=True):
        cell = frame[(frame["layer"] == layer) & (frame["kind"] == kind) & (frame["domain"] == "math")]
        assert row["math mean delta"] == f"{cell['mean_delta_logprob'].mean():+.4f}"
        assert row["math mean abs delta"] == f"{cell['mean_delta_logprob'].abs().mean():.4f}"
        assert row["math max flip"] == f"{100 * cell['flip_rate'].max():.2f}%"
    snr = tables_by_heading(evaluation(run_dir))["Signal-to-noise and specificity"]
    # residual 2: specialists |-0.5|, |-0.3| against random |0.01|, |-0.02|
    assert snr[0]["Signal-to-noise (math)"] == f"{(0.8 / 2) / (0.03 / 2):.2f}x"


def test_token_class_table_averages_the_specialists_that_fire(run_dir: Path) -> None:
    rows = {r["Token class"]: r for r in tables_by_heading(evaluation(run_dir))["Where the specialists fire, by "
                                                                                 "token class"]}
    fired = [r for r in class_rows(2) if r["token_class"] == "digit"]
    fired = [r for r in fired if not (r["group"] == "fact/french" and r["activation_share"] == 0)]
    assert rows["`digit`"][f"{at(ALPHA, 2)} activation"] == three(sum(r["activation_share"] for r in fired)
                                                                 / len(fired))
    assert rows["`digit`"]["Syntactic"] == "yes" and "digit" in SYNTACTIC
    assert f"{at(ALPHA, 2)}: 10 of 11" in evaluation(run_dir)


def test_cross_model_sets_each_claim_and_the_signal_to_noise_beside_the_seed(run_dir: Path) -> None:
    text = cross(run_dir)
    rows = tables_by_heading(text)["The seed's claims, model by model"]
    for name in (ALPHA, GAMMA):
        frame = csv_of(run_dir, HYPOTHESES, name)
        for measure in HELD_RULES:
            found = frame[frame["measure"] == measure]
            row = next(r for r in rows if r["Measure"] == f"`{measure}`" and r["Model"] == f"`{name}`")
            assert row["Held at"] == f"{(found['held'] == 'yes').sum()} of {len(found)}", (name, measure)
    form = next(r for r in rows if r["Measure"] == "`form_jaccard`" and r["Model"] == f"`{ALPHA}`")
    assert form["Per SAE: value (value - seed)"] == f"{at(ALPHA, 2)}: 0.150 (inside); {at(ALPHA, 4)}: 0.300 (0.120)"
    assert "2.6x on GPT-2 Small and 140.6x on Gemma 2 9B" in text
    # alpha is deeper and wider than gamma: its median signal-to-noise (of 26.67x and 1.50x) against gamma's 3.00x
    assert (f"The largest model by depth and width ({ALPHA}: 6 layers, d_model 64) has a higher median "
            "signal-to-noise than every other model.") in text


# --- the LLM prompts --------------------------------------------------------------------------------------------


def test_llm_prompt_inlines_the_json_and_csvs_and_trims_over_the_budget(run_dir: Path, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    text = (run_dir / f"llm-prompt-{ALPHA}.md").read_text(encoding="utf-8")
    assert "Nothing was trimmed" in text and "answer token counts" in text
    for kind in (SIMILARITY, OVERLAPS, ABLATION, SPECIALISTS, TOKEN_CLASSES, CLOZE):
        assert f"### output-{ALPHA}-{kind}.csv" in text
    assert f"### output-{ALPHA}-{HYPOTHESES}.csv" not in text
    inlined = json.loads(text.split("```json\n", 1)[1].split("\n```", 1)[0])
    assert inlined == doc_of(run_dir)
    copy = copy_run(run_dir, tmp_path)
    monkeypatch.setattr(llm_pack, "CHAR_BUDGET", 1_000)
    model = next(m for m in read_semantics_run(copy).models if m.name == ALPHA)
    text = PACK.write_model(model, copy).read_text(encoding="utf-8")
    assert "Over budget even after every trim" in text
    assert f"- output-{ALPHA}-{CLOZE}.csv: all {len(ITEMS) * 2} rows removed" in text
    assert f"- output-{ALPHA}-{SPECIALISTS}.csv: only each group's best specialist (rank 1) kept" in text


def test_templates_exist_and_name_the_confounds() -> None:
    folder = PROMPTS_DIR / "005_semantics_vs_syntax"
    for name in ("prompt-single-model-evaluation.txt", "prompt-cross-model-evaluation.txt",
                 "prompt-meta-evaluation.txt"):
        text = (folder / name).read_text(encoding="utf-8").lower()
        for word in ("answer token count", "140.6x", "0.13-0.18", "experiment 004", "held"):
            assert word in text, (name, word)


# --- refused inputs ---------------------------------------------------------------------------------------------


def _one_line_error(folder: Path) -> str:
    with pytest.raises(ReportInputError) as info:
        write_reports(folder)
    message = info.value.message
    assert "\n" not in message and "005_semantics_vs_syntax/run.py" in message, message
    return message


def test_a_missing_csv_is_one_line(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    artefact_path(copy, ALPHA, TOKEN_CLASSES).unlink()
    assert f"output-{ALPHA}-{TOKEN_CLASSES}.csv is missing" in _one_line_error(copy)


def test_a_newer_schema_or_a_missing_key_is_refused(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    edit_doc(copy, {"schema_version": SCHEMA_VERSION + 1})
    assert "newer" in _one_line_error(copy)
    doc = {**doc_of(copy), "schema_version": SCHEMA_VERSION}
    del doc["hypotheses"]
    write_json(artefact_path(copy, ALPHA, "json"), doc)
    assert "has status ok but no 'hypotheses'" in _one_line_error(copy)


def test_a_hypotheses_csv_that_disagrees_with_the_json_is_refused(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    path = artefact_path(copy, ALPHA, HYPOTHESES)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[frame["measure"] == "form_jaccard", "held"] = "no"
    frame.to_csv(path, index=False, lineterminator="\n")
    message = _one_line_error(copy)
    assert f"output-{ALPHA}-{HYPOTHESES}.csv does not hold the JSON's hypotheses (row 1 (form_jaccard)" in message


def test_a_held_verdict_without_a_rule_is_refused(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    doc = doc_of(copy)
    for row in doc["hypotheses"]:
        if row["measure"] == "same_form_jaccard":
            row["held"] = "yes"
    write_json(artefact_path(copy, ALPHA, "json"), doc)
    write_csv(artefact_path(copy, ALPHA, HYPOTHESES), doc["hypotheses"], COLUMNS[HYPOTHESES])
    assert "same_form_jaccard has held 'yes' but no rule the reports know" in _one_line_error(copy)


def test_csvs_or_json_fields_from_another_run_are_refused(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    shutil.copy(artefact_path(copy, GAMMA, SIMILARITY), artefact_path(copy, ALPHA, SIMILARITY))
    assert f"output-{ALPHA}-{SIMILARITY}.csv does not hold the JSON's SAEs (residuals [2, 4]" in _one_line_error(copy)
    copy = copy_run(run_dir, tmp_path / "again")
    saes = doc_of(copy)["saes"]
    saes[1]["targets"] = saes[1]["targets"][1:]
    edit_doc(copy, {"saes": saes})
    assert f"output-{ALPHA}-{ABLATION}.csv does not hold the JSON's ablation targets" in _one_line_error(copy)
    saes = doc_of(copy)["saes"]
    saes[0]["group_similarity"]["residual"] = saes[0]["group_similarity"]["residual"][1:]
    edit_doc(copy, {"saes": saes})
    assert "has no 6 x 6 group_similarity 'residual' at residual 2" in _one_line_error(copy)


def test_a_csv_without_a_needed_column_is_one_line(run_dir: Path, tmp_path: Path) -> None:
    copy = copy_run(run_dir, tmp_path)
    path = artefact_path(copy, ALPHA, ABLATION)
    pd.read_csv(path).drop(columns=["flip_rate"]).to_csv(path, index=False, lineterminator="\n")
    assert f"output-{ALPHA}-{ABLATION}.csv lacks the column(s) flip_rate" in _one_line_error(copy)


# --- the command line ----------------------------------------------------------------------------


def test_report_cli_help_names_the_plots_and_refuses_a_missing_folder(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COLUMNS", "2000")  # argparse wraps --help to the terminal, breaking names at hyphens
    spec = importlib.util.spec_from_file_location("semantics_report_cli", EXPERIMENT / "report.py")
    assert spec is not None and spec.loader is not None
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    with pytest.raises(SystemExit):
        report.main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for name in ("similarity-<model>.png", "token-classes-<model>.png", "ablation-<model>.png", "cross-model.png",
                 "evaluation-<model>.md", "llm-prompt-meta.md"):
        assert name in help_text, name
    with pytest.raises(ReportInputError, match="does not exist: run 005_semantics_vs_syntax/run.py first"):
        report.main([str(tmp_path / "nothing-here")])
