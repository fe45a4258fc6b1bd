"""The per-model loop every experiment runs: load -> analyse -> write -> free, one model at a time.

A model that cannot run (too large, not found, a prompt it cannot read) still
leaves ``output-<name>.json`` with ``status`` ("skipped" or "failed") and a
one-line ``reason``, and the other models go on. An unexpected failure of one
model (out of memory, a kernel missing on a device) keeps its traceback in
``error-<name>.log`` beside the artefacts. Memory is released before the next
model loads.

An experiment supplies one function, ``analyse(run: ModelRun) -> Analysis``:
it writes its own CSVs through ``run.artefact(kind)`` and returns the fields of
its JSON document; this module writes the JSON with the fields every experiment
shares (status, model, provenance).
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from layers_core.cli import status as cli_status
from layers_core.errors import ModelTooLargeError, TinycaveError
from layers_core.models.loading import LoadedModel, free_model, load_model
from layers_core.models.model_spec import ModelSpec, parse_model_spec
from layers_core.paths import REPO_ROOT
from layers_core.runs import artefacts
from layers_core.runs.arguments import LoadOptions
from layers_core.runs.provenance import run_provenance
from layers_core.runs.reproducibility import SEED, determinism_settings

OK, SKIPPED, FAILED = artefacts.OK, artefacts.SKIPPED, artefacts.FAILED


@dataclass(frozen=True)
class ModelTarget:
    """One model to run: what the user typed, parsed, and the unique name its artefacts carry."""

    spec: ModelSpec
    name: str


@dataclass
class ModelRun:
    """One loaded model under analysis: the one thing an experiment's analysis is handed.

    Attributes:
        loaded: The model, tokenizer, device plan and provenance (``loaded.parts`` has its modules).
        name: The model's artefact name (``output-<name>.json``).
        run_dir: The (staged) run folder the artefacts go into.
        options: How it was loaded (a second copy, e.g. a cpu reference, is loaded the same way).
    """

    loaded: LoadedModel
    name: str
    run_dir: Path
    options: LoadOptions

    def artefact(self, kind: str) -> Path:
        """Path of one of this model's artefacts ("json" or a CSV suffix such as "records")."""
        return artefacts.artefact_path(self.run_dir, self.name, kind)

    def status(self, line: str) -> None:
        """Print one progress line about this model on stderr (``<name>: <line>``)."""
        print(f"{self.name}: {line}", file=sys.stderr, flush=True)


@dataclass
class Analysis:
    """What an experiment's analysis of one model returns.

    Attributes:
        document: The experiment's JSON fields, written after status, model and provenance.
        provenance: Extra provenance fields of this model (e.g. ``fp32_unembed``).
        summary: Whatever the experiment's console summary needs.
        warnings: One-line warnings printed once the JSON is written.
    """

    document: dict[str, Any]
    provenance: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass
class ModelOutcome:
    """How one model's run ended, for the console summary and the exit status."""

    name: str
    status: str  # OK | SKIPPED | FAILED
    reason: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)


Analyse = Callable[[ModelRun], Analysis]


def resolve_models(texts: Sequence[str]) -> list[ModelTarget]:
    """Parse every model spec up front (a typo fails before any model loads); names made unique (-2, -3)."""
    resolved: list[ModelTarget] = []
    seen: dict[str, int] = {}
    for text in texts:
        spec = parse_model_spec(text)
        count = seen[spec.name] = seen.get(spec.name, 0) + 1
        resolved.append(ModelTarget(spec, spec.name if count == 1 else f"{spec.name}-{count}"))
    return resolved


