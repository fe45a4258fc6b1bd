"""Experiment 003 end to end: the real CLI on tiny checkpoints and on the bundled SmolLM2.

Each run goes through ``003_activation_patching/run.py`` in a subprocess, as the
user runs it. Checked: every flag is explained; bad input is one line and exit
status 2 before any model loads; the schema's CSVs carry the issue's columns; the
unpatched baselines score exactly 0 (denoise) and 1 (noise); a site whose value is
the same in both prompts (the answer position's embedding) scores the baseline
within the batch's rounding; reruns are byte-identical.

The tiny tokenizer splits "France" and "Spain" into three tokens each after a bare
space, so "The capital of France is" and "The capital of Spain is" have equal
lengths (8), while "The capital of Germany is" (" Germany" is one token) has 5.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from activation_patching import artefact_schema as schema
from layers_core.runs.artefacts import artefact_path, read_csv_artefact
from tests.experiments.cli_runs import ROOT, load_json, run_script

RUN = ROOT / "003_activation_patching" / "run.py"
CUSTOM = ("--clean", "The capital of France is", "--corrupt", "The capital of Spain is",
          "--answer", "Berlin", "--corrupt-answer", "Germany")
ISSUE_PATCHING_COLUMNS = ["pair_id", "direction", "component", "layer", "head", "position", "token", "rel_depth",
                          "hook", "restoration"]
# Batched rows differ from a row alone in the last bits of the logits; over the tiny pair's gap (about 1 logit)
# that is far below this, and far above nothing.
BATCH_ROUNDING = 1e-4


def run_003(*args: str, timeout: int = 900, reports: bool = False):
    """Run experiment 003 with ``args`` (without the reports unless ``reports``) and capture its output."""
    return run_script(RUN, *args, *(() if reports else ("--no-reports",)), timeout=timeout)


def _table(run_dir: Path, name: str, kind: str) -> pd.DataFrame:
    return read_csv_artefact(artefact_path(run_dir, name, kind), schema.TEXT_COLUMNS)


def _assert_near(rows: pd.DataFrame, want: dict[str, float]) -> None:
    """One row per direction, each within ``BATCH_ROUNDING`` of ``want[direction]``."""
    got = dict(zip(rows.direction, rows.restoration, strict=True))
    assert got.keys() == want.keys() and all(abs(got[key] - want[key]) <= BATCH_ROUNDING for key in want), got


def check_schema(run_dir: Path, name: str) -> dict:
    """The JSON ran, every CSV kind exists with its columns, the unpatched baselines are exactly 0 and 1."""
    document = load_json(run_dir, name)
    assert document["status"] == "ok", document.get("reason")
    assert document["schema_version"] == schema.SCHEMA_VERSION
    columns = {schema.PATCHING: schema.patching_columns(), schema.BATTERY: schema.battery_columns(),
               schema.ATTRIBUTION: schema.attribution_columns()}
    for kind, expected in columns.items():
        assert list(_table(run_dir, name, kind).columns) == expected, kind
    assert schema.patching_columns()[: len(ISSUE_PATCHING_COLUMNS)] == ISSUE_PATCHING_COLUMNS
    full = [pair for pair in document["pairs"] if pair["full_sweep"]]
    assert [pair["pair_id"] for pair in full] == document["full_sweeps"]
    for pair in document["pairs"]:
        want = {"denoise": 0.0, "noise": 1.0} if pair["full_sweep"] else None
        assert pair["unpatched_restoration"] == want, pair["pair_id"]
    n_layers = document["diagnostics"]["n_layers"]
    battery = _table(run_dir, name, schema.BATTERY)
    assert len(battery) == len(document["pairs"]) * 2 * (n_layers + 1)
    return document


def test_help_explains_every_flag() -> None:
    result = run_script(RUN, "--help")
    assert result.returncode == 0
    for flag in ("--models", "--clean", "--corrupt", "--answer", "--corrupt-answer", "--facts", "--pairs",
                 "--device", "--dtype", "--out", "--no-reports"):
        assert flag in result.stdout, flag
    assert "causal-tracing heatmaps" in result.stdout  # the reports are described


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (CUSTOM[:6], "missing --corrupt-answer"),
        (("--clean", "  ", *CUSTOM[2:]), "--clean is empty"),
        (("--facts", "none"), "leaves nothing to patch"),
        ((*CUSTOM, "--facts", "capitals"), "--facts goes without a custom pair"),
        (("--pairs", "-1"), "expected 0 or more"),
        (("--facts", "nonsense"), "no fact battery named"),
    ],
)
def test_bad_input_is_one_line_and_leaves_no_run(args: tuple[str, ...], message: str, tmp_path: Path) -> None:
    result = run_003(*args, "--out", str(tmp_path))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run-latest").exists()


def test_a_custom_pair_of_unequal_length_fails_that_model_naming_both_lengths(tiny_checkpoints, tmp_path: Path) -> None:
    # Token lengths depend on each model's tokenizer, so this is decided per model, after it loads.
    folder = tiny_checkpoints("llama")
    result = run_003("--models", str(folder), "--clean", "The capital of Germany is", *CUSTOM[2:],
                     "--out", str(tmp_path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    document = load_json(tmp_path / "run-latest", folder.name)
    assert document["status"] == "failed"
    assert "is 5 tokens" in document["reason"] and "prompt 8" in document["reason"]


def test_tiny_custom_pair_writes_the_schema_and_scores_its_baselines(tiny_checkpoints, tmp_path: Path) -> None:
    folder = tiny_checkpoints("llama")
    result = run_003("--models", str(folder), *CUSTOM, "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "run-latest"
    document = check_schema(run_dir, folder.name)
    assert [pair["pair_id"] for pair in document["pairs"]] == ["custom"] and document["full_sweeps"] == ["custom"]
    assert document["pairs_source"] == "custom" and document["refused"] == [] and document["noise"] is None
    n_layers, n_heads = document["diagnostics"]["n_layers"], document["diagnostics"]["n_heads"]
    seq_len, answer = 8, 7
    patching = _table(run_dir, folder.name, schema.PATCHING)
    sites = (n_layers + 1) * seq_len + 2 * n_layers * seq_len + 2 * n_layers * n_heads
    assert len(patching) == 2 * sites
    assert set(patching.component) == {"resid_pre", "attn_out", "mlp_out", "head"}
    assert set(patching.direction) == {"denoise", "noise"}
    heads = patching[patching.component == "head"]
    assert heads["head"].notna().all() and patching[patching.component != "head"]["head"].isna().all()
    # " is" at the answer position is the same token in both prompts: patching its embedding changes nothing.
    same = patching[(patching.component == "resid_pre") & (patching.layer == 0) & (patching.position == answer)]
    _assert_near(same, {"denoise": 0.0, "noise": 1.0})
    final = patching[(patching.component == "resid_pre") & (patching.layer == n_layers) & (patching.position == answer)]
    _assert_near(final, {"denoise": 1.0, "noise": 0.0})
    assert final.hook.tolist() == [f"blocks.{n_layers - 1}.hook_resid_post"] * 2
    # Attribution patching beside every exact row: same keys, exact = the patched run's restoration.
    attribution = _table(run_dir, folder.name, schema.ATTRIBUTION)
    keys = ["direction", "component", "layer", "head", "position"]
    assert attribution[keys].equals(patching[keys]) and attribution.exact.equals(patching.restoration)
    assert attribution.approx.notna().all() and attribution.approx_ig.notna().all()
    # The final residual at the answer position: the metric is linear in it but for the final norm,
    # so both estimates land near the exact 1 (denoise) and 0 (noise), closer than the layer-0 residuals do.
    last = attribution[(attribution.component == "resid_pre") & (attribution.layer == n_layers)
                       & (attribution.position == answer)]
    assert (last.approx_ig - last.exact).abs().max() < 0.5
    agreement = document["attribution"]["agreement"]
    assert {row["component"] for row in agreement} == {"resid_pre", "attn_out", "mlp_out", "head", "all"}


@pytest.mark.slow
def test_tiny_battery_pairs_noises_refuses_and_reruns_byte_identical(tiny_checkpoints, tmp_path: Path) -> None:
    folder = tiny_checkpoints("llama")
    for _ in range(2):
        result = run_003("--models", str(folder), "--out", str(tmp_path))
        assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "run-latest"
    document = check_schema(run_dir, folder.name)
    corruptions = {pair["corruption"] for pair in document["pairs"]}
    assert corruptions == {"swap", "noise"} and document["pairs_source"] == "capitals"
    assert document["noise"]["scale"] == 3.0 and document["noise"]["embedding_std"] > 0
    assert len(document["pairs"]) + len(document["refused"]) == 65
    assert all("does not align" in entry["reason"] for entry in document["refused"])
    assert document["full_sweeps"] == [document["pairs"][0]["pair_id"]]
    assert set(_table(run_dir, folder.name, schema.PATCHING).pair_id) == set(document["full_sweeps"])
    summary = document["battery"]["summaries"][0]
    assert summary["corruption"] == "swap" and len(summary["medians"]) == document["diagnostics"]["n_layers"] + 1
    archived = [p for p in tmp_path.iterdir() if p.name.startswith("run-") and p.name != "run-latest"]
    assert len(archived) == 1
    for kind in schema.CSV_KINDS:
        first = artefact_path(archived[0], folder.name, kind).read_bytes()
        assert first == artefact_path(run_dir, folder.name, kind).read_bytes(), kind


@pytest.mark.slow
def test_smollm2_germany_vs_france_hands_over_at_layer_24(tinycave_cache, tmp_path: Path) -> None:
    # The default run (the 65-fact battery, one full sweep) takes about 4.5 minutes on one cpu thread (measured:
    # full sweep 49 s, the battery's cheap sweep 210 s); this is its custom-pair half, about a minute.
    result = run_003("--models", "smollm2-135m", "--clean", "The capital of Germany is", "--corrupt",
                     "The capital of France is", "--answer", "Berlin", "--corrupt-answer", "Paris",
                     "--out", str(tmp_path), reports=True)
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "run-latest"
    document = check_schema(run_dir, "smollm2-135m")
    # 001's and 002's measures on the same prompt: the norm lens ranks " Berlin" first only at the last layer
    # (001, NOTES.md), and the late attention blocks write most of Berlin − Paris.
    depths = document["depth_comparison"]
    assert depths["n_prompts"] == 1 and depths["first_rank1"]["median_layer"] == 30
    assert document["pairs"][0]["clean_first_rank1_layer"] == 30
    assert len(depths["dla_layers"]) == 30 and min(depths["top_attn_layers"]) >= 15
    for report in ("tracing", "heads", "battery", "attribution"):
        assert (run_dir / f"{report}-smollm2-135m.png").stat().st_size > 0, report
    evaluation = (run_dir / "evaluation-smollm2-135m.md").read_text(encoding="utf-8")
    assert "Where the fact lives" in evaluation and "0.800" in evaluation
    pair = document["pairs"][0]
    assert (pair["answer_token"], pair["corrupt_answer_token"]) == (" Berlin", " Paris") and pair["resolvable"]
    # Measured (NOTES.md, 003): the subject restores ~1 up to layer 23, the answer position from layer 24.
    assert document["battery"]["handover"]["denoise"] == {"layer": 24, "rel_depth": 0.8}
    patching = _table(run_dir, "smollm2-135m", schema.PATCHING)
    denoise = patching[patching.direction == "denoise"]
    head = denoise[(denoise.component == "head") & (denoise.layer == 23) & (denoise["head"] == 4)
                   & (denoise.position == pair["n_tokens"] - 1)]
    assert head.restoration.item() > 0.8  # measured 0.92: head 23.4 alone carries most of it
    last = denoise[(denoise.component == "resid_pre") & (denoise.layer == 30) & (denoise.position == 4)]
    assert abs(last.restoration.item() - 1.0) <= BATCH_ROUNDING
