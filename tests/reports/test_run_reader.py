"""Reading a run folder back with an experiment's schema: statuses, CSVs, schema versions, damaged files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from layers_core.errors import TinycaveError
from layers_core.reports.run_reader import (
    ModelArtefacts,
    ReportInputError,
    RunSchema,
    read_run,
    resolve_run_dir,
)
from layers_core.runs.artefacts import artefact_path, write_csv, write_json

SCHEMA = RunSchema(run_script="00x_probe/run.py", schema_version=2, csv_kinds=("scores", "notes"),
                   required_keys=("layers",), text_columns=frozenset({"label"}))


class ProbeModel(ModelArtefacts):
    """An experiment's own accessors over the generic artefacts."""

    @property
    def scores(self) -> pd.DataFrame | None:
        return self.table("scores")


def write_ok(run_dir: Path, name: str, **extra: Any) -> None:
    write_json(artefact_path(run_dir, name, "json"),
               {"schema_version": 2, "status": "ok", "reason": None, "layers": 4, **extra})
    write_csv(artefact_path(run_dir, name, "scores"),
              [{"prompt_id": "NA", "layer": 0, "label": "007", "score": 0.5, "top1": "null"},
               {"prompt_id": "NA", "layer": 1, "label": "", "score": None, "top1": "1"}],
              ["prompt_id", "layer", "label", "score", "top1"])


def test_reads_every_model_with_its_status_and_csvs(tmp_path: Path) -> None:
    write_ok(tmp_path, "b-model")
    write_json(artefact_path(tmp_path, "a-big", "json"),
               {"schema_version": 1, "status": "skipped", "reason": "needs 140 GB"})
    write_json(artefact_path(tmp_path, "c-broken", "json"), {"schema_version": 2, "status": "failed"})
    run = read_run(tmp_path, SCHEMA, ProbeModel)
    assert [m.name for m in run.models] == ["a-big", "b-model", "c-broken"]
    assert [m.name for m in run.ok_models] == ["b-model"]
    assert [(m.status, m.reason) for m in run.other_models] == [("skipped", "needs 140 GB"), ("failed", "")]
    model = run.ok_models[0]
    assert isinstance(model, ProbeModel) and set(model.tables) == {"scores"}  # no notes CSV: left out
    assert model.table("notes") is None and run.other_models[0].tables == {}
    scores = model.scores
    assert scores is not None
    assert scores["label"].tolist() == ["007", ""]  # declared text column: exact text
    assert scores["prompt_id"].tolist() == ["NA", "NA"] and scores["top1"].tolist() == ["null", "1"]
    assert scores["score"].tolist()[0] == 0.5 and pd.isna(scores["score"][1])


def test_read_run_refuses_a_damaged_json(tmp_path: Path) -> None:
    artefact_path(tmp_path, "x", "json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ReportInputError, match="output-x.json is not valid JSON"):
        read_run(tmp_path, SCHEMA, ModelArtefacts)


@pytest.mark.parametrize(("version", "message"), [
    (None, "output-m.json has no valid schema_version \\(None\\).*re-run 00x_probe/run.py for this model"),
    ("1", "has no valid schema_version \\('1'\\)"),
    (True, "has no valid schema_version \\(True\\)"),
    (3, "output-m.json has schema_version 3, newer than the 2 these reports read: update tinycave"),
])
def test_a_missing_or_newer_schema_version_is_refused(tmp_path: Path, version: object, message: str) -> None:
    doc = {"status": "failed", "reason": "x"} | ({} if version is None else {"schema_version": version})
    artefact_path(tmp_path, "m", "json").write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ReportInputError, match=message) as caught:
        read_run(tmp_path, SCHEMA, ModelArtefacts)
    assert "\n" not in caught.value.message


def test_an_older_schema_version_is_read(tmp_path: Path) -> None:
    write_json(artefact_path(tmp_path, "m", "json"), {"schema_version": 1, "status": "failed", "reason": "x"})
    assert read_run(tmp_path, SCHEMA, ModelArtefacts).models[0].reason == "x"


def test_an_ok_model_without_a_required_key_is_refused(tmp_path: Path) -> None:
    write_json(artefact_path(tmp_path, "m", "json"), {"schema_version": 2, "status": "ok"})
    with pytest.raises(ReportInputError, match="output-m.json has status ok but no 'layers'"):
        read_run(tmp_path, SCHEMA, ModelArtefacts)


@pytest.mark.parametrize("damage", ["cut short", "not a number", "empty"])
def test_a_damaged_csv_is_a_one_line_error(tmp_path: Path, damage: str) -> None:
    write_ok(tmp_path, "m")
    path = artefact_path(tmp_path, "m", "scores")
    text = path.read_text(encoding="utf-8")
    path.write_text({"cut short": text[:-3], "not a number": text.replace("0.500000", "0.5x"), "empty": ""}[damage],
                    encoding="utf-8")
    with pytest.raises(ReportInputError, match="output-m-scores.csv.*re-run 00x_probe/run.py for this model") as caught:
        read_run(tmp_path, SCHEMA, ModelArtefacts)
    assert isinstance(caught.value, TinycaveError) and "\n" not in caught.value.message


@pytest.mark.parametrize("where", ["missing", "empty"])
def test_a_folder_without_artefacts_is_refused(tmp_path: Path, where: str) -> None:
    folder = tmp_path / "run"
    if where == "empty":
        folder.mkdir()
    with pytest.raises(ReportInputError, match="run 00x_probe/run.py first, or pass the folder that holds its "
                                               "output-<model>.json files"):
        read_run(folder, SCHEMA, ModelArtefacts)


def test_the_folder_given_to_run_out_resolves_to_its_run_latest(tmp_path: Path) -> None:
    latest = tmp_path / "run-latest"
    latest.mkdir()
    assert resolve_run_dir(tmp_path) == latest
    write_ok(tmp_path, "here")  # a folder with artefacts of its own is the run folder itself
    assert resolve_run_dir(tmp_path) == tmp_path
    assert resolve_run_dir(latest) == latest and resolve_run_dir(tmp_path / "nope") == tmp_path / "nope"
