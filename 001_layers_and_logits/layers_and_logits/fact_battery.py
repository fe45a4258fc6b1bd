"""The fact battery: many short prompts, batched, measured only at the answer position.

One prompt is an anecdote; where answers emerge across the 65 facts of the
capitals battery is a measurement. Prompts are left-padded into batches (positions come from the
attention mask), so the last position of every row is its answer position.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from layers_core import metrics
from layers_core.hooks.capture import capture_residuals
from layers_core.lens.layer_sweep import AnswerSweep, sweep_last_positions
from layers_core.lens.lens import Lens
from layers_core.models.loading import LoadedModel
from layers_core.prompts.answer_alignment import AnswerAlignment, align_answer, check_prompt, model_context_length
from layers_core.prompts.batching import left_padded, length_batches, pad_token_id
from layers_core.prompts.prompt_battery import PromptCase
from layers_core.prompts.token_text import TokenText

BATCH_SIZE = 16


@dataclass
class FactResult:
    """One fact's alignment and its per-layer measurements at the answer position."""

    case: PromptCase
    alignment: AnswerAlignment
    sweep: AnswerSweep


def run_fact_battery(
    loaded: LoadedModel, lens: Lens, cases: Sequence[PromptCase], batch_size: int = BATCH_SIZE,
    progress: Callable[[int], object] | None = None,
) -> list[FactResult]:
    """Measure every fact at every layer, in batches of prompts of similar length.

    Args:
        loaded: The model under analysis.
        lens: The lens to decode with.
        cases: The facts.
        batch_size: Prompts per forward pass.
        progress: Optional callable taking the number of facts just finished.
    """
    model, tokenizer, parts = loaded.model, loaded.tokenizer, loaded.parts
    context_length = model_context_length(model.config)
    prompt_ids = [check_prompt(tokenizer, case.prompt, context_length) for case in cases]
    alignments = [align_answer(tokenizer, case.prompt, case.answer) for case in cases]
    sweeps: dict[int, AnswerSweep] = {}
    pad_id = pad_token_id(tokenizer)
    for batch in length_batches(prompt_ids, batch_size):
        input_ids, mask = left_padded([prompt_ids[i] for i in batch], pad_id)
        resid, _ = capture_residuals(model, parts, input_ids, attention_mask=mask, positions="last")
        answer_ids = [alignments[i].answer_token_id for i in batch]
        for i, sweep in zip(batch, sweep_last_positions(lens, resid[:, :, 0], answer_ids), strict=True):
            sweeps[i] = sweep
        if progress is not None:
            progress(len(batch))
    return [FactResult(case, alignments[i], sweeps[i]) for i, case in enumerate(cases)]


def fact_rows(results: Sequence[FactResult], n_layers: int, text: TokenText) -> list[dict]:
    """One row per fact and layer (schema: facts CSV)."""
    rows = []
    for result in results:
        sweep = result.sweep
        for layer in range(n_layers + 1):
            rows.append({
                "prompt_id": result.case.prompt_id,
                "layer": layer,
                "rel_depth": metrics.rel_depth(layer, n_layers),
                "entropy_bits": sweep.entropy_bits[layer],
                "top1": text(sweep.top_ids[layer][0]),
                "p_top1": sweep.top_probs[layer][0],
                "p_answer": None if sweep.p_answer is None else sweep.p_answer[layer],
                "answer_rank": None if sweep.answer_rank is None else sweep.answer_rank[layer],
                "kl_to_final_bits": sweep.kl_to_final_bits[layer],
            })
    return rows


def facts_summary(battery: str | None, results: Sequence[FactResult], n_layers: int, text: TokenText) -> dict:
    """The JSON ``facts`` entry: per-milestone distribution of relative depth over the aligned facts."""
    per_fact = []
    depths: dict[str, list[float | None]] = {name: [] for name in metrics.MILESTONE_KEYS}
    for result in results:
        sweep = result.sweep
        found = metrics.milestones(sweep.answer_rank, sweep.p_answer, sweep.kl_to_final_bits, n_layers)
        entry: dict[str, Any] = {
            "prompt_id": result.case.prompt_id,
            "prompt": result.case.prompt,
            "answer": result.case.answer,
            "aligned": result.alignment.ok,
            "alignment_reason": result.alignment.reason,
            "final_top1": text(sweep.top_ids[n_layers][0]),
            "final_answer_rank": None if sweep.answer_rank is None else sweep.answer_rank[n_layers],
        }
        for name, milestone in found.items():
            entry[name] = {"layer": milestone.layer, "rel_depth": milestone.rel_depth}
            if result.alignment.ok or name == "first_kl_below_1_bit":
                depths[name].append(milestone.rel_depth)
        per_fact.append(entry)
    n_aligned = sum(result.alignment.ok for result in results)
    return {
        "battery": battery,
        "n_facts": len(results),
        "n_aligned": n_aligned,
        "n_final_top1_correct": sum(
            1 for result in results if result.sweep.answer_rank is not None and result.sweep.answer_rank[n_layers] == 1
        ),
        "milestones": {name: metrics.distribution_summary(values) for name, values in depths.items()},
        "per_fact": per_fact,
    }
