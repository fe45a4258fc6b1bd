"""Experiment 001's reports: plots, factual markdown and LLM prompts, built from a run folder.

The run folder is written by ``tests/fixtures/lens_run_builder.py`` exactly per the
artefact schema (NOTES.md, "Artefacts (001)": two ok models, one with the fact
battery, one skipped model). Every check reads the artefacts independently of the
report code and compares. The generic reporting layer (``layers_core.reports``)
has its own tests in ``tests/reports/``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from layers_and_logits.artefact_schema import PURE_NEXT_TOKEN, RECORDS
from layers_and_logits.reports import write_reports
from layers_and_logits.reports.heatmap import heatmap_figure, heatmap_grid, last_columns
from layers_and_logits.reports.md_model import consistency_passed
from layers_and_logits.reports.run_artefacts import read_lens_run
from layers_and_logits.reports.trajectory import trajectory_figure
from layers_core.paths import PROMPTS_DIR, REPO_ROOT
from layers_core.reports import llm_pack
from layers_core.reports.plot_style import plot_label
from layers_core.runs.artefacts import artefact_path, read_csv_artefact
from tests.fixtures.lens_run_builder import build_run, write_model
from tests.fixtures.markdown_tables import (
    PROB_CELL,
    THREE_DECIMALS,
    code,
    milestone,
    tables_by_heading,
)

EXPERIMENT = REPO_ROOT / "001_layers_and_logits"
TEMPLATES = PROMPTS_DIR / "001_layers_and_logits"
OK_MODELS = ("alpha-30l", "beta-18l")
SKIPPED = "gamma-70b"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fixture run folder with every report already written."""
    folder = build_run(tmp_path_factory.mktemp("reports") / "run-latest")
    write_reports(folder)
    return folder


def summary(run_dir: Path, name: str) -> dict:
    return json.loads(artefact_path(run_dir, name, "json").read_text(encoding="utf-8"))


def assert_prob(cell: str, value: float | None) -> None:
    """A probability cell: 4 significant digits, equal to the artefact value up to that rounding."""
    if value is None:
        assert cell == "n/a"
        return
    assert cell == "0.000" and value == 0 or PROB_CELL.match(cell), cell
    assert math.isclose(float(cell), value, rel_tol=5.001e-4, abs_tol=0.0), (cell, value)


def assert_3dp(cell: str, value: float | None) -> None:
    """A bits or relative-depth cell: 3 decimals, equal to the artefact value up to that rounding."""
    if value is None:
        assert cell == "n/a"
        return
    assert THREE_DECIMALS.match(cell), cell
    assert abs(float(cell) - value) <= 5.001e-4, (cell, value)


def assert_milestone(cell: str, entry: dict, aligned: bool = True, key: str = "first_rank1") -> None:
    """A ``layer (depth)`` cell equal to the JSON milestone; ``not aligned`` for answer milestones without answer."""
    if not aligned and key != "first_kl_below_1_bit":
        assert cell == "not aligned", cell
        return
    parsed = milestone(cell)
    if entry["layer"] is None:
        assert parsed is None, cell
    else:
        assert parsed is not None and parsed[0] == entry["layer"], (cell, entry)
        assert abs(parsed[1] - entry["rel_depth"]) <= 5.001e-4


# --- plots -----------------------------------------------------------------------------------


def check_heatmap_grid(run_dir: Path, name: str) -> None:
    """The heatmap grid has L+1 rows, one column per input token, and the records CSV's top-1 in every cell."""
    records = read_csv_artefact(artefact_path(run_dir, name, RECORDS))
    doc = summary(run_dir, name)
    n_layers = doc["diagnostics"]["n_layers"]
    main = next(p for p in doc["prompts"] if p["prompt_id"] == doc["main_prompt_id"])
    tokens, layers, text, probs = heatmap_grid(records, doc["main_prompt_id"])
    assert layers == list(range(n_layers + 1))
    assert tokens == main["tokens"]
    assert len(text) == n_layers + 1 and all(len(row) == len(tokens) for row in text)
    rows = records[records["prompt_id"] == doc["main_prompt_id"]]
    assert len(rows) == (n_layers + 1) * len(tokens)
    for row in rows.itertuples():
        assert text[row.layer][row.pos] == row.top1
        assert probs[row.layer, row.pos] == pytest.approx(row.p_top1)
    for stem in ("heatmap", "heatmap-entropy", "trajectory"):
        assert (run_dir / f"{stem}-{name}.png").stat().st_size > 10_000


