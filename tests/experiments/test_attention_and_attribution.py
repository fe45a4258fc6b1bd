"""Experiment 002 end to end: the real CLI on tiny checkpoints and on the bundled models.

Each run goes through ``002_attention_and_attribution/run.py`` in a subprocess, as
the user runs it. The invariants checked on the CSVs are the schema's promises:
the rows other than ``head`` rows add up to the model's own logit difference,
the head rows add up to their layer's ``attn`` row, attention rows sum to 1.
Tolerances: CSV values are rounded to 6 decimals (``CSV_ROUNDING`` per value
summed) on top of the issue's own criterion, 1e-4 relative to the model's value.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from attention_and_attribution import artefact_schema as schema
from layers_core.runs.artefacts import artefact_path, read_csv_artefact
from tests.experiments.cli_runs import CSV_ROUNDING, ROOT, load_json, run_script

RUN = ROOT / "002_attention_and_attribution" / "run.py"
SUM_REL_LIMIT = 1e-4
# Prompts whose answers are single clean tokens of the tiny test tokenizer.
TINY_PROMPTS = [
    {"id": "germany", "prompt": "The capital of Germany is", "answer": "Berlin", "subject": "Germany",
     "foil": "capital"},
    {"id": "berlin", "prompt": "Berlin is the capital of", "answer": "Germany", "subject": "Berlin"},
    {"id": "france", "prompt": "The capital of France is", "answer": "Berlin", "subject": "France"},
]


def run_002(*args: str, reports: bool = False, timeout: int = 900):
    """Run experiment 002 with ``args`` (without reports unless asked) and capture its output."""
    return run_script(RUN, *args, *([] if reports else ["--no-reports"]), timeout=timeout)


def _prompts_file(folder: Path) -> Path:
    path = folder / "prompts.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in TINY_PROMPTS), encoding="utf-8")
    return path


def _table(run_dir: Path, name: str, kind: str) -> pd.DataFrame:
    return read_csv_artefact(artefact_path(run_dir, name, kind), schema.TEXT_COLUMNS)


def _sum_limit(model_value: float, n_values: int) -> float:
    return n_values * CSV_ROUNDING + SUM_REL_LIMIT * max(1.0, abs(model_value))


def check_invariants(run_dir: Path, name: str) -> dict:
    """The schema's columns and promises on one model's artefacts; returns its JSON."""
    document = load_json(run_dir, name)
    assert document["status"] == "ok", document.get("reason")
    columns = {
        schema.HEADS: schema.heads_columns(), schema.COMPONENTS: schema.components_columns(),
        schema.LAYERS: schema.layers_columns(), schema.HEAD_SUMMARY: schema.head_summary_columns(),
        schema.ABLATION: schema.ablation_columns(), schema.ATTENTION: schema.attention_columns(),
    }
    kinds = [kind for kind in schema.CSV_KINDS if kind != schema.ABLATION or document["ablation"] is not None]
    tables = {kind: _table(run_dir, name, kind) for kind in kinds}
    assert document["ablation"] is not None or not artefact_path(run_dir, name, schema.ABLATION).exists()
    for kind, expected in columns.items():
        if kind not in tables:
            continue
        assert list(tables[kind].columns[: len(expected)]) == expected, kind
    diagnostics = document["diagnostics"]
    n_layers, n_heads = diagnostics["n_layers"], diagnostics["n_heads"]
    components = tables[schema.COMPONENTS]
    entries = [entry for entry in document["prompts"] + (document["battery"] or {"facts": []})["facts"]
               if entry["used"]]
    for entry in entries:
        rows = components[components.prompt_id == entry["prompt_id"]]
        summed = rows[rows.component != "head"]
        for column, model_key in (("dla_logit_diff", "model_logit_diff"), ("dla_answer", "model_logit_answer")):
            model_value = entry[model_key]
            assert abs(summed[column].sum() - model_value) <= _sum_limit(model_value, len(summed)), (entry, column)
        heads = rows[rows.component == "head"].groupby("layer").dla_logit_diff.sum()
        attn = rows[rows.component == "attn"].set_index("layer").dla_logit_diff
        assert (heads - attn).abs().max() <= n_heads * CSV_ROUNDING + SUM_REL_LIMIT * max(1.0, attn.abs().max())
        assert len(tables[schema.HEADS].query("prompt_id == @entry['prompt_id']")) == n_layers * n_heads
    attention = tables[schema.ATTENTION].groupby(["prompt_id", "layer", "head"]).weight
    assert (attention.sum() - 1).abs().max() <= attention.size().max() * CSV_ROUNDING
    heads = tables[schema.HEADS]
    roles = heads[list(schema.ATTN_COLUMNS)].sum(axis=1)
    assert (roles - 1).abs().max() <= len(schema.ATTN_COLUMNS) * CSV_ROUNDING
    assert diagnostics["max_sum_rel_error"] <= SUM_REL_LIMIT
    return document


def test_help_explains_every_flag() -> None:
    result = run_script(RUN, "--help")
    assert result.returncode == 0
    for flag in ("--models", "--prompt", "--answer", "--subject", "--foil", "--prompts", "--facts", "--device",
                 "--dtype", "--out", "--no-ablation", "--no-reports"):
        assert flag in result.stdout, flag


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--subject", "Germany"), "--subject goes with --prompt"),
        (("--prompt", "The capital of Germany is", "--answer", "Berlin", "--subject", "Italy"), "does not occur"),
        (("--prompt", "  ", "--answer", "Berlin"), "the prompt is empty"),
        (("--facts", "nonsense"), "no fact battery named"),
    ],
)
def test_bad_input_is_one_line_and_leaves_no_run(args: tuple[str, ...], message: str, tmp_path: Path) -> None:
    result = run_002(*args, "--out", str(tmp_path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run-latest").exists()


def test_tiny_llama_run_writes_the_schema_and_adds_up(tiny_checkpoints, tmp_path: Path) -> None:
    folder = tiny_checkpoints("llama")
    result = run_002("--models", str(folder), "--prompts", str(_prompts_file(tmp_path)), "--facts", "none",
                     "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    document = check_invariants(tmp_path / "run-latest", folder.name)
    sources = {entry["prompt_id"]: entry["foil_source"] for entry in document["prompts"]}
    assert sources == {"germany": "prompt", "berlin": "model's top wrong token", "france": "model's top wrong token"}
    assert document["head_summary_over"] == "prompts" and document["battery"] is None
    ablation = _table(tmp_path / "run-latest", folder.name, schema.ABLATION)
    battery = ablation[ablation.prompt_id == schema.BATTERY_ROW]
    assert sorted(set(battery.k)) == [1, 3, 5] and set(battery.selection) == {"top", "random"}
    assert len(ablation) == len(battery) * (len(TINY_PROMPTS) + 1)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["gemma2", "gpt2", "olmo2"])
def test_tiny_families_add_up(family: str, tiny_checkpoints, tmp_path: Path) -> None:
    folder = tiny_checkpoints(family)
    result = run_002("--models", str(folder), "--prompts", str(_prompts_file(tmp_path)), "--facts", "none",
                     "--no-ablation", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    document = load_json(tmp_path / "run-latest", folder.name)
    assert document["ablation"] is None
    softcap = document["diagnostics"]["final_logit_softcap"]
    assert (softcap is not None) == (family == "gemma2")


@pytest.mark.slow
def test_rerun_is_byte_identical_and_keeps_the_previous_run(tiny_checkpoints, tmp_path: Path) -> None:
    folder = tiny_checkpoints("mistral")
    prompts = _prompts_file(tmp_path)
    for _ in range(2):
        result = run_002("--models", str(folder), "--prompts", str(prompts), "--facts", "none", "--out", str(tmp_path))
        assert result.returncode == 0, result.stderr
    archived = [p for p in tmp_path.iterdir() if p.name.startswith("run-") and p.name != "run-latest"]
    assert len(archived) == 1
    for kind in schema.CSV_KINDS:
        first = artefact_path(archived[0], folder.name, kind).read_bytes()
        assert first == artefact_path(tmp_path / "run-latest", folder.name, kind).read_bytes(), kind


def test_a_foil_that_starts_like_the_answer_fails_that_model_with_the_reason(tiny_checkpoints, tmp_path: Path) -> None:
    folder = tiny_checkpoints("llama")
    result = run_002("--models", str(folder), "--prompt", "The capital of Germany is", "--answer", "Berlin",
                     "--foil", "Berlin", "--facts", "none", "--out", str(tmp_path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    document = load_json(tmp_path / "run-latest", folder.name)
    assert document["status"] == "failed" and "same token as the answer" in document["reason"]


@pytest.mark.slow
def test_smollm2_default_run_names_heads_that_hold_and_ablation_backs_them(tinycave_cache, tmp_path: Path) -> None:
    result = run_002("--models", "smollm2-135m", "--out", str(tmp_path), reports=True)
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "run-latest"
    document = check_invariants(run_dir, "smollm2-135m")
    main = next(p for p in document["prompts"] if p["prompt_id"] == document["main_prompt_id"])
    assert main["answer_token"] == " Berlin" and main["foil_token"] == " Paris" and main["final_top1_is_answer"]
    assert document["battery"]["n_used"] == 65
    # Measured: 23.4 leads on 59 of 65 facts' top 5; its ablation flips about half the facts' top-1.
    assert (23, 4) in {(h["layer"], h["head"]) for h in document["retrieval_heads"]}
    summary = document["ablation"]["summary"]
    for k in (1, 3, 5):
        top = next(s for s in summary if s["k"] == k and s["selection"] == "top")
        random = [s["mean_logit_diff_drop"] for s in summary if s["k"] == k and s["selection"] == "random"]
        assert top["mean_logit_diff_drop"] > max(random) + 1.0
    for name in ("evaluation-smollm2-135m.md", "head-grid-smollm2-135m.png", "evaluation-cross-model.md"):
        assert (run_dir / name).exists(), name


@pytest.mark.slow
def test_gemma3_adds_up_through_its_four_norms(tinycave_cache, tmp_path: Path) -> None:
    result = run_002("--models", "gemma3-270m", "--facts", "none", "--no-ablation", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    document = check_invariants(tmp_path / "run-latest", "gemma3-270m")
    assert document["diagnostics"]["n_kv_heads"] < document["diagnostics"]["n_heads"]
