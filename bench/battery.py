"""The first facts of the capitals battery as 001 runs them (batched) against one prompt at a time."""

from __future__ import annotations

from collections.abc import Callable

from layers_and_logits.fact_battery import BATCH_SIZE, run_fact_battery
from layers_core.lens.lens import Lens
from layers_core.models.loading import LoadedModel
from layers_core.prompts.prompt_battery import load_fact_battery

BATTERY = "capitals"


def battery_cases(
    loaded: LoadedModel, lens: Lens, n_facts: int,
) -> tuple[dict[str, Callable[[], object]], dict]:
    """The two timed cases and a description of what they run.

    Args:
        loaded: The model and tokenizer.
        lens: The lens 001 would use.
        n_facts: How many facts of the battery (the first ones).
    """
    facts = load_fact_battery(BATTERY)[:n_facts]

    def batched() -> object:
        return run_fact_battery(loaded, lens, facts)

    def one_at_a_time() -> object:
        return run_fact_battery(loaded, lens, facts, batch_size=1)

    info = {"battery": BATTERY, "n_facts": len(facts), "batch_size": BATCH_SIZE}
    return {"battery_batched": batched, "battery_one_at_a_time": one_at_a_time}, info