@pytest.mark.parametrize("name", OK_MODELS)
def test_heatmap_grid_is_the_records_csv(run_dir: Path, name: str) -> None:
    check_heatmap_grid(run_dir, name)


def test_heatmap_figure_draws_every_cell(run_dir: Path) -> None:
    records = read_csv_artefact(artefact_path(run_dir, "alpha-30l", RECORDS))
    tokens, layers, text, probs = heatmap_grid(records, "completion")
    fig = heatmap_figure(tokens, layers, text, probs, title="t", colour_label="p", vmax=1.0, cmap="viridis")
    ax = fig.axes[0]
    drawn = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
    assert len(ax.texts) == len(layers) * len(tokens)
    for i in range(len(layers)):
        for j in range(len(tokens)):
            assert drawn[(i, j)] == plot_label(text[i][j])
    assert [t.get_text() for t in ax.get_xticklabels()] == [plot_label(t, 12) for t in tokens]
    assert [t.get_text() for t in ax.get_yticklabels()] == [str(x) for x in layers]
    # the top-right cell is the answer position at layer L: the model's final top-1, " Berlin"
    assert drawn[(len(layers) - 1, len(tokens) - 1)] == plot_label(" Berlin")


def test_long_prompts_keep_the_last_columns_of_the_heatmap() -> None:
    tokens = [f"t{i}" for i in range(30)]
    text = [[f"{layer}:{i}" for i in range(30)] for layer in range(4)]
    values = np.arange(120, dtype=float).reshape(4, 30)
    kept_tokens, kept_text, kept_values = last_columns(tokens, text, values, 24)
    assert kept_tokens == tokens[6:] and kept_text[3][-1] == "3:29" and kept_values.shape == (4, 24)
    assert last_columns(tokens[:5], [r[:5] for r in text], values[:, :5], 24)[0] == tokens[:5]


def test_trajectory_lines_are_the_pure_csv(run_dir: Path) -> None:
    pure = read_csv_artefact(artefact_path(run_dir, "alpha-30l", PURE_NEXT_TOKEN))
    doc = summary(run_dir, "alpha-30l")
    roles = {p["prompt_id"]: p["role"] for p in doc["prompts"]}
    fig = trajectory_figure(pure, "completion", roles, "t", 49152)
    p_ax, rank_ax, entropy_ax, kl_ax = fig.axes[:4]

    def prompt_lines(ax):  # noqa: ANN001, ANN202 - the uniform-entropy reference line has a "_" label
        return [x for x in ax.lines if not x.get_label().startswith("_")]

    aligned = [p["prompt_id"] for p in doc["prompts"] if p["alignment"]["ok"]]
    assert len(prompt_lines(p_ax)) == len(prompt_lines(rank_ax)) == len(aligned) == len(doc["prompts"]) - 1
    assert len(prompt_lines(entropy_ax)) == len(prompt_lines(kl_ax)) == len(doc["prompts"])
    assert rank_ax.get_yscale() == "log"
    main = pure[pure["prompt_id"] == "completion"]
    line = next(x for x in prompt_lines(p_ax) if x.get_label().startswith("completion"))
    assert list(line.get_ydata()) == pytest.approx(list(main["p_answer"]))


def test_every_plot_file_is_written(run_dir: Path) -> None:
    for name in OK_MODELS:
        for stem in ("heatmap", "heatmap-entropy", "trajectory"):
            assert (run_dir / f"{stem}-{name}.png").stat().st_size > 10_000
    assert (run_dir / "cross-model.png").stat().st_size > 10_000
    assert not list(run_dir.glob(f"*{SKIPPED}.png"))


# --- per-model markdown ---------------------------------------------------------------------


