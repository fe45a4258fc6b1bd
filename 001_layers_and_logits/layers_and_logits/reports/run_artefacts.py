"""001's run folder as its reports read it: what the schema holds, and the accessors of 001's JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from layers_and_logits.artefact_schema import (
    CSV_KINDS,
    FACTS,
    LENS_KL,
    PURE_NEXT_TOKEN,
    RECORDS,
    SCHEMA_VERSION,
    TEXT_COLUMNS,
)
from layers_core.reports.run_reader import ModelArtefacts, ReportInputError, RunArtefacts, RunSchema, read_run
from layers_core.runs.artefacts import artefact_path

SCHEMA = RunSchema(
    run_script="001_layers_and_logits/run.py",
    schema_version=SCHEMA_VERSION,
    csv_kinds=CSV_KINDS,
    required_keys=("diagnostics", "main_prompt_id", "prompts"),
    text_columns=TEXT_COLUMNS,
)


class LensModel(ModelArtefacts):
    """One model of a 001 run: its JSON summary, and its pure next-token, records and facts CSVs."""

    @property
    def pure(self) -> pd.DataFrame | None:
        """The pure next-token CSV (one row per prompt x layer), or None when absent."""
        return self.table(PURE_NEXT_TOKEN)

    @property
    def records(self) -> pd.DataFrame | None:
        """The all-positions records CSV, or None when absent."""
        return self.table(RECORDS)

    @property
    def facts(self) -> pd.DataFrame | None:
        """The fact-battery CSV, or None when absent."""
        return self.table(FACTS)

    @property
    def lens_kl(self) -> pd.DataFrame | None:
        """The lens-comparison CSV (one row per lens x layer; runs with ``--lens tuned/linear``), or None."""
        return self.table(LENS_KL)

    @property
    def lens_comparison(self) -> dict[str, Any] | None:
        """The JSON's ``lens_comparison`` (the lenses on held-out text and on the battery), or None."""
        entry = self.summary.get("lens_comparison")
        return entry if isinstance(entry, dict) else None

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
        json_name = artefact_path(Path(), self.name, "json").name
        raise ReportInputError(f"{json_name} has no prompt '{prompt_id}': {SCHEMA.rerun('this model')}.")


LensRun = RunArtefacts[LensModel]


def read_lens_run(run_dir: Path) -> LensRun:
    """Read a 001 run folder (see ``layers_core.reports.run_reader.read_run``)."""
    return read_run(run_dir, SCHEMA, LensModel)
