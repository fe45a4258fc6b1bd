"""JSON/CSV artefacts (file names, exact bytes, pandas round trips, the one CSV reader, awkward token text) and
their provenance."""

from __future__ import annotations

import json
import math
import platform
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from layers_and_logits import artefact_schema
from layers_core.metrics import Milestone
from layers_core.runs import artefacts, provenance

COLUMNS = ["prompt_id", "layer", "top1", "p_top1", "answer_rank", "copy_collapse"]
AWKWARD_TOKENS = [" Berlin", "a,b", 'say "hi"', "line\nbreak", "\ttab", " "]


def rows() -> list[dict]:
    return [
        {
            "prompt_id": "completion",
            "layer": layer,
            "top1": token,
            "p_top1": 0.1234567 * layer,
            "answer_rank": None if layer == 1 else 900 - layer,
            "copy_collapse": layer % 2 == 0,
        }
        for layer, token in enumerate(AWKWARD_TOKENS)
    ]


def test_csv_round_trip_with_bare_read_csv(tmp_path):
    path = tmp_path / "out.csv"
    artefacts.write_csv(path, rows(), COLUMNS)
    frame = pd.read_csv(path)
    assert list(frame.columns) == COLUMNS
    assert frame["layer"].dtype == np.int64
    assert frame["p_top1"].dtype == np.float64
    assert frame["answer_rank"].dtype == np.float64  # an empty cell makes it float in a bare read
    assert frame["copy_collapse"].dtype == bool
    assert frame["top1"].tolist() == AWKWARD_TOKENS  # comma, quote, newline, tab, leading space survive
    assert math.isnan(frame["answer_rank"][1])
    assert frame["answer_rank"][2] == 898


def test_csv_text_is_six_decimals_and_whole_numbers_stay_whole(tmp_path):
    path = tmp_path / "out.csv"
    artefacts.write_csv(path, rows()[:3], COLUMNS)
    text = path.read_bytes().decode("utf-8")
    assert "\r" not in text and text.endswith("\n")
    lines = text.split("\n")
    assert lines[0] == ",".join(COLUMNS)
    assert lines[1] == "completion,0, Berlin,0.000000,900,True"
    assert lines[2] == "completion,1,\"a,b\",0.123457,,False"
    assert lines[3] == 'completion,2,"say ""hi""",0.246913,898,True'


def test_csv_is_byte_identical_for_identical_input(tmp_path):
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    artefacts.write_csv(first, rows(), COLUMNS)
    artefacts.write_csv(second, rows(), COLUMNS)
    assert first.read_bytes() == second.read_bytes()


def test_csv_nan_and_none_are_empty_cells_and_numpy_scalars_are_plain(tmp_path):
    path = tmp_path / "out.csv"
    data = [{"x": float("nan"), "y": np.float32(0.5), "z": np.int64(7)}, {"x": None, "y": None, "z": None}]
    artefacts.write_csv(path, data, ["x", "y", "z"])
    assert path.read_text(encoding="utf-8") == "x,y,z\n,0.500000,7\n,,\n"


def test_csv_rejects_unknown_keys(tmp_path):
    with pytest.raises(ValueError, match="p_topl"):
        artefacts.write_csv(tmp_path / "out.csv", [{"p_topl": 0.5}], ["p_top1"])


def test_csv_with_no_rows_keeps_header(tmp_path):
    path = tmp_path / "out.csv"
    artefacts.write_csv(path, [], artefact_schema.facts_columns())
    assert path.read_text() == ",".join(artefact_schema.facts_columns()) + "\n"


def test_read_csv_artefact_keeps_na_like_and_digit_tokens_as_text(tmp_path):
    path = tmp_path / "out.csv"
    data = [
        {"prompt_id": "NA", "layer": 0, "top1": "null", "p_top1": 0.5},
        {"prompt_id": "NA", "layer": 1, "top1": "1", "p_top1": None},
    ]
    artefacts.write_csv(path, data, ["prompt_id", "layer", "top1", "p_top1"])
    bare = pd.read_csv(path)
    assert bare["top1"].isna().any()  # the failure the helper exists for
    frame = artefacts.read_csv_artefact(path)
    assert frame["prompt_id"].tolist() == ["NA", "NA"]
    assert frame["top1"].tolist() == ["null", "1"]
    assert frame["layer"].dtype == np.int64
    assert frame["p_top1"].tolist()[0] == 0.5 and math.isnan(frame["p_top1"][1])


