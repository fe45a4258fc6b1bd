"""What the benchmark runs of experiment 002 for one model at one prompt length, and 002's battery.

Floor of one prompt's analysis (the least any implementation must do):
    eager_forward: one forward pass under eager attention, logits for the last
        position only, no hooks. Eager, because the pattern exists only there (SDPA
        never materialises it); the eager kernel computes every layer's full pattern
        whether or not it is returned, so this is the patterns' arithmetic with none
        of them kept. Returning them (``output_attentions=True``) keeps every layer's
        ``[H, T, T]`` alive, which 002 is written not to do, and costs the fresh
        memory (at 512 tokens smollm2's patterns are 270 MB): timed as an extra.
    head_products: every head's ``z`` at the answer position times its slice of
        ``W_O``: one batched matmul over all layers and heads, in the model's dtype,
        from ``z`` and ``W_O`` laid out once as ``[L*H, 1, d_head]`` and
        ``[L*H, d_head, d_model]``, so only the arithmetic counts.
002's work:
    analysis: ``measure_batch(model, parts, None, [item], pad_id)``: one hooked pass
        at the answer position, attention by role, the residual decomposition and the
        exact direct attribution of the answer and of answer minus foil (the model's
        top wrong token); no lens.
Extras, to show where time goes:
    eager_forward_attentions: ``eager_forward`` returning every layer's weights
        (``output_attentions=True``), the floor a forward that returns them would give.
    pattern_pass: ``run_with_cache`` reading only the pattern points at the last
        position (the hook library's cost for the patterns alone).
    analysis_with_lens: ``measure_batch`` with the norm lens, as 002's run calls it.
Battery: ``measure_items`` on the first facts of the capitals battery, batched
against one prompt at a time, with the lens (as 002's run measures it).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from attention_and_attribution.answer_position_pass import BATCH_SIZE, measure_batch, measure_items
from attention_and_attribution.attention_roles import pattern_points
from attention_and_attribution.prompt_items import PromptItem, prepare_items
from attention_and_attribution.token_roles import token_roles
from bench.workloads import ANSWER, QUESTION, bench_prompt
from layers_core.errors import PromptError
from layers_core.hooks.activations import eager_attention, run_with_cache
from layers_core.lens.lens import Lens
from layers_core.models.architecture import ModelParts
from layers_core.models.loading import LoadedModel
from layers_core.prompts.answer_alignment import align_answer, model_context_length
from layers_core.prompts.batching import pad_token_id
from layers_core.prompts.prompt_battery import PromptCase, load_fact_battery

SUBJECT = "Germany"  # in QUESTION, not in the filler
BATTERY = "capitals"


def bench_item(tokenizer, n_tokens: int) -> PromptItem:
    """The bench prompt of ``n_tokens`` tokens (``bench_prompt``) as 002 reads it: roles and answer.

    The ids are ``bench_prompt``'s, not a re-encoding of their text (the filler is cut
    mid-word), so the subject is found by its token ids (``token_roles``' fallback).
    No foil is given: ``measure_batch`` takes the model's top wrong token from its own
    pass, as 002 does for a prompt without one (and any tokenizer can score that).
    """
    ids = bench_prompt(tokenizer, n_tokens).input_ids[0].tolist()
    text = tokenizer.decode(ids, skip_special_tokens=True)
    case = PromptCase("bench", text, ANSWER, "custom", subject=SUBJECT)
    alignment = align_answer(tokenizer, QUESTION, ANSWER)
    if alignment.answer_token_id is None:
        raise PromptError(f"the bench answer {ANSWER!r} cannot be scored after the question: {alignment.reason}")
    return PromptItem(case, ids, token_roles(tokenizer, text, ids, SUBJECT), alignment, None, is_fact=False)


class AttributionWorkloads:
    """Callables for 002's one-prompt cases and their floor, sharing one prepared prompt."""

    def __init__(self, loaded: LoadedModel, n_tokens: int) -> None:
        """Prepare the item, the lens, each layer's ``z`` at the answer position and ``W_O`` split by head.

        Args:
            loaded: The model, as 002 loads it.
            n_tokens: Prompt length.
        """
        self.model = loaded.model
        self.parts: ModelParts = loaded.parts
        self.n_tokens = n_tokens
        self.item = bench_item(loaded.tokenizer, n_tokens)
        self.pad_id = pad_token_id(loaded.tokenizer)
        self.lens = Lens(self.parts, mode="norm", fp32_unembed=loaded.plan.dtype != "float32")
        self.input_ids = torch.tensor([self.item.ids], dtype=torch.long, device=loaded.plan.device)
        self._keeps_logits = "logits_to_keep" in inspect.signature(self.model.forward).parameters
        self._z = _answer_z(self.model, self.parts, self.input_ids)
        self._w_o = torch.cat([_w_o_by_head(self.parts, layer) for layer in range(self.parts.n_layers)])

    def cases(self) -> dict[str, Callable[[], object]]:
        """The floor's two parts, the analysis and the extras, timed together in one group of rounds."""
        return {
            "eager_forward": self.eager_forward,
            "head_products": self.head_products,
            "eager_forward_attentions": self.eager_forward_attentions,
            "pattern_pass": self.pattern_pass,
            "analysis": self.analysis,
            "analysis_with_lens": self.analysis_with_lens,
        }

    @property
    def pattern_stack_bytes(self) -> int:
        """Bytes of every layer's full ``[H, T, T]`` pattern in the model's dtype (what 002 must not keep)."""
        itemsize = self._w_o.element_size()  # the attention weights are in the model's dtype, as W_O is
        return self.parts.n_layers * self.parts.n_heads * self.n_tokens**2 * itemsize

    def eager_forward(self) -> object:
        """The forward pass under eager attention (every pattern computed, none returned)."""
        return self._eager(output_attentions=False).logits

    def eager_forward_attentions(self) -> object:
        """The forward pass under eager attention, returning every layer's ``[1, H, T, T]`` weights."""
        return self._eager(output_attentions=True).attentions

    @torch.no_grad()
    def _eager(self, output_attentions: bool) -> Any:
        kwargs = {"logits_to_keep": 1} if self._keeps_logits else {}
        with eager_attention(self.model):
            return self.model(input_ids=self.input_ids, use_cache=False, output_attentions=output_attentions,
                              **kwargs)

    @torch.no_grad()
    def head_products(self) -> Tensor:
        """Every head's output at the answer position, ``z[l, h] @ W_O[l][:, h]^T``: ``[L*H, 1, d_model]``."""
        return torch.bmm(self._z, self._w_o)

    def pattern_pass(self) -> object:
        """``run_with_cache`` reading the pattern points alone, at the last position."""
        return run_with_cache(self.model, self.parts, self.input_ids, pattern_points(self.parts),
                              positions="last", logits_at="last")

    def analysis(self) -> object:
        """002's analysis of the one prompt, without the lens."""
        return measure_batch(self.model, self.parts, None, [self.item], self.pad_id)

    def analysis_with_lens(self) -> object:
        """002's analysis of the one prompt with the norm lens over the vocabulary."""
        return measure_batch(self.model, self.parts, self.lens, [self.item], self.pad_id)


def _answer_z(model: torch.nn.Module, parts: ModelParts, input_ids: Tensor) -> Tensor:
    """Every layer's ``hook_z`` at the last position, ``[L*H, 1, d_head]`` in the model's dtype."""
    points = [f"blocks.{layer}.attn.hook_z" for layer in range(parts.n_layers)]
    run = run_with_cache(model, parts, input_ids, points, positions="last", logits_at="last")
    return torch.cat([run[point][0, -1] for point in points])[:, None, :].contiguous()


def _w_o_by_head(parts: ModelParts, layer: int) -> Tensor:
    """Layer ``layer``'s output projection as a contiguous ``[H, d_head, d_model]`` copy: a plain batched matmul."""
    weight = parts.block_parts[layer].o_proj_weight().detach()
    return weight.reshape(parts.d_model, parts.n_heads, parts.d_head).permute(1, 2, 0).contiguous()


@dataclass(frozen=True)
class AttributionBattery:
    """002's battery pass over the first facts, batched and one prompt at a time."""

    loaded: LoadedModel
    lens: Lens
    items: list[PromptItem]

    def batched(self) -> object:
        """``measure_items`` with 002's batch size."""
        return measure_items(self.loaded.model, self.loaded.parts, self.lens, self.items,
                             pad_token_id(self.loaded.tokenizer), batch_size=BATCH_SIZE)

    def one_at_a_time(self) -> object:
        """``measure_items`` with ``batch_size=1``."""
        return measure_items(self.loaded.model, self.loaded.parts, self.lens, self.items,
                             pad_token_id(self.loaded.tokenizer), batch_size=1)


def attribution_battery_cases(
    loaded: LoadedModel, lens: Lens, n_facts: int,
) -> tuple[dict[str, Callable[[], object]], dict]:
    """The two timed cases of 002's battery and a description of what they run.

    Args:
        loaded: The model and tokenizer.
        lens: The lens 002 would use.
        n_facts: How many facts of the battery (the first ones; those without a scorable answer are dropped).
    """
    facts = load_fact_battery(BATTERY)[:n_facts]
    prepared = prepare_items(loaded.tokenizer, [], facts, model_context_length(loaded.model.config), None)
    battery = AttributionBattery(loaded, lens, [item for item in prepared if item.used])
    info = {"battery": BATTERY, "n_facts": len(facts), "n_used": len(battery.items), "batch_size": BATCH_SIZE,
            "lens": "norm lens included (as 002's run measures the battery)"}
    return {"battery_batched": battery.batched, "battery_one_at_a_time": battery.one_at_a_time}, info
