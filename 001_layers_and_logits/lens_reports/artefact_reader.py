"""Read one 001 run folder: the JSON summary and CSVs of every model in it.

This is the only module that knows the artefact file names and how their CSVs
are parsed; every report asks it. Nothing here imports torch.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from layers_core.errors import TinycaveError

JSON_PREFIX = "output-"
# Columns that hold token text: read as strings so tokens like "nan" or "" survive.
TEXT_COLUMNS = ("prompt_id", "token", "copy_collapse")


class ReportInputError(TinycaveError):
    """A run folder the reports cannot be built from (missing, empty or damaged)."""


@dataclass(frozen=True)
class ModelArtefacts:
    """Everything 001 wrote for one model.

    Attributes:
        name: the artefact name (``output-<name>.json``).
        summary: the parsed JSON summary.
        pure: the pure next-token CSV, or None when the file is absent.
        records: the all-positions records CSV, or None when absent.
        facts: the fact-battery CSV, or None when absent.
    """

    name: str
    summary: dict[str, Any]
    pure: pd.DataFrame | None
    records: pd.DataFrame | None
    facts: pd.DataFrame | None

    @property
    def status(self) -> str:
        """The run status: ``ok``, ``skipped`` or ``failed``."""
        return str(self.summary.get("status", "failed"))

    @property
    def ok(self) -> bool:
        """True when the model ran and its artefacts are complete enough to report."""
        return self.status == "ok"

    @property
    def reason(self) -> str:
        """The one-line reason of a skipped or failed model ("" when none)."""
        return str(self.summary.get("reason") or "")

    @property
    def n_layers(self) -> int:
        """Number of decoder blocks L (lens layers run 0..L)."""
        return int(self.summary["diagnostics"]["n_layers"])

    @property
    def main_prompt_id(self) -> str:
        """The prompt the heatmap and cross-model plots are drawn for."""
        return str(self.summary["main_prompt_id"])

    def prompt(self, prompt_id: str) -> dict[str, Any]:
        """The JSON entry of one prompt.

        Raises:
            ReportInputError: the JSON has no prompt with that id.
        """
        for entry in self.summary.get("prompts", []):
            if entry.get("prompt_id") == prompt_id:
                return entry
        raise ReportInputError(
            f"output-{self.name}.json has no prompt '{prompt_id}': re-run 001 for this model."
        )


@dataclass(frozen=True)
class RunArtefacts:
    """All models of one run folder, sorted by name."""

    run_dir: Path
    models: list[ModelArtefacts]

    @property
    def ok_models(self) -> list[ModelArtefacts]:
        """Models with status ok."""
        return [m for m in self.models if m.ok]

    @property
    def other_models(self) -> list[ModelArtefacts]:
        """Models that were skipped or failed."""
        return [m for m in self.models if not m.ok]


def artefact_path(run_dir: Path, name: str, kind: str) -> Path:
    """Path of one artefact of a model.

    Args:
        run_dir: the run folder.
        name: the model's artefact name.
        kind: "json", or a CSV suffix: "pure-next-token", "records", "facts".
    """
    if kind == "json":
        return run_dir / f"{JSON_PREFIX}{name}.json"
    return run_dir / f"{JSON_PREFIX}{name}-{kind}.csv"


def read_csv(path: Path) -> pd.DataFrame:
    """Read an artefact CSV, keeping token text exactly as written.

    Token columns (``token``, ``top1``, ``top2``...) stay strings, even "nan" or
    empty; numeric columns turn empty cells into NaN.

    Raises:
        ReportInputError: the file cannot be parsed.
    """
    with path.open(encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle), [])
    text_cols = [c for c in header if c in TEXT_COLUMNS or (c.startswith("top") and c[3:].isdigit())]
    numeric = [c for c in header if c not in text_cols]
    try:
        return pd.read_csv(
            path,
            dtype={c: str for c in text_cols},
            keep_default_na=False,
            na_values={c: [""] for c in numeric},
            encoding="utf-8",
        )
    except (ValueError, pd.errors.ParserError) as err:
        raise ReportInputError(f"{path.name} is not a readable CSV ({err}): re-run 001 for this model.") from err


def read_summary(path: Path) -> dict[str, Any]:
    """Parse one ``output-<name>.json``.

    Raises:
        ReportInputError: the file is not valid JSON or not a JSON object.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ReportInputError(f"{path.name} is not valid JSON ({err}): re-run 001 for this model.") from err
    if not isinstance(data, dict):
        raise ReportInputError(f"{path.name} does not hold a JSON object: re-run 001 for this model.")
    return data


def _optional_csv(path: Path) -> pd.DataFrame | None:
    return read_csv(path) if path.is_file() else None


def model_names(run_dir: Path) -> list[str]:
    """Artefact names of the models in a run folder, sorted."""
    return sorted(p.name[len(JSON_PREFIX) : -len(".json")] for p in run_dir.glob(f"{JSON_PREFIX}*.json"))


def read_model(run_dir: Path, name: str) -> ModelArtefacts:
    """Read the JSON and CSVs of one model (CSVs only for status ok)."""
    summary = read_summary(artefact_path(run_dir, name, "json"))
    if summary.get("status") != "ok":
        return ModelArtefacts(name, summary, None, None, None)
    for key in ("diagnostics", "main_prompt_id", "prompts"):
        if key not in summary:
            raise ReportInputError(
                f"output-{name}.json has status ok but no '{key}': re-run 001 for this model."
            )
    return ModelArtefacts(
        name=name,
        summary=summary,
        pure=_optional_csv(artefact_path(run_dir, name, "pure-next-token")),
        records=_optional_csv(artefact_path(run_dir, name, "records")),
        facts=_optional_csv(artefact_path(run_dir, name, "facts")),
    )


def read_run(run_dir: Path) -> RunArtefacts:
    """Read every model of a run folder.

    Raises:
        ReportInputError: the folder does not exist or holds no output-*.json.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReportInputError(
            f"run folder {run_dir} does not exist: run 001_layers_and_logits/run.py first, "
            "or pass the folder that holds its output-<model>.json files."
        )
    names = model_names(run_dir)
    if not names:
        raise ReportInputError(
            f"no output-*.json in {run_dir}: run 001_layers_and_logits/run.py first, "
            "or pass the folder that holds its output-<model>.json files."
        )
    return RunArtefacts(run_dir, [read_model(run_dir, name) for name in names])