def check_model_markdown(run_dir: Path, name: str) -> None:
    """Every number in evaluation-<name>.md's tables equals the JSON value it came from."""
    doc = summary(run_dir, name)
    text = (run_dir / f"evaluation-{name}.md").read_text(encoding="utf-8")
    tables = tables_by_heading(text)
    assert [h for h in text.splitlines() if h.startswith("## ")][0] == "## Last-layer consistency"
    check = {r["Check"]: r["Value"] for r in tables["Last-layer consistency"]}
    consistency = doc["diagnostics"]["last_layer_consistency"]
    assert float(check["KL(model output ‖ lens at layer L) in bits"]) == consistency["kl_bits"]
    assert float(check["Max absolute logit difference"]) == consistency["max_abs_logit_diff"]
    checks = [consistency] + [p["last_layer_consistency"] for p in doc["prompts"] if "last_layer_consistency" in p]
    passed = all(c["kl_bits"] < 1e-3 and c["top1_agree"] for c in checks)
    assert ("WARNING" in text) == (not passed)
    prompts = {p["prompt_id"]: p for p in doc["prompts"]}
    setup = {r["Field"]: r["Value"] for r in tables["Model and set-up"]}
    assert int(setup["Layers (L)"]) == doc["diagnostics"]["n_layers"]
    assert int(setup["Vocabulary"]) == doc["diagnostics"]["vocab_size"]
    milestone_rows = tables["Milestones"]
    assert [code(r["Prompt"]) for r in milestone_rows] == list(prompts)
    labels = {"first_rank_le_10": "answer in top 10", "first_rank1": "answer is top-1",
              "first_p_answer_gt_0_5": "p(answer) > 0.5", "first_kl_below_1_bit": "KL to final < 1 bit"}
    for row in milestone_rows:
        entry = prompts[code(row["Prompt"])]
        for key, label in labels.items():
            assert_milestone(row[label], entry["milestones"][key], entry["alignment"]["ok"], key)
        assert int(row["Copy-collapse layers"]) == entry["copy_collapse"]["n_layers"]
    for row in tables["How each prompt ended"]:
        entry = prompts[code(row["Prompt"])]
        assert code(row["Final top-1"]) == entry["final_prediction"]["top"][0]["token"]
        assert_prob(row["p(top-1)"], entry["final_prediction"]["top"][0]["p"])
        assert_prob(row["p(answer) at L"], entry["key_layers"][-1]["p_answer"])
    for pid, entry in prompts.items():
        check_prompt_tables(tables, pid, entry)


def check_prompt_tables(tables: dict, pid: str, entry: dict) -> None:
    """Key layers, final prediction and temperature tables of one prompt against its JSON entry."""
    key_rows = tables[f"Key layers: `{pid}`"]
    assert len(key_rows) == len(entry["key_layers"])
    for row, key in zip(key_rows, entry["key_layers"], strict=True):
        assert int(row["Layer"]) == key["layer"]
        assert_3dp(row["Relative depth"], key["rel_depth"])
        assert code(row["Top-1"]) == key["top1"]
        assert_prob(row["p(top-1)"], key["p_top1"])
        assert_prob(row["p(answer)"], key["p_answer"])
        assert row["Answer rank"] == ("n/a" if key["answer_rank"] is None else str(key["answer_rank"]))
    for row, top in zip(tables[f"Final prediction: `{pid}`"], entry["final_prediction"]["top"], strict=True):
        assert code(row["Token"]) == top["token"]
        assert_prob(row["p"], top["p"])
    for row, temp in zip(tables[f"Temperature: `{pid}`"], entry["temperature_exploration"], strict=True):
        assert float(row["Temperature"]) == temp["temperature"]
        assert_3dp(row["Entropy (bits)"], temp["entropy_bits"])
        for i, top in enumerate(temp["top"], 1):
            assert code(row[f"Top-{i}"]) == top["token"]
            assert_prob(row[f"p{i}"], top["p"])


def check_facts_markdown(run_dir: Path, name: str) -> None:
    """The fact-battery tables equal the JSON facts summary and per-fact milestones."""
    facts = summary(run_dir, name)["facts"]
    tables = tables_by_heading((run_dir / f"evaluation-{name}.md").read_text(encoding="utf-8"))
    rows = tables["Fact battery"]
    assert len(rows) == len(facts["milestones"])
    for row, stats in zip(rows, facts["milestones"].values(), strict=True):
        for column, key in (("Median depth", "median"), ("Q1", "q1"), ("Q3", "q3")):
            assert_3dp(row[column], stats[key])
        assert row["Facts reaching it"] == f"{stats['n_reached']} of {stats['n']}"
    for row, fact in zip(tables["Per fact"], facts["per_fact"], strict=True):
        assert code(row["Fact"]) == fact["prompt_id"]
        assert row["Aligned"] == ("yes" if fact["aligned"] else "no")
        assert code(row["Final top-1"]) == fact["final_top1"]
        assert_milestone(row["answer is top-1"], fact["first_rank1"], fact["aligned"])
        assert_milestone(row["KL to final < 1 bit"], fact["first_kl_below_1_bit"], fact["aligned"],
                         "first_kl_below_1_bit")


