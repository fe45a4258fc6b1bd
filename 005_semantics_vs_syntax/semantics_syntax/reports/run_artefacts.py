"""005's run folder as its reports read it: the schema, the accessors of 005's JSON and CSVs, and their checks.

The JSON holds one entry per SAE (``saes``: layer, depth, source, the ablation
``targets`` and the group x group ``group_similarity`` per space), the groups and
topics in the dataset's order, the cloze counts (``cloze``, with the skipped items),
the run's ``settings``, the model's shape and the hypotheses table at full precision.
The CSVs hold the detail (specialists, overlaps, token classes, similarity, cloze,
ablation) and the hypotheses table the reports quote; it is checked to agree with the
JSON's, and the ablation CSV with the JSON's targets, so a folder mixed from two runs
is refused.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from layers_core.reports.formats import json_number
from layers_core.reports.run_reader import ModelArtefacts, ReportInputError, RunArtefacts, RunSchema, read_run
from layers_core.runs.artefacts import artefact_name
from semantics_syntax.artefact_schema import (
    ABLATION,
    COLUMNS,
    CSV_KINDS,
    HYPOTHESES,
    SCHEMA_VERSION,
    TEXT_COLUMNS,
)
from semantics_syntax.reports.claim_rows import Claim, claim_of, claims_of_table, held_problem, mismatch

SCHEMA = RunSchema(
    run_script="005_semantics_vs_syntax/run.py",
    schema_version=SCHEMA_VERSION,
    csv_kinds=CSV_KINDS,
    required_keys=("saes", "groups", "topics", "texts", "cloze", "settings", "hypotheses", "model_shape"),
    text_columns=TEXT_COLUMNS,
)
SPACES = ("sae", "residual")  # the two spaces of group_similarity, in the order drawn


class SemanticsModel(ModelArtefacts):
    """One model of a 005 run: its JSON summary and its CSVs."""

    @property
    def saes(self) -> list[dict[str, Any]]:
        """One entry per SAE, in the order the run wrote them (by residual layer)."""
        return list(self.summary.get("saes") or [])

    @property
    def layers(self) -> list[int]:
        """The SAEs' residual layers (checked integers by ``read_semantics_run``)."""
        return [int(entry["layer"]) for entry in self.saes]

    @property
    def groups(self) -> list[str]:
        """The ``topic/form`` groups in the dataset's order."""
        return [str(g) for g in self.summary.get("groups") or []]

    @property
    def topics(self) -> list[str]:
        """The topics in the dataset's order."""
        return [str(t) for t in self.summary.get("topics") or []]

    @property
    def settings(self) -> dict[str, Any]:
        """The run's settings (math and control topic, ablations per kind, permutations, seed)."""
        return dict(self.summary.get("settings") or {})

    @property
    def cloze(self) -> dict[str, Any]:
        """The cloze counts: ``items``, ``scored``, ``skipped`` ([item id, reason] pairs), ``domains``."""
        return dict(self.summary.get("cloze") or {})

    @property
    def skipped_items(self) -> list[tuple[str, str]]:
        """The cloze items this tokenizer could not score, with the reason."""
        return [(str(s[0]), str(s[1]) if len(s) > 1 else "") for s in self.cloze.get("skipped") or [] if s]

    @property
    def n_layers(self) -> int | None:
        """The model's number of blocks L (``model_shape.n_layers``)."""
        found = json_number((self.summary.get("model_shape") or {}).get("n_layers"))
        return None if found is None else int(found)

    @property
    def d_model(self) -> int | None:
        """The model's residual width (``model_shape.d_model``)."""
        found = json_number((self.summary.get("model_shape") or {}).get("d_model"))
        return None if found is None else int(found)

    @property
    def warnings(self) -> list[str]:
        """The run's warnings about this model."""
        return [str(w) for w in self.summary.get("warnings") or []]

    def rel_depth(self, layer: int) -> float | None:
        """The relative depth the JSON gives an SAE's layer."""
        for entry in self.saes:
            if entry.get("layer") == layer:
                return json_number(entry.get("rel_depth"))
        return None

    @cached_property
    def claims(self) -> list[Claim]:
        """The hypotheses CSV's rows (checked against the JSON by ``read_semantics_run``)."""
        try:
            return claims_of_table(self.csv(HYPOTHESES))
        except ValueError as err:
            raise _refuse(self, HYPOTHESES, f"has a damaged row ({err})") from err

    def claims_of(self, hypothesis: str) -> list[Claim]:
        """The rows of one hypothesis (``H1``, ``H2``, ``H3``, ``ablation``), in file order."""
        return [c for c in self.claims if c.hypothesis == hypothesis]

    def claim(self, measure: str, layer: int | None) -> Claim | None:
        """The row of one measure at one SAE (``layer`` None: a measure across SAEs), or None."""
        return next((c for c in self.claims if c.measure == measure and c.layer == layer), None)

    def csv(self, kind: str) -> pd.DataFrame:
        """A CSV the reports need (checked present by ``read_semantics_run``)."""
        table = self.table(kind)
        if table is None:
            raise ReportInputError(f"{artefact_name(self.name, kind)} is missing: {SCHEMA.rerun('this model')}.")
        return table


