"""Experiment 001's own prompts: the Germany/Berlin battery run when no --prompt is given."""

from __future__ import annotations

from layers_core.prompts.prompt_battery import PromptCase

# A plain completion works on base and instruction-tuned models alike (a Q&A frame
# makes SmolLM2 answer with a newline first), so it is the case the headline numbers use.
MAIN_PROMPT_ID = "completion"

DEFAULT_BATTERY: tuple[PromptCase, ...] = (
    PromptCase("qa", "Question: What is the capital of Germany? Answer:", "Berlin", "qa"),
    PromptCase("completion", "The capital of Germany is", "Berlin", "completion"),
    PromptCase(
        "instruction",
        "Give the city name only, plain text. The capital of Germany is called simply",
        "Berlin",
        "instruction",
    ),
    PromptCase(
        "instruction_no_simply",
        "Give the city name only, plain text. The capital of Germany is called",
        "Berlin",
        "ablation",
    ),
    PromptCase("directional", "Berlin is the capital of", "Germany", "directional"),
    PromptCase("control", "The capital of France is", "Paris", "control"),
)
