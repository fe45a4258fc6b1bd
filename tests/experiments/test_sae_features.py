"""004_sae_features/run.py end to end: tiny checkpoints with SAEs trained here, bad input, and the bundled SmolLM2."""

from __future__ import annotations

from pathlib import Path

import pytest

from layers_core.runs.artefacts import artefact_path, read_csv_artefact
from sae_features import artefact_schema as schema
from tests.experiments.cli_runs import ROOT, load_json, run_script

RUN = ROOT / "004_sae_features" / "run.py"
TINY = ("--sae-tokens", "16384", "--no-reports")  # 24 SAE steps: a schema check, not a good SAE
ISSUE_QUALITY_COLUMNS = ["sae", "layer", "hook", "d_sae", "l0", "explained_variance", "ce_loss_recovered",
                         "dead_frac", "dense_frac"]
ISSUE_SPECIALIST_COLUMNS = ["sae", "layer", "category", "feature", "score", "heldout_precision", "heldout_recall",
                            "heldout_auroc"]


def run_004(*args: str) -> object:
    return run_script(RUN, *args)


def _table(run_dir: Path, name: str, kind: str):
    return read_csv_artefact(artefact_path(run_dir, name, kind), schema.TEXT_COLUMNS)


def test_help_explains_every_flag() -> None:
    result = run_004("--help")
    assert result.returncode == 0
    for flag in ("--models", "--sae", "--layers", "--corpus", "--texts", "--sae-tokens", "--sae-k", "--sae-expansion",
                 "--quality-windows",
                 "--device", "--dtype", "--out", "--no-reports"):
        assert flag in result.stdout, flag
    assert "held-out" in result.stdout or "other half" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--sae", "gpt2-small-res-jbb/blocks.6.hook_resid_pre"), "closest: gpt2-small-res-jb"),
        (("--sae", "gpt2-small-res-jb/blocks.6.hook_resid_pr"), "closest: blocks.6.hook_resid_pre"),
        (("--sae", "./no-such-folder"), "no such folder"),
        (("--sae", "gpt2-small-res-jb/blocks.6.hook_resid_pre", "--layers", "3"), "add --sae train"),
        (("--texts", "no-such.jsonl"), "no such file"),
        (("--sae-tokens", "0"), "expected 1 or more"),
        (("--sae-tokens", "100"), "fewer than one batch"),
    ],
)
def test_bad_input_is_one_line_and_leaves_no_run(args: tuple[str, ...], message: str, tmp_path: Path) -> None:
    result = run_004(*args, "--out", str(tmp_path))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run-latest").exists()


@pytest.mark.slow
def test_tiny_run_writes_the_schema_and_reruns_byte_identical_from_the_cache(tiny_checkpoints, tmp_path: Path) -> None:
    folder = tiny_checkpoints("llama")
    first = run_004("--models", str(folder), *TINY, "--out", str(tmp_path))
    assert first.returncode == 0, first.stderr
    assert "training SAEs on residuals 1, 2" in first.stderr
    again = run_004("--models", str(folder), *TINY, "--out", str(tmp_path))
    assert again.returncode == 0, again.stderr
    assert "training SAEs" not in again.stderr  # the cache serves the second run
    run_dir = tmp_path / "run-latest"
    document = load_json(run_dir, folder.name)
    assert [entry["layer"] for entry in document["saes"]] == [1, 2]
    assert all(entry["source"]["cache"] == "hit" for entry in document["saes"])
    assert document["categories"] == {name: 20 for name in document["categories"]} and len(document["categories"]) == 7
    assert schema.sae_quality_columns()[:4] == ["sae", "layer", "rel_depth", "hook"]
    quality = _table(run_dir, folder.name, schema.SAE_QUALITY)
    assert set(ISSUE_QUALITY_COLUMNS) <= set(quality.columns) and list(quality.layer) == [1, 2]
    specialists = _table(run_dir, folder.name, schema.SPECIALISTS)
    assert set(ISSUE_SPECIALIST_COLUMNS) <= set(specialists.columns)
    assert specialists.heldout_auroc.between(0, 1).all()
    activity = _table(run_dir, folder.name, schema.TEXT_ACTIVITY)
    assert len(activity) == 2 * 140 and (activity.l0 <= 32 + 1e-6).all()
    weak = [int(row.layer) for row in quality.itertuples()
            if not (row.explained_variance >= 0.8 and row.ce_loss_recovered >= 0.9)]  # NaN is weak
    warned = [line for line in first.stderr.splitlines() if "is weak" in line]
    assert len(warned) == len(weak) and all(f"residual {layer} " in " ".join(warned) for layer in weak)
    archived = [p for p in tmp_path.iterdir() if p.name.startswith("run-") and p.name != "run-latest"]
    assert len(archived) == 1
    for kind in schema.CSV_KINDS:
        assert artefact_path(archived[0], folder.name, kind).read_bytes() == \
            artefact_path(run_dir, folder.name, kind).read_bytes(), kind


@pytest.mark.slow
def test_a_layer_the_model_lacks_fails_that_model_with_the_reason(tiny_checkpoints, tmp_path: Path) -> None:
    folder = tiny_checkpoints("llama")
    result = run_004("--models", str(folder), "--layers", "9", *TINY, "--out", str(tmp_path))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "residuals 0..3" in result.stderr
    assert load_json(tmp_path / "run-latest", folder.name)["status"] == "failed"
