"""005_semantics_vs_syntax/run.py end to end on a tiny checkpoint and bad input (SmolLM2: its own file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from layers_core.runs.artefacts import artefact_path, read_csv_artefact
from semantics_syntax import artefact_schema as schema
from tests.experiments.cli_runs import ROOT, load_json, run_script

RUN = ROOT / "005_semantics_vs_syntax" / "run.py"
TINY = ("--sae-tokens", "16384", "--ablations", "2", "--permutations", "19", "--no-reports")
ISSUE_ABLATION_COLUMNS = ["sae", "layer", "feature", "kind", "items", "mean_delta_logprob", "flip_rate"]
ISSUE_HYPOTHESES_COLUMNS = ["hypothesis", "measure", "value", "ci_low", "ci_high", "p_value", "n", "seed_claim",
                            "held"]


def run_005(*args: str) -> object:
    return run_script(RUN, *args)


def test_help_explains_every_flag() -> None:
    result = run_005("--help")
    assert result.returncode == 0
    for flag in ("--models", "--sae", "--layers", "--corpus", "--pairs", "--cloze", "--math-topic", "--control-topic",
                 "--ablations", "--permutations", "--sae-tokens", "--device", "--out", "--no-reports"):
        assert flag in result.stdout, flag


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--pairs", "no-such.jsonl"), "no such file"),
        (("--cloze", "no-such.jsonl"), "no such file"),
        (("--math-topic", "emotion"), "must differ"),
        (("--math-topic", "cooking"), "'cooking' is not a topic of matched_pairs.jsonl"),
        (("--permutations", "5"), "expected 19 or more"),
        (("--sae", "gpt2-small-res-jb/blocks.6.hook_resid_pre", "--layers", "3"), "add --sae train"),
    ],
)
def test_bad_input_is_one_line_and_leaves_no_run(args: tuple[str, ...], message: str, tmp_path: Path) -> None:
    result = run_005(*args, "--out", str(tmp_path))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run-latest").exists()


@pytest.mark.slow
def test_tiny_run_writes_the_issue_columns_and_reruns_byte_identical(tiny_checkpoints, tmp_path: Path) -> None:
    folder = tiny_checkpoints("llama")
    first = run_005("--models", str(folder), *TINY, "--out", str(tmp_path))
    assert first.returncode == 0, first.stderr
    again = run_005("--models", str(folder), *TINY, "--out", str(tmp_path))
    assert again.returncode == 0, again.stderr
    run_dir = tmp_path / "run-latest"
    document = load_json(run_dir, folder.name)
    assert [entry["layer"] for entry in document["saes"]] == [1, 2] and document["texts"] >= 300
    ablation = read_csv_artefact(artefact_path(run_dir, folder.name, schema.ABLATION), schema.TEXT_COLUMNS)
    assert set(ISSUE_ABLATION_COLUMNS) <= set(ablation.columns)
    # 2 SAEs x (2 specialists + 2 random + 2 cross-domain) x 2 domains
    assert len(ablation) == 2 * 6 * 2 and set(ablation.kind) == {"specialist", "random", "cross_domain"}
    hypotheses = read_csv_artefact(artefact_path(run_dir, folder.name, schema.HYPOTHESES), schema.TEXT_COLUMNS)
    assert set(ISSUE_HYPOTHESES_COLUMNS) <= set(hypotheses.columns)
    assert (hypotheses.p_holm.dropna() >= hypotheses.p_value[hypotheses.p_holm.notna()] - 1e-12).all()
    archived = [p for p in tmp_path.iterdir() if p.name.startswith("run-") and p.name != "run-latest"]
    assert len(archived) == 1
    for kind in schema.CSV_KINDS:
        assert artefact_path(archived[0], folder.name, kind).read_bytes() == \
            artefact_path(run_dir, folder.name, kind).read_bytes(), kind
