"""An experiment's three LLM prompts from its templates: per model, across models, and the meta-evaluation.

The templates are ``prompts/<experiment>/prompt-{single-model,cross-model,meta}-evaluation.txt``;
the experiment supplies which artefacts a model's prompt inlines (``source_for``)
and how to trim them over the budget (``llm_pack``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layers_core.reports.llm_pack import VERBATIM, Source, TrimLevels, load_template, write_pack
from layers_core.reports.meta_prompt import write_meta_prompt
from layers_core.reports.run_reader import ModelArtefacts

SINGLE_TEMPLATE = "prompt-single-model-evaluation.txt"
CROSS_TEMPLATE = "prompt-cross-model-evaluation.txt"
META_TEMPLATE = "prompt-meta-evaluation.txt"
CROSS_SUBJECT = "cross-model"


@dataclass(frozen=True)
class PromptPack:
    """One experiment's three prompts: per model, across models, and the meta-evaluation of saved answers.

    Attributes:
        experiment: Its folder name; the templates are ``prompts/<experiment>/{SINGLE,CROSS,META}_TEMPLATE``.
        source_for: One ok model's ``Source`` (the JSON and the CSVs its templates inline).
        levels: Its trim levels, tried in order when over the budget.
    """

    experiment: str
    source_for: Callable[[Any, Path], Source]
    levels: TrimLevels = VERBATIM

    def write_model(self, model: ModelArtefacts, run_dir: Path) -> Path:
        """Write ``llm-prompt-<name>.md`` for one ok model."""
        return write_pack(run_dir, model.name, f"LLM prompt: single-model evaluation of {model.name}",
                          load_template(self.experiment, SINGLE_TEMPLATE), [self.source_for(model, run_dir)],
                          self.levels)

    def write_cross(self, models: Sequence[ModelArtefacts], run_dir: Path) -> Path | None:
        """Write ``llm-prompt-cross-model.md`` for the ok models; None when there are none."""
        if not models:
            return None
        names = ", ".join(m.name for m in models)
        return write_pack(run_dir, CROSS_SUBJECT, f"LLM prompt: cross-model evaluation of {names}",
                          load_template(self.experiment, CROSS_TEMPLATE),
                          [self.source_for(m, run_dir) for m in models], self.levels)

    def write_meta(self, run_dir: Path) -> Path | None:
        """Write ``llm-prompt-meta.md`` once LLM evaluations are saved in the folder; None before."""
        return write_meta_prompt(run_dir, load_template(self.experiment, META_TEMPLATE))
