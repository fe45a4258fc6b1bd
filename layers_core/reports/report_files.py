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


def not_run_report(model: ModelArtefacts, title: str, generated_by: str, results: str) -> str:
    """The short evaluation markdown of a model that was skipped or failed: its status, reason and spec.

    Args:
        model: The model's artefacts (its JSON holds the status and the reason).
        title: The experiment's report title, e.g. "003 activation patching".
        generated_by: The experiment's provenance line.
        results: What exists for no such model, e.g. "patching results".
    """
    info = model.summary.get("model") or {}
    lines = [f"# {title}: {model.name}", generated_by,
             f"Status: **{fmt_text(model.status)}**. Reason: {fmt_text(model.reason or 'none recorded')}",
             f"Model spec: {fmt_text(info.get('spec', model.name))}. No {results} exist for it."]
    return "\n\n".join(lines) + "\n"
