"""002's run folder as its reports read it: the schema, and the accessors of 002's JSON and CSVs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from attention_and_attribution.artefact_schema import (
    ATTENTION,
    CSV_KINDS,
    HEAD_SUMMARY,
    LAYERS,
    SCHEMA_VERSION,
    TEXT_COLUMNS,
    attention_columns,
    head_summary_columns,
    layers_columns,
)
from layers_core.reports.run_reader import ModelArtefacts, ReportInputError, RunArtefacts, RunSchema, read_run
from layers_core.runs.artefacts import artefact_name

SCHEMA = RunSchema(
    run_script="002_attention_and_attribution/run.py",
    schema_version=SCHEMA_VERSION,
    csv_kinds=CSV_KINDS,
    required_keys=("diagnostics", "main_prompt_id", "prompts"),
    text_columns=TEXT_COLUMNS,
)

# The CSVs the plots and the markdown read, with the columns they need; a model with status ok must have them.
REQUIRED_CSVS: dict[str, Callable[[], list[str]]] = {
    HEAD_SUMMARY: head_summary_columns, LAYERS: layers_columns, ATTENTION: attention_columns}


class AttributionModel(ModelArtefacts):
    """One model of a 002 run: its JSON summary and its CSVs."""

    @property
    def diagnostics(self) -> dict[str, Any]:
        """Shapes and the sum check (``max_sum_error``...)."""
        return dict(self.summary.get("diagnostics") or {})

    @property
    def n_layers(self) -> int:
        """Number of decoder blocks L."""
        return int(self.diagnostics["n_layers"])

    @property
    def n_heads(self) -> int:
        """Attention heads per layer."""
        return int(self.diagnostics["n_heads"])

    @property
    def main_prompt_id(self) -> str:
        """The prompt the attention and layers plots are drawn for."""
        return str(self.summary["main_prompt_id"])

    @property
    def prompts(self) -> list[dict[str, Any]]:
        """The JSON entries of the prompts."""
        return list(self.summary.get("prompts") or [])

    @property
    def battery(self) -> dict[str, Any] | None:
        """The fact battery's entry, or None when it was not run."""
        return self.summary.get("battery") or None

    @property
    def ablation(self) -> dict[str, Any] | None:
        """The ablation summary, or None when it was not run."""
        return self.summary.get("ablation") or None

    @property
    def retrieval_heads(self) -> list[dict[str, Any]]:
        """The heads meeting the retrieval criterion (possibly none)."""
        return list(self.summary.get("retrieval_heads") or [])

    @property
    def layers_summary(self) -> list[dict[str, Any]]:
        """Per layer: medians and quartiles of the attention and MLP contributions."""
        return list(self.summary.get("layers_summary") or [])

    @property
    def summary_over(self) -> str:
        """What the head summary aggregates: ``battery`` or ``prompts``."""
        return str(self.summary.get("head_summary_over") or "prompts")

    def prompt(self, prompt_id: str) -> dict[str, Any]:
        """The JSON entry of one prompt, or of a battery fact (the main prompt of a battery-only run).

        Raises:
            ReportInputError: the JSON has no prompt or fact with that id.
        """
        for entry in self.prompts + list((self.battery or {}).get("facts") or []):
            if entry.get("prompt_id") == prompt_id:
                return entry
        raise ReportInputError(f"{artefact_name(self.name, 'json')} has no prompt '{prompt_id}': "
                               f"{SCHEMA.rerun('this model')}.")

    def csv(self, kind: str) -> pd.DataFrame:
        """A CSV the reports need (checked present by ``read_attribution_run``)."""
        table = self.table(kind)
        if table is None:
            raise ReportInputError(f"{artefact_name(self.name, kind)} is missing: {SCHEMA.rerun('this model')}.")
        return table

    @property
    def head_summary(self) -> pd.DataFrame:
        """``head-summary`` rows sorted by rank (1 = largest median dla_logit_diff)."""
        return self.csv(HEAD_SUMMARY).sort_values(["rank", "layer", "head"], kind="stable")

    def main_rows(self, kind: str) -> pd.DataFrame:
        """The rows of a per-prompt CSV (``layers``, ``attention``) for the main prompt."""
        table = self.csv(kind)
        return table[table["prompt_id"] == self.main_prompt_id]




def check_model(model: AttributionModel) -> None:
    """Refuse an ok model whose needed CSVs are missing or lack a column, or whose main prompt has no rows.

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
    model.prompt(model.main_prompt_id)
    for kind in (LAYERS,):  # the attention CSV holds prompts, not facts: its plot is left out when it has no rows
        if model.main_rows(kind).empty:
            raise ReportInputError(f"{artefact_name(model.name, kind)} has no rows for the main prompt "
                                   f"'{model.main_prompt_id}': {remedy}.")


AttributionRun = RunArtefacts[AttributionModel]


def read_attribution_run(run_dir: Path) -> AttributionRun:
    """Read a 002 run folder and check every ok model has what the reports draw from.

    Raises:
        ReportInputError: the folder is missing or empty, or an artefact is damaged, missing or too new.
    """
    run = read_run(run_dir, SCHEMA, AttributionModel)
    for model in run.ok_models:
        check_model(model)
    return run