@pytest.mark.parametrize("name", OK_MODELS)
def test_markdown_tables_match_the_json(run_dir: Path, name: str) -> None:
    check_model_markdown(run_dir, name)


def test_fact_battery_tables_match_the_json(run_dir: Path) -> None:
    check_facts_markdown(run_dir, "alpha-30l")
    beta = (run_dir / "evaluation-beta-18l.md").read_text(encoding="utf-8")
    assert "Not run for this model" in beta


def test_failed_consistency_gives_a_loud_warning_first(tmp_path: Path) -> None:
    write_model(tmp_path, "broken", 12, 1000, facts=False, kl_bits=0.9)
    write_reports(tmp_path)
    text = (tmp_path / "evaluation-broken.md").read_text(encoding="utf-8")
    warning = text.index("**WARNING: the lens does not reproduce")
    assert warning < text.index("## Model and set-up")
    assert "kl_bits = 0.9" in text
    assert "**FAILED**" in (tmp_path / "evaluation-cross-model.md").read_text(encoding="utf-8")


def test_missing_records_csv_skips_only_the_heatmap(tmp_path: Path) -> None:
    write_model(tmp_path, "norecords", 6, 500, facts=False)
    artefact_path(tmp_path, "norecords", RECORDS).unlink()
    written = {p.name for p in write_reports(tmp_path)}
    assert "heatmap-norecords.png" not in written and "trajectory-norecords.png" in written
    assert "records.csv` is missing: no heatmap" in (tmp_path / "evaluation-norecords.md").read_text(encoding="utf-8")


# --- cross-model ---------------------------------------------------------------------------


def check_cross_model(run_dir: Path, names: list[str]) -> None:
    """The cross-model tables list the ok models and copy their JSON milestones and fact summaries."""
    tables = tables_by_heading((run_dir / "evaluation-cross-model.md").read_text(encoding="utf-8"))
    assert [code(r["Model"]) for r in tables["Models"]] == names
    for row in tables["Main prompt milestones"]:
        doc = summary(run_dir, code(row["Model"]))
        main = next(p for p in doc["prompts"] if p["prompt_id"] == doc["main_prompt_id"])
        assert int(row["Layers"]) == doc["diagnostics"]["n_layers"]
        for key, label in (("first_rank1", "answer is top-1"), ("first_p_answer_gt_0_5", "p(answer) > 0.5")):
            assert_milestone(row[label], main["milestones"][key], main["alignment"]["ok"], key)
    for row in tables["The same prompt across models"]:
        for name in names:
            entry = next(p for p in summary(run_dir, name)["prompts"] if p["prompt_id"] == code(row["Prompt"]))
            assert_milestone(row[f"`{name}`"], entry["milestones"]["first_rank1"], entry["alignment"]["ok"])
    fact_rows = iter(tables.get("Fact battery", []))
    for name in names:
        for stats in ((summary(run_dir, name)["facts"] or {}).get("milestones") or {}).values():
            row = next(fact_rows)
            assert code(row["Model"]) == name
            assert_3dp(row["Median depth"], stats["median"])
            assert row["Facts reaching it"] == f"{stats['n_reached']} of {stats['n']}"
    assert (run_dir / "cross-model.png").stat().st_size > 10_000


def test_cross_model_lists_skipped_and_compares_the_rest(run_dir: Path) -> None:
    text = (run_dir / "evaluation-cross-model.md").read_text(encoding="utf-8")
    skipped = summary(run_dir, SKIPPED)
    assert f"- `{SKIPPED}` (skipped): {skipped['reason']}" in text
    check_cross_model(run_dir, list(OK_MODELS))
    assert "Not run for: `beta-18l`." in text


def test_only_skipped_models_still_gives_a_cross_model_report(tmp_path: Path) -> None:
    artefact_path(tmp_path, "big", "json").write_text(
        json.dumps({"schema_version": 1, "status": "failed", "reason": "out of memory"}))
    written = {p.name for p in write_reports(tmp_path)}
    assert written == {"evaluation-big.md", "evaluation-cross-model.md"}
    assert "- `big` (failed): out of memory" in (tmp_path / "evaluation-cross-model.md").read_text()


# --- LLM prompts ---------------------------------------------------------------------------


def _body(text: str) -> str:
    return text.split("\n---\n\n", 1)[1]