def _refuse(model: SemanticsModel, kind: str, problem: str) -> ReportInputError:
    return ReportInputError(f"{artefact_name(model.name, kind)} {problem}: {SCHEMA.rerun('this model')}.")


def _check_saes(model: SemanticsModel) -> None:
    if not model.saes or any(not isinstance(e.get("layer"), int) or isinstance(e.get("layer"), bool)
                             for e in model.saes):
        raise _refuse(model, "json", "has status ok but an empty 'saes' or an SAE without an integer layer")
    size = len(model.groups)
    for entry in model.saes:
        found = entry.get("group_similarity")
        for space in SPACES:
            grid = found.get(space) if isinstance(found, dict) else None
            if (not isinstance(grid, list) or len(grid) != size
                    or any(not isinstance(row, list) or len(row) != size for row in grid)
                    or any(json_number(v) is None for row in grid for v in row)):
                raise _refuse(model, "json", f"has no {size} x {size} group_similarity '{space}' at residual "
                                             f"{entry['layer']} (one row and column per group)")


def _check_layers(model: SemanticsModel) -> None:
    layers = set(model.layers)
    for kind in CSV_KINDS:
        found = {int(v) for v in model.csv(kind)["layer"].dropna()}
        if not found <= layers or (kind != HYPOTHESES and found != layers):
            raise _refuse(model, kind, f"does not hold the JSON's SAEs (residuals {sorted(layers)}, "
                                       f"found {sorted(found)})")


def _check_targets(model: SemanticsModel) -> None:
    table = model.csv(ABLATION)
    stored = {(int(e["layer"]), int(t["feature"]), str(t["kind"])) for e in model.saes
              for t in e.get("targets") or [] if isinstance(t, dict) and isinstance(t.get("feature"), int)}
    found = {(int(layer), int(feature), str(kind)) for layer, feature, kind
             in zip(table["layer"], table["feature"], table["kind"], strict=True)}
    if found != stored:
        raise _refuse(model, ABLATION, "does not hold the JSON's ablation targets")


def _check_claims(model: SemanticsModel) -> None:
    try:
        stored = [claim_of(row) for row in model.summary.get("hypotheses") or []]
    except (ValueError, AttributeError) as err:
        raise _refuse(model, "json", f"has a damaged 'hypotheses' ({err})") from err
    problem = mismatch(model.claims, stored)
    if problem:
        raise _refuse(model, HYPOTHESES, f"does not hold the JSON's hypotheses ({problem})")
    problem = held_problem(model.claims)
    if problem:
        raise _refuse(model, HYPOTHESES, f"has a held verdict the reports cannot state ({problem})")


def check_model(model: SemanticsModel) -> None:
    """Refuse an ok model whose CSVs are missing, lack a column, or disagree with its JSON.

    Raises:
        ReportInputError: one line naming the file and the remedy.
    """
    for kind, columns in COLUMNS.items():
        missing = [c for c in columns if c not in model.csv(kind).columns]
        if missing:
            raise _refuse(model, kind, f"lacks the column(s) {', '.join(missing)}")
    _check_saes(model)
    _check_layers(model)
    _check_targets(model)
    _check_claims(model)


SemanticsRun = RunArtefacts[SemanticsModel]


def read_semantics_run(run_dir: Path) -> SemanticsRun:
    """Read a 005 run folder and check every ok model has what the reports draw from.

    Raises:
        ReportInputError: the folder is missing or empty, or an artefact is damaged, missing or too new.
    """
    run = read_run(run_dir, SCHEMA, SemanticsModel)
    for model in run.ok_models:
        check_model(model)
    return run
