"""004's run folder as its reports read it: the schema, and the accessors of 004's JSON and CSVs.

The JSON holds one entry per SAE (``saes``: quality, activity, discovery, specialists,
cards) at full precision, and the rule constants the run used (``rules``); the reports
read those numbers from it. The features and
text-activity CSVs hold the detail the JSON summarises (per category and feature, per
text). The sae-quality and specialists CSVs repeat the JSON's numbers; they are only
checked to agree with it, so a folder mixed from two runs is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from layers_core.reports.formats import json_number
from layers_core.reports.run_reader import ModelArtefacts, ReportInputError, RunArtefacts, RunSchema, read_run
from layers_core.runs.artefacts import artefact_name
from sae_features.artefact_schema import (
    CSV_KINDS,
    FEATURES,
    SAE_QUALITY,
    SCHEMA_VERSION,
    SPECIALISTS,
    TEXT_ACTIVITY,
    TEXT_COLUMNS,
    features_columns,
    sae_quality_columns,
    specialists_columns,
    text_activity_columns,
)
from sae_features.reports.feature_card_data import CardError, FeatureCard, read_cards
from sae_features.reports.run_rules import SaeRules, read_rules

SCHEMA = RunSchema(
    run_script="004_sae_features/run.py",
    schema_version=SCHEMA_VERSION,
    csv_kinds=CSV_KINDS,
    required_keys=("saes", "categories", "specialist_rule", "depth", "quality_thresholds", "rules"),
    text_columns=TEXT_COLUMNS,
)

# Every CSV a model with status ok must have, with the columns the reports need.
REQUIRED_CSVS: dict[str, Callable[[], list[str]]] = {
    SAE_QUALITY: sae_quality_columns, FEATURES: features_columns, SPECIALISTS: specialists_columns,
    TEXT_ACTIVITY: text_activity_columns}


class SaeModel(ModelArtefacts):
    """One model of a 004 run: its JSON summary and its CSVs."""

    @property
    def saes(self) -> list[dict[str, Any]]:
        """One entry per SAE, sorted by residual layer as the run wrote them."""
        return list(self.summary.get("saes") or [])

    @property
    def categories(self) -> dict[str, int]:
        """Category -> number of texts, in the dataset's order."""
        return dict(self.summary.get("categories") or {})

    @property
    def depth(self) -> list[dict[str, Any]]:
        """Per SAE: ``layer``, ``rel_depth``, ``categories_with_specialist`` (that hold), ``categories``."""
        return list(self.summary.get("depth") or [])

    @property
    def thresholds(self) -> dict[str, float]:
        """The quality thresholds the run used (``explained_variance``, ``ce_loss_recovered``)."""
        return {key: float(value) for key, value in (self.summary.get("quality_thresholds") or {}).items()
                if json_number(value) is not None}

    @property
    def specialist_rule(self) -> str:
        """When a specialist holds, as the run states it."""
        return str(self.summary.get("specialist_rule") or "not recorded")

    @property
    def rules(self) -> SaeRules:
        """The rule constants the run used (its JSON's ``rules``; checked by ``read_sae_run``)."""
        try:
            return read_rules(self.summary.get("rules"))
        except ValueError as err:
            raise _refuse(self, "json", f"has a damaged 'rules' ({err})") from err

    @cached_property
    def cards(self) -> dict[int, list[FeatureCard]]:
        """Per SAE (by residual layer), its feature cards, read and checked (``feature_card_data``)."""
        try:
            return {int(entry["layer"]): read_cards(entry, list(self.categories)) for entry in self.saes}
        except CardError as err:
            raise _refuse(self, "json", f"has a damaged feature card ({err})") from err

    @property
    def n_layers(self) -> int | None:
        """The model's number of blocks L, recovered from an SAE's ``layer / rel_depth`` (None when no SAE says).

        The JSON records no ``n_layers``; ``rel_depth`` is ``layer / L`` rounded to 6 decimals.
        """
        for entry in self.saes:
            layer, depth = json_number(entry.get("layer")), json_number(entry.get("rel_depth"))
            if layer and depth:
                return round(layer / depth)
        return None

    def csv(self, kind: str) -> pd.DataFrame:
        """A CSV the reports need (checked present by ``read_sae_run``)."""
        table = self.table(kind)
        if table is None:
            raise ReportInputError(f"{artefact_name(self.name, kind)} is missing: {SCHEMA.rerun('this model')}.")
        return table

    def rows_of(self, kind: str, layer: int) -> pd.DataFrame:
        """The rows of one SAE (by residual layer) in a CSV."""
        table = self.csv(kind)
        return table[table["layer"] == layer]


def _refuse(model: SaeModel, kind: str, problem: str) -> ReportInputError:
    return ReportInputError(f"{artefact_name(model.name, kind)} {problem}: {SCHEMA.rerun('this model')}.")


def check_model(model: SaeModel) -> None:
    """Refuse an ok model whose CSVs are missing, lack a column, or disagree with its JSON's SAEs.

    Raises:
        ReportInputError: one line naming the file and the remedy.
    """
    for kind, columns in REQUIRED_CSVS.items():
        missing = [c for c in columns() if c not in model.csv(kind).columns]
        if missing:
            raise _refuse(model, kind, f"lacks the column(s) {', '.join(missing)}")
    if not model.saes or any(not isinstance(e.get("layer"), int) for e in model.saes):
        raise _refuse(model, "json", "has status ok but an empty 'saes' or an SAE without an integer layer")
    layers = [int(entry["layer"]) for entry in model.saes]
    _ = (model.rules, model.cards)  # read once here: a damaged field is refused before any report is written
    if [key[0] for key in _keys(model, SAE_QUALITY, ("layer",))] != layers:
        raise _refuse(model, SAE_QUALITY, f"does not hold the JSON's SAEs (residuals {layers})")
    stored = {(int(e["layer"]), str(c), int(s["feature"])) for e in model.saes
              for c, s in (e.get("specialists") or {}).items() if s and isinstance(s.get("feature"), int)}
    if set(_keys(model, SPECIALISTS, ("layer", "category", "feature"))) != stored:
        raise _refuse(model, SPECIALISTS, "does not hold the JSON's specialists")


def _keys(model: SaeModel, kind: str, columns: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """Each row's values of ``columns`` (numbers as ints), in file order; a value that is no integer is refused."""
    table = model.csv(kind)
    try:
        return [tuple(v if isinstance(v, str) else int(v) for v in row)
                for row in zip(*(table[c].tolist() for c in columns), strict=True)]
    except (TypeError, ValueError) as err:
        raise _refuse(model, kind, f"holds a key that is not an integer ({err})") from err


SaeRun = RunArtefacts[SaeModel]


def read_sae_run(run_dir: Path) -> SaeRun:
    """Read a 004 run folder and check every ok model has what the reports draw from.

    Raises:
        ReportInputError: the folder is missing or empty, or an artefact is damaged, missing or too new.
    """
    run = read_run(run_dir, SCHEMA, SaeModel)
    for model in run.ok_models:
        check_model(model)
    return run
