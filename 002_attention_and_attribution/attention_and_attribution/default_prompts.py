"""Experiment 002's own prompts: the Germany/Berlin prompts of 001, each with its subject and foil.

The foil of each is the answer of its control: Berlin's is Paris (the control
prompt "The capital of France is"), Paris's is Berlin, and the directional
prompt's answer Germany is compared with France.
"""

from __future__ import annotations

from layers_core.prompts.prompt_battery import PromptCase

# A plain completion works on base and instruction-tuned models alike, so the headline numbers use it.
MAIN_PROMPT_ID = "completion"

DEFAULT_PROMPTS: tuple[PromptCase, ...] = (
    PromptCase("completion", "The capital of Germany is", "Berlin", "completion", subject="Germany", foil="Paris"),
    PromptCase(
        "qa", "Question: What is the capital of Germany? Answer:", "Berlin", "qa", subject="Germany", foil="Paris"
    ),
    PromptCase("directional", "Berlin is the capital of", "Germany", "directional", subject="Berlin", foil="France"),
    PromptCase("control", "The capital of France is", "Paris", "control", subject="France", foil="Berlin"),
)