def test_llm_prompt_inlines_the_artefacts_verbatim(run_dir: Path) -> None:
    text = (run_dir / "llm-prompt-alpha-30l.md").read_text(encoding="utf-8")
    body = _body(text)
    assert f"{len(body):,} characters, about {len(body) // 4:,} tokens" in text
    assert "Nothing was trimmed" in text
    template = (TEMPLATES / "prompt-single-model-evaluation.txt").read_text(encoding="utf-8")
    assert body.startswith(template.rstrip())
    assert artefact_path(run_dir, "alpha-30l", "json").read_text(encoding="utf-8").rstrip() in body
    assert artefact_path(run_dir, "alpha-30l", PURE_NEXT_TOKEN).read_text(encoding="utf-8") in body
    cross = (run_dir / "llm-prompt-cross-model.md").read_text(encoding="utf-8")
    assert artefact_path(run_dir, "beta-18l", PURE_NEXT_TOKEN).name in cross
    assert SKIPPED not in _body(cross).split("## Artefacts")[1]


def test_llm_prompt_trims_to_the_budget_and_says_what(run_dir: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from layers_and_logits.reports import llm_prompts

    copy = shutil.copytree(run_dir, tmp_path / "copy")
    model = next(m for m in read_lens_run(copy).models if m.name == "alpha-30l")
    # Between the last trim level's size (~51k with the templates' lens paragraph) and the one before (~61k).
    monkeypatch.setattr(llm_pack, "CHAR_BUDGET", 55_000)
    text = llm_prompts.PACK.write_model(model, copy).read_text(encoding="utf-8")
    assert len(_body(text)) <= 55_000 and "Over budget" not in text
    assert "columns top2..top20 and p_top2..p_top20 removed (only top1 kept)" in text
    assert "facts.per_fact removed (7 entries" in text
    assert "rows of prompts other than `completion` kept only at the key layers [0, 5, 10, 15, 20, 25, 30]" in text
    csv_header = _body(text).split("```csv\n", 1)[1].splitlines()[0]
    assert "top1" in csv_header and "top2" not in csv_header
    monkeypatch.setattr(llm_pack, "CHAR_BUDGET", 1_000)
    assert "Over budget" in llm_prompts.PACK.write_model(model, copy).read_text(encoding="utf-8")


def test_meta_prompt_appears_once_llm_evaluations_are_saved(run_dir: Path, tmp_path: Path) -> None:
    from layers_and_logits.reports.llm_prompts import PACK

    run = shutil.copytree(run_dir, tmp_path / "run")
    assert PACK.write_meta(run) is None and not (run / "llm-prompt-meta.md").exists()
    (run / "llm-evaluation-alpha-30l.md").write_text("Berlin appears at 75% depth.\n", encoding="utf-8")
    meta = PACK.write_meta(run).read_text(encoding="utf-8")
    assert "Berlin appears at 75% depth." in meta
    assert "### evaluation-cross-model.md" in meta and "### evaluation-alpha-30l.md" in meta
    template = (TEMPLATES / "prompt-meta-evaluation.txt").read_text(encoding="utf-8")
    assert _body(meta).startswith(template.rstrip())


# --- determinism and the command line ----------------------------------------------------


def test_regenerating_gives_identical_bytes(run_dir: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(run_dir, tmp_path / "copy")
    for path in list(copy.glob("*.md")) + list(copy.glob("*.png")):
        path.unlink()
    (copy / "llm-evaluation-cross-model.md").write_text("An LLM's answer.\n", encoding="utf-8")
    assert "llm-prompt-meta.md" in {p.name for p in write_reports(copy)}
    for path in sorted(run_dir.glob("*.md")) + sorted(run_dir.glob("*.png")):
        assert (copy / path.name).read_bytes() == path.read_bytes(), path.name


def _report(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(EXPERIMENT / "report.py"), *args], capture_output=True, text=True,
                          timeout=300, check=False)


@pytest.mark.parametrize("where", ["missing", "empty"])
def test_report_cli_on_a_bad_folder_says_one_line(tmp_path: Path, where: str) -> None:
    folder = tmp_path / "nothing-here"
    if where == "empty":
        folder.mkdir()
    result = _report(str(folder))
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_report_cli_regenerates_without_torch(tmp_path: Path) -> None:
    write_model(tmp_path, "small", 6, 500, facts=True)
    script = (f"import runpy, sys\nsys.argv = ['report.py', {str(tmp_path)!r}]\n"
              f"try:\n    runpy.run_path({str(EXPERIMENT / 'report.py')!r}, run_name='__main__')\n"
              "except SystemExit as exit_:\n    assert exit_.code == 0, exit_.code\n"
              "assert 'torch' not in sys.modules, 'report.py imported torch'\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert "evaluation-cross-model.md" in result.stdout
    assert "usage: report.py" in _report("--help").stdout


def test_report_cli_accepts_the_folder_given_to_run_out(tmp_path: Path) -> None:
    """``run.py --out DIR`` publishes DIR/run-latest; report.py DIR rebuilds the reports there."""
    run_dir = build_run(tmp_path / "out" / "run-latest")
    result = _report(str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert f"in {run_dir}:" in result.stdout
    assert (run_dir / "evaluation-cross-model.md").is_file()
    assert not (tmp_path / "out" / "evaluation-cross-model.md").exists()


def test_report_cli_refuses_a_newer_schema_in_one_line(tmp_path: Path) -> None:
    write_model(tmp_path, "future", 6, 500, facts=False)
    path = artefact_path(tmp_path, "future", "json")
    doc = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**doc, "schema_version": 99}), encoding="utf-8")
    result = _report(str(tmp_path))
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "schema_version 99, newer than the 1" in result.stderr and "Traceback" not in result.stderr


