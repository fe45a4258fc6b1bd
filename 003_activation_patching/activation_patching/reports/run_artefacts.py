"""003's run folder as its reports read it: the schema, and the accessors of 003's JSON and CSVs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from activation_patching.artefact_schema import (
    ATTRIBUTION,
    BATTERY,
    CSV_KINDS,
    PATCHING,
    SCHEMA_VERSION,
    TEXT_COLUMNS,
    attribution_columns,
    battery_columns,
    patching_columns,
)
from layers_core.reports.run_reader import ModelArtefacts, ReportInputError, RunArtefacts, RunSchema, read_run
from layers_core.runs.artefacts import artefact_name

SCHEMA = RunSchema(
    run_script="003_activation_patching/run.py",
    schema_version=SCHEMA_VERSION,
    csv_kinds=CSV_KINDS,
    required_keys=("diagnostics", "pairs", "full_sweeps", "battery", "attribution"),
    text_columns=TEXT_COLUMNS,
)

# The CSVs the plots and the markdown read, with the columns they need; a model with status ok must have them.
REQUIRED_CSVS: dict[str, Callable[[], list[str]]] = {
    PATCHING: patching_columns, BATTERY: battery_columns, ATTRIBUTION: attribution_columns}


class PatchingModel(ModelArtefacts):
    """One model of a 003 run: its JSON summary and its CSVs."""

    @property
    def diagnostics(self) -> dict[str, Any]:
        """Shapes (``n_layers``, ``n_heads``...), prompt lengths and rows per batch."""
        return dict(self.summary.get("diagnostics") or {})

    @property
    def n_layers(self) -> int:
        """Number of decoder blocks L (residual layers run 0..L)."""
        return int(self.diagnostics["n_layers"])

    @property
    def n_heads(self) -> int:
        """Attention heads per layer."""
        return int(self.diagnostics["n_heads"])

    @property
    def pairs(self) -> list[dict[str, Any]]:
        """The JSON entries of the pairs, in the run's order."""
        return list(self.summary.get("pairs") or [])

    @property
    def refused(self) -> list[dict[str, Any]]:
        """Facts that could neither be paired nor noised (``prompt_id``, ``reason``)."""
        return list(self.summary.get("refused") or [])

    @property
    def full_sweeps(self) -> list[str]:
        """The ids of the pairs swept over every site, in the run's order."""
        return [str(pair_id) for pair_id in self.summary.get("full_sweeps") or []]

    @property
    def first_full(self) -> str | None:
        """The first fully swept pair (the one the tracing and head plots draw), or None."""
        return self.full_sweeps[0] if self.full_sweeps else None

    @property
    def battery(self) -> dict[str, Any]:
        """The battery's summary: thresholds, counts, handover and per-corruption medians."""
        return dict(self.summary.get("battery") or {})

    @property
    def summaries(self) -> list[dict[str, Any]]:
        """One summary per corruption (``swap`` first), each with ``medians`` per residual layer."""
        return list(self.battery.get("summaries") or [])

    @property
    def headline(self) -> dict[str, Any] | None:
        """The summary the handover is read from (the first: swap pairs when there are any), or None."""
        return self.summaries[0] if self.summaries else None

    @property
    def agreement(self) -> list[dict[str, Any]]:
        """Attribution patching's agreement rows (``r_approx``, ``r_approx_ig`` per pair, direction, component)."""
        return list((self.summary.get("attribution") or {}).get("agreement") or [])

    @property
    def depth_comparison(self) -> dict[str, Any] | None:
        """001's and 002's measures on the same clean prompts, or None when this run did not measure them."""
        found = self.summary.get("depth_comparison")
        return dict(found) if isinstance(found, dict) else None

    def pair(self, pair_id: str) -> dict[str, Any]:
        """The JSON entry of one pair.

        Raises:
            ReportInputError: the JSON has no pair with that id.
        """
        for entry in self.pairs:
            if entry.get("pair_id") == pair_id:
                return entry
        raise ReportInputError(f"{artefact_name(self.name, 'json')} has no pair '{pair_id}': "
                               f"{SCHEMA.rerun('this model')}.")

    def csv(self, kind: str) -> pd.DataFrame:
        """A CSV the reports need (checked present by ``read_patching_run``)."""
        table = self.table(kind)
        if table is None:
            raise ReportInputError(f"{artefact_name(self.name, kind)} is missing: {SCHEMA.rerun('this model')}.")
        return table

    def pair_rows(self, kind: str, pair_id: str) -> pd.DataFrame:
        """The rows of one pair in a CSV."""
        table = self.csv(kind)
        return table[table["pair_id"] == pair_id]




def check_model(model: PatchingModel) -> None:
    """Refuse an ok model whose CSVs are missing or lack a column, or whose fully swept pairs have no rows.

    Raises:
        ReportInputError: one line naming the file and the remedy.
    """
    remedy = SCHEMA.rerun("this model")
    for kind, columns in REQUIRED_CSVS.items():
        table = model.csv(kind)
        missing = [c for c in columns() if c not in table.columns]
        if missing:
            raise ReportInputError(f"{artefact_name(model.name, kind)} lacks the column(s) {', '.join(missing)}: "
                                   f"{remedy}.")
    for pair_id in model.full_sweeps:
        model.pair(pair_id)
        if model.pair_rows(PATCHING, pair_id).empty:
            raise ReportInputError(f"{artefact_name(model.name, PATCHING)} has no rows for the fully swept pair "
                                   f"'{pair_id}': {remedy}.")


PatchingRun = RunArtefacts[PatchingModel]


def read_patching_run(run_dir: Path) -> PatchingRun:
    """Read a 003 run folder and check every ok model has what the reports draw from.

    Raises:
        ReportInputError: the folder is missing or empty, or an artefact is damaged, missing or too new.
    """
    run = read_run(run_dir, SCHEMA, PatchingModel)
    for model in run.ok_models:
        check_model(model)
    return run
