"""The 40-fact battery as 001 runs it (batched) against one prompt at a time."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from layers_core.answer_alignment import model_context_length
from layers_core.architecture import ModelParts
from layers_core.lens import Lens
from layers_core.loading import LoadedModel
from layers_core.prompt_battery import load_fact_battery

_EXPERIMENT = Path(__file__).resolve().parent.parent / "001_layers_and_logits"
if str(_EXPERIMENT) not in sys.path:
    sys.path.insert(0, str(_EXPERIMENT))

from lens_run.fact_battery import BATCH_SIZE, run_fact_battery  # noqa: E402

BATTERY = "capitals"


def battery_cases(
    loaded: LoadedModel, lens: Lens, parts: ModelParts, n_facts: int,
) -> tuple[dict[str, Callable[[], object]], dict]:
    """The two timed cases and a description of what they run.

    Args:
        loaded: The model and tokenizer.
        lens: The lens 001 would use.
        parts: ``model_parts`` of the model.
        n_facts: How many facts of the battery (the first ones).
    """
    facts = load_fact_battery(BATTERY)[:n_facts]
    context = model_context_length(loaded.model.config)

    def batched() -> object:
        return run_fact_battery(loaded.model, loaded.tokenizer, parts, lens, facts, context)

    def one_at_a_time() -> object:
        return run_fact_battery(loaded.model, loaded.tokenizer, parts, lens, facts, context, batch_size=1)

    info = {"battery": BATTERY, "n_facts": len(facts), "batch_size": BATCH_SIZE}
    return {"battery_batched": batched, "battery_one_at_a_time": one_at_a_time}, info