def test_consistency_at_the_limit_fails_in_the_reports() -> None:
    """The reports use the run's rule (layers_core.lens.consistency): kl_bits < 1e-3, strictly."""
    assert consistency_passed({"kl_bits": 9.99e-4, "top1_agree": True})
    assert not consistency_passed({"kl_bits": 1e-3, "top1_agree": True})
    assert not consistency_passed({"kl_bits": 0.0, "top1_agree": False})
    assert not consistency_passed({"kl_bits": None, "top1_agree": True}) and not consistency_passed(None)


def test_pasted_prompts_write_tilde_for_the_home_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Local paths under the home folder leak the user name: every llm-prompt-*.md has ~, the artefacts keep them."""
    home = tmp_path / "home" / "zqx-user"
    monkeypatch.setenv("HOME", str(home))
    run = tmp_path / "run"
    build_run(run)
    cache = f"{home}/.cache/tinycave/gguf/abc/float32"
    for name in OK_MODELS:
        path = artefact_path(run, name, "json")
        doc = json.loads(path.read_text(encoding="utf-8"))
        doc["provenance"]["load"] = {"kind": "gguf", "gguf_path": f"{home}/models/{name}.gguf", "cache_entry": cache}
        path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    (run / "llm-evaluation-cross-model.md").write_text(f"Loaded from {home}/models.\n", encoding="utf-8")
    written = write_reports(run)
    prompts = [p for p in written if p.name.startswith("llm-prompt-")]
    assert {p.name for p in prompts} == {"llm-prompt-alpha-30l.md", "llm-prompt-beta-18l.md",
                                         "llm-prompt-cross-model.md", "llm-prompt-meta.md"}
    for path in prompts:
        text = path.read_text(encoding="utf-8")
        assert str(home) not in text and "zqx-user" not in text, path.name
        assert "~/.cache/tinycave/gguf/abc/float32" in text, path.name
        assert f"{len(_body(text)):,} characters" in text  # the size is that of what is pasted
    assert cache in artefact_path(run, "alpha-30l", "json").read_text(encoding="utf-8")
    assert cache in (run / "evaluation-alpha-30l.md").read_text(encoding="utf-8")  # a local report, not pasted


# --- a real 001 run on tiny random checkpoints ------------------------------------------


@pytest.mark.slow
def test_reports_of_a_real_001_run(tiny_checkpoints, tmp_path: Path) -> None:  # noqa: ANN001 - conftest fixture
    """run.py on two tiny real models (one with a final softcap) writes reports that match its artefacts."""
    models = [str(tiny_checkpoints("llama")), str(tiny_checkpoints("gemma2"))]
    result = subprocess.run([sys.executable, str(EXPERIMENT / "run.py"), "--models", *models, "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=600, check=False,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    run_dir = tmp_path / "run-latest"
    names = ["gemma2", "llama"]  # reports list models by name
    for name in names:
        check_heatmap_grid(run_dir, name)
        check_model_markdown(run_dir, name)
        check_facts_markdown(run_dir, name)
        assert (run_dir / f"llm-prompt-{name}.md").is_file()
    check_cross_model(run_dir, names)
    before = {p.name: p.read_bytes() for p in run_dir.glob("*.md")}
    write_reports(run_dir)
    assert {p.name: p.read_bytes() for p in run_dir.glob("*.md")} == before
