"""Read a run folder back: every model's ``output-<name>.json`` and its CSVs.

Generic over experiments: a ``RunSchema`` says which CSVs an experiment writes,
which JSON keys a model that ran must have, and which schema version its
reports understand. An experiment with extra accessors (001: ``n_layers``,
``main_prompt_id``...) subclasses ``ModelArtefacts`` and passes the subclass to
``read_run``. File names come from ``layers_core.runs.artefacts``. Nothing here
imports torch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import pandas as pd

from layers_core.runs.artefacts import OK, ArtefactReadError, artefact_names, artefact_path, read_csv_artefact
from layers_core.runs.run_folder import LATEST


class ReportInputError(ArtefactReadError):
    """A run folder the reports cannot be built from (missing, empty, damaged, or of an unknown schema)."""


@dataclass(frozen=True)
class RunSchema:
    """What the reader needs to know about one experiment's artefacts.

    Attributes:
        run_script: The script that writes them, named in every remedy ("re-run <it> ...").
        schema_version: The newest ``schema_version`` this experiment's reports read.
        csv_kinds: The per-model CSVs (``output-<name>-<kind>.csv``) read for a model with status ok.
        required_keys: JSON keys a model with status ok must have.
        text_columns: CSV columns read as text beyond the default rule of ``read_csv_artefact``.
    """

    run_script: str
    schema_version: int
    csv_kinds: tuple[str, ...] = ()
    required_keys: tuple[str, ...] = ()
    text_columns: frozenset[str] = field(default_factory=frozenset)

    def rerun(self, what: str) -> str:
        """The remedy for a damaged artefact: ``re-run <run_script> for this model`` (or another object)."""
        return f"re-run {self.run_script} for {what}"


@dataclass(frozen=True)
class ModelArtefacts:
    """Everything a run wrote for one model.

    Attributes:
        name: The artefact name (``output-<name>.json``).
        summary: The parsed JSON document.
        tables: The CSVs found, by kind (a kind whose file is absent is left out; none unless status is ok).
    """

    name: str
    summary: dict[str, Any]
    tables: Mapping[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """The run status: ``ok``, ``skipped`` or ``failed``."""
        return str(self.summary.get("status", "failed"))

    @property
    def ok(self) -> bool:
        """True when the model ran and its artefacts are complete enough to report."""
        return self.status == OK

    @property
    def reason(self) -> str:
        """The one-line reason of a skipped or failed model ("" when none)."""
        return str(self.summary.get("reason") or "")

    def table(self, kind: str) -> pd.DataFrame | None:
        """The CSV of one kind, or None when the file is absent."""
        return self.tables.get(kind)


M = TypeVar("M", bound=ModelArtefacts)


@dataclass(frozen=True)
class RunArtefacts(Generic[M]):
    """All models of one run folder, sorted by name."""

    run_dir: Path
    models: list[M]

    @property
    def ok_models(self) -> list[M]:
        """Models with status ok."""
        return [m for m in self.models if m.ok]

    @property
    def other_models(self) -> list[M]:
        """Models that were skipped or failed."""
        return [m for m in self.models if not m.ok]


def resolve_run_dir(folder: Path) -> Path:
    """The run folder meant by ``folder``: itself, or its ``run-latest/`` when it holds no output-*.json.

    ``run.py --out DIR`` publishes ``DIR/run-latest``; either folder may be given to a report.
    """
    folder = Path(folder)
    latest = folder / LATEST
    if folder.is_dir() and not artefact_names(folder) and latest.is_dir():
        return latest
    return folder


def read_summary(path: Path, schema: RunSchema) -> dict[str, Any]:
    """Parse one ``output-<name>.json`` and check its ``schema_version``.

    Raises:
        ReportInputError: the file is not valid JSON, not a JSON object, has no integer
            ``schema_version``, or one newer than ``schema.schema_version``.
    """
    remedy = schema.rerun("this model")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ReportInputError(f"{path.name} is not valid JSON ({err}): {remedy}.") from err
    if not isinstance(data, dict):
        raise ReportInputError(f"{path.name} does not hold a JSON object: {remedy}.")
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ReportInputError(f"{path.name} has no valid schema_version ({version!r}), so its layout is unknown: "
                               f"{remedy}.")
    if version > schema.schema_version:
        raise ReportInputError(f"{path.name} has schema_version {version}, newer than the {schema.schema_version} "
                               f"these reports read: update tinycave (git pull), or {remedy} with this checkout.")
    return data


def read_table(run_dir: Path, name: str, kind: str, schema: RunSchema) -> pd.DataFrame | None:
    """One model's CSV of one kind, or None when the file is absent.

    Raises:
        ReportInputError: the file is damaged (see ``read_csv_artefact``).
    """
    path = artefact_path(run_dir, name, kind)
    if not path.is_file():
        return None
    try:
        return read_csv_artefact(path, schema.text_columns)
    except ArtefactReadError as err:
        raise ReportInputError(f"{err.message}: {schema.rerun('this model')}.") from err


def read_model(run_dir: Path, name: str, schema: RunSchema, model_type: type[M]) -> M:
    """Read the JSON and (for status ok) the CSVs of one model."""
    summary = read_summary(artefact_path(run_dir, name, "json"), schema)
    if summary.get("status") != OK:
        return model_type(name, summary)
    for key in schema.required_keys:
        if key not in summary:
            json_name = artefact_path(run_dir, name, "json").name
            raise ReportInputError(f"{json_name} has status ok but no '{key}': {schema.rerun('this model')}.")
    tables = {kind: table for kind in schema.csv_kinds
              if (table := read_table(run_dir, name, kind, schema)) is not None}
    return model_type(name, summary, tables)


def read_run(run_dir: Path, schema: RunSchema, model_type: type[M]) -> RunArtefacts[M]:
    """Read every model of a run folder.

    Args:
        run_dir: The folder holding ``output-<name>.json`` files.
        schema: The experiment's artefacts.
        model_type: ``ModelArtefacts`` or the experiment's subclass of it.

    Raises:
        ReportInputError: the folder does not exist, holds no output-*.json, or an artefact is damaged.
    """
    run_dir = Path(run_dir)
    hint = (f"run {schema.run_script} first, or pass the folder that holds its "
            f"{artefact_path(Path(), '<model>', 'json').name} files.")
    if not run_dir.is_dir():
        raise ReportInputError(f"run folder {run_dir} does not exist: {hint}")
    names = artefact_names(run_dir)
    if not names:
        raise ReportInputError(f"no {artefact_path(Path(), '*', 'json').name} in {run_dir}: {hint}")
    return RunArtefacts(run_dir, [read_model(run_dir, name, schema, model_type) for name in names])