def run_models(
    targets: Sequence[ModelTarget], run_dir: Path, analyse: Analyse, options: LoadOptions,
    schema_version: int, provenance: dict[str, Any] | None = None,
) -> list[ModelOutcome]:
    """Run ``analyse`` on each model in turn and write each model's JSON document.

    Args:
        targets: The models, from ``resolve_models``.
        run_dir: The staged run folder.
        analyse: The experiment's analysis of one loaded model.
        options: How to load the models.
        schema_version: The experiment's artefact schema version, written into every JSON.
        provenance: Run-wide provenance fields of the experiment (e.g. its lens mode).
    """
    return [
        run_one_model(target, run_dir, analyse, options, schema_version, provenance or {}) for target in targets
    ]


def run_one_model(
    target: ModelTarget, run_dir: Path, analyse: Analyse, options: LoadOptions,
    schema_version: int, provenance: dict[str, Any],
) -> ModelOutcome:
    """Load one model, analyse it, write its JSON, free it; never raises for a failure of this model alone."""
    started = time.time()
    header = _Header(target, run_dir, schema_version, {
        **run_provenance(REPO_ROOT, argv=sys.argv[1:]),
        "seed": SEED, "determinism": determinism_settings(), **provenance,
    })
    try:
        loaded = load_model(
            target.spec, device=options.device, dtype=options.dtype, trust_remote_code=options.trust_remote_code
        )
    except ModelTooLargeError as err:
        return header.not_run(SKIPPED, err.message)
    except TinycaveError as err:
        return header.not_run(FAILED, err.message)
    try:
        analysis = analyse(ModelRun(loaded, target.name, run_dir, options))
        return header.ran(loaded, analysis, started)
    except TinycaveError as err:
        return header.not_run(FAILED, err.message)
    except (RuntimeError, ValueError, OSError) as err:
        # An unexpected failure of this model (out of memory, a kernel missing on this device):
        # keep its traceback beside the artefacts, record it, and let the other models run.
        log = artefacts.artefact_path(run_dir, target.name, "error-log")
        log.write_text("".join(traceback.format_exception(err)), encoding="utf-8")
        first = str(err).splitlines()[0] if str(err) else ""
        return header.not_run(FAILED, f"{type(err).__name__}: {first} (details in {log.name})")
    finally:
        free_model(loaded)


def exit_status(outcomes: Sequence[ModelOutcome]) -> int:
    """0 when every model ran, 1 when one was skipped or failed (the others still completed)."""
    return 0 if all(outcome.status == OK for outcome in outcomes) else 1


@dataclass
class _Header:
    """The JSON fields every experiment's model document starts with."""

    target: ModelTarget
    run_dir: Path
    schema_version: int
    provenance: dict[str, Any]

    @property
    def model_entry(self) -> dict[str, Any]:
        return {"spec": self.target.spec.text, "name": self.target.name, "kind": self.target.spec.kind}

    def _write(self, document: dict[str, Any]) -> None:
        artefacts.write_json(artefacts.artefact_path(self.run_dir, self.target.name, "json"), document)

    def not_run(self, status: str, reason: str) -> ModelOutcome:
        cli_status(f"{self.target.name}: {status}: {reason}")
        self._write({
            "schema_version": self.schema_version, "status": status, "reason": reason,
            "model": self.model_entry, "provenance": self.provenance,
        })
        return ModelOutcome(name=self.target.name, status=status, reason=reason)

    def ran(self, loaded: LoadedModel, analysis: Analysis, started: float) -> ModelOutcome:
        plan = loaded.plan
        self.provenance.update({
            "device": plan.device, "dtype": plan.dtype, "device_reason": plan.reason,
            "device_warnings": list(plan.warnings), **analysis.provenance,
            "load": loaded.source, "seconds": round(time.time() - started, 3),
        })
        model = {
            **self.model_entry, "architecture": type(loaded.model).__name__,
            "model_type": loaded.model.config.model_type,
        }
        self._write({
            "schema_version": self.schema_version, "status": OK, "reason": None,
            "model": model, "provenance": self.provenance, **analysis.document,
        })
        for warning in analysis.warnings:
            cli_status(f"WARNING {self.target.name}: {warning}")
        return ModelOutcome(name=self.target.name, status=OK, summary=analysis.summary)