def test_artefact_file_names_are_spelled_once(tmp_path):
    assert artefacts.artefact_path(tmp_path, "smollm2-135m", "json") == tmp_path / "output-smollm2-135m.json"
    assert artefacts.artefact_path(tmp_path, "m", "pure-next-token") == tmp_path / "output-m-pure-next-token.csv"
    assert artefacts.artefact_path(tmp_path, "m", "error-log") == tmp_path / "error-m.log"
    for name in ("b", "a-2", "a"):
        artefacts.write_json(artefacts.artefact_path(tmp_path, name, "json"), {})
        artefacts.write_csv(artefacts.artefact_path(tmp_path, name, "records"), [], ["layer"])
    assert artefacts.artefact_names(tmp_path) == ["a", "a-2", "b"]


def test_read_csv_artefact_rule_for_text_columns(tmp_path):
    """Text: prompt_id, token, *_token, top<k>, and what the writer declares; every other column is parsed."""
    columns = ["prompt_id", "token", "answer_token", "top1", "p_top1", "fact_id", "copy_collapse", "answer_rank"]
    row = {"prompt_id": "007", "token": "nan", "answer_token": "", "top1": "NA", "p_top1": 0.5, "fact_id": "042",
           "copy_collapse": True, "answer_rank": 3}
    path = tmp_path / "out.csv"
    artefacts.write_csv(path, [row, {**row, "copy_collapse": False, "answer_rank": None}], columns)
    assert [c for c in columns if artefacts.is_text_column(c)] == ["prompt_id", "token", "answer_token", "top1"]
    frame = artefacts.read_csv_artefact(path, text_columns={"fact_id"})
    assert frame.iloc[0][["prompt_id", "token", "answer_token", "top1", "fact_id"]].tolist() == [
        "007", "nan", "", "NA", "042"]
    assert frame["copy_collapse"].dtype == bool and frame["copy_collapse"].tolist() == [True, False]
    assert frame["p_top1"].dtype == np.float64 and math.isnan(frame["answer_rank"][1])
    assert artefacts.read_csv_artefact(path)["fact_id"].tolist() == [42, 42]  # undeclared: a number


@pytest.mark.parametrize(("content", "message"), [
    ("", "out.csv is empty"),
    ("layer,p_top1\n0,0.5\n1,0.2", "out.csv ends in the middle of a row: the file was cut short"),
    ("layer,p_top1\n0,0.5\n1,0.2,9\n", "out.csv is not a readable CSV \\(Error tokenizing data"),
    ('layer,top1\n0,"open\n', "out.csv is not a readable CSV"),
    ("layer,p_top1\n0,0.5\n1,abc\n", "out.csv: column p_top1 holds 'abc', not a number"),
])
def test_a_damaged_csv_is_a_one_line_artefact_error(tmp_path, content, message):
    path = tmp_path / "out.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(artefacts.ArtefactReadError, match=message) as caught:
        artefacts.read_csv_artefact(path)
    assert "\n" not in caught.value.message


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (" Berlin", " Berlin"),
        ("\n", "\\n"),
        ("a\r\nb", "a\\r\\nb"),
        ("\t", "\\t"),
        ("\x00\x1b\x7f\x85", "\\x00\\x1b\\x7f\\x85"),
        ("\u2028", "\\u2028"),
        ("Größe", "Größe"),
    ],
)
def test_token_display(raw, shown):
    assert artefacts.token_display(raw) == shown
    assert len(artefacts.token_display(raw).splitlines()) <= 1


