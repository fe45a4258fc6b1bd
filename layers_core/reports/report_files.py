"""The report files every experiment writes beside its artefacts, and the list of models left out of them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from layers_core.reports.formats import fmt_text
from layers_core.reports.run_reader import ModelArtefacts


def evaluation_path(run_dir: Path, name: str) -> Path:
    """Where the evaluation markdown of a model goes: ``evaluation-<name>.md``."""
    return run_dir / f"evaluation-{name}.md"


def cross_model_path(run_dir: Path) -> Path:
    """Where the cross-model markdown goes: ``evaluation-cross-model.md``."""
    return run_dir / "evaluation-cross-model.md"


def not_included(models: Sequence[ModelArtefacts]) -> str:
    """One markdown line per skipped or failed model, with its reason."""
    if not models:
        return "None: every model in this folder ran."
    return "\n".join(f"- `{m.name}` ({fmt_text(m.status)}): {fmt_text(m.reason or 'no reason recorded')}"
                     for m in models)