def test_write_json_deterministic_with_nan_as_null(tmp_path):
    obj = {
        "b": float("nan"),
        "a": [float("inf"), -float("inf"), 1.5, np.float32(0.25), np.int64(3)],
        "nested": {"milestone": Milestone(3, 0.1), "token": " Größe"},
        "tuple": (1, None),
    }
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    artefacts.write_json(first, obj)
    artefacts.write_json(second, obj)
    text = first.read_text(encoding="utf-8")
    assert first.read_bytes() == second.read_bytes()
    assert text.endswith("}\n") and "NaN" not in text and "Infinity" not in text
    assert " Größe" in text  # not \u-escaped
    assert text.startswith('{\n  "b": null,\n  "a": [')  # insertion order, indent 2
    assert json.loads(text) == {
        "b": None,
        "a": [None, None, 1.5, 0.25, 3],
        "nested": {"milestone": {"layer": 3, "rel_depth": 0.1}, "token": " Größe"},
        "tuple": [1, None],
    }


def test_schema_columns():
    pure = artefact_schema.pure_next_token_columns()
    assert pure[:13] == [
        "prompt_id", "layer", "rel_depth", "entropy_bits", "top1", "p_top1", "p_answer", "answer_rank",
        "kl_to_final_bits", "cosine_to_final", "copy_collapse", "top2", "p_top2",
    ]
    assert pure[-2:] == ["top20", "p_top20"] and len(pure) == 11 + 2 * 19
    assert artefact_schema.records_columns() == [
        "prompt_id", "layer", "pos", "token", "entropy_bits",
        "top1", "p_top1", "top2", "p_top2", "top3", "p_top3", "top4", "p_top4", "top5", "p_top5",
    ]
    assert artefact_schema.facts_columns() == [
        "prompt_id", "layer", "rel_depth", "entropy_bits", "top1", "p_top1", "p_answer", "answer_rank",
        "kl_to_final_bits",
    ]


# Provenance: what every artefact records about the run.

SENTINEL_TOKEN = "hf_SENTINELdoNotLeak0123456789"


def git(repo, *args):
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "-C", str(repo), *identity, *args], check=True, capture_output=True)


def test_package_versions():
    versions = provenance.package_versions()
    assert tuple(versions) == provenance.TRACKED_PACKAGES
    assert "transformer_lens" in versions and "huggingface_hub" in versions
    assert versions["numpy"] == np.__version__
    assert versions["pandas"] == pd.__version__
    missing = "surely-not-a-package-xyz"
    assert provenance.package_versions([missing]) == {missing: "not installed"}


def test_git_commit_and_dirty_flag(tmp_path):
    git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("one")
    git(tmp_path, "add", "a.txt")
    git(tmp_path, "commit", "-q", "-m", "first")
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True)
    assert provenance.git_commit(tmp_path) == head.stdout.strip()
    assert provenance.git_dirty(tmp_path) is False
    (tmp_path / "untracked.txt").write_text("x")
    assert provenance.git_dirty(tmp_path) is False
    (tmp_path / "a.txt").write_text("two")
    assert provenance.git_dirty(tmp_path) is True


def test_git_outside_a_repository_is_none(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert provenance.git_commit(tmp_path) is None
    assert provenance.git_dirty(tmp_path) is None
    assert provenance.git_commit(tmp_path / "missing") is None


def test_run_provenance_never_contains_the_hf_token(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", SENTINEL_TOKEN)
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", SENTINEL_TOKEN)
    repo_root = Path(__file__).resolve().parents[2]
    record = provenance.run_provenance(repo_root, argv=["--models", "smollm2-135m"])
    path = tmp_path / "provenance.json"
    artefacts.write_json(path, record)
    assert SENTINEL_TOKEN not in path.read_text(encoding="utf-8")
    assert list(record) == ["packages", "python", "platform", "git_commit", "git_dirty", "started_at", "argv"]
    assert record["python"] == platform.python_version()
    assert record["argv"] == ["--models", "smollm2-135m"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["started_at"])
    assert provenance.run_provenance(tmp_path, started_at="2026-11-21T07:00:00Z")["started_at"] == (
        "2026-11-21T07:00:00Z"
    )
