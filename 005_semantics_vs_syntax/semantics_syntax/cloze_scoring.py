"""Cloze items scored by the answer's log-probability, clean or with SAE features ablated.

An item is tokenized as prompt + answer; the prompt's own tokens must come first unchanged
(``layers_core.prompts.answer_alignment``), otherwise the item is skipped with the reason.
Its score is the total log-probability (nats) of every answer token given what precedes
it (teacher forcing): answers that a tokenizer splits (SmolLM2 writes " 12" as " ", "1",
"2") are scored whole. Its greedy answer is the argmax at each of those positions; an
ablation *flips* an item when any of them changes (with a one-token answer this is the
usual top-1 flip; with a split answer the first token may be only the joining space).

``feature_ablation`` removes features at one SAE's hook with the SAE's error term kept
(``layers_core.sae.sae_splice.without_features``), at every counted position (real
tokens after the first; padding and the attention-sink position keep their values).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from layers_core.hooks.activations import Patch, run_with_cache, run_with_patches
from layers_core.models.architecture import ModelParts
from layers_core.prompts.answer_alignment import align_answer, join_prompt_answer
from layers_core.prompts.batching import left_padded, length_batches, pad_token_id
from layers_core.sae.sae_splice import without_features
from semantics_syntax.datasets import ClozeItem

Edit = Callable[[Tensor, Tensor], Sequence[Patch]]


@dataclass(frozen=True)
class EncodedItem:
    """An item's token ids (prompt + answer) and how many belong to the prompt."""

    item: ClozeItem
    ids: tuple[int, ...]
    prompt_length: int

    @property
    def answer_length(self) -> int:
        """How many answer tokens are scored."""
        return len(self.ids) - self.prompt_length


@dataclass(frozen=True)
class ItemScores:
    """Per item: the answer's total log-probability and the greedy token at each answer position."""

    logprob: Tensor  # [n] float64, nats
    greedy: tuple[tuple[int, ...], ...]


def encode_items(tokenizer: Any, items: Sequence[ClozeItem]) -> tuple[list[EncodedItem], list[tuple[str, str]]]:
    """``(encoded, skipped)``: the items that align, and ``(item id, reason)`` for the others."""
    encoded, skipped = [], []
    for item in items:
        alignment = align_answer(tokenizer, item.prompt, item.answer)
        joined = list(tokenizer(join_prompt_answer(item.prompt, item.answer))["input_ids"])
        prompt = list(alignment.prompt_ids)
        if joined[: len(prompt)] != prompt or len(joined) <= len(prompt):
            skipped.append((item.item_id, alignment.reason or "the answer adds no tokens"))
            continue
        encoded.append(EncodedItem(item, tuple(joined), len(prompt)))
    return encoded, skipped


def counted_mask(mask: Tensor) -> Tensor:
    """``[B, T]`` True at real tokens after each row's first (left padding)."""
    first = mask.long().argmax(1)
    positions = torch.arange(mask.shape[1], device=mask.device)[None, :]
    return mask.bool() & (positions > first[:, None])


def feature_ablation(model: nn.Module, parts: ModelParts, sae: Any, features: Sequence[int]) -> Edit:
    """An edit removing ``features`` at ``sae``'s hook with its error term kept (module doc)."""
    hook = sae.cfg.metadata.hook_name

    def edit(input_ids: Tensor, mask: Tensor) -> list[Patch]:
        x = run_with_cache(model, parts, input_ids, [hook], attention_mask=mask, logits_at="none").cache[hook]
        keep = counted_mask(mask).to(x.device)[..., None]
        return [Patch(hook, torch.where(keep, without_features(sae, x, features), x))]

    return edit


def score_items(
    model: nn.Module, parts: ModelParts, tokenizer: Any, encoded: Sequence[EncodedItem], *, batch_size: int = 16,
    edit: Edit | None = None,
) -> ItemScores:
    """Every item's score and greedy answer (module doc), with ``edit``'s patches applied when given."""
    ids = [list(e.ids) for e in encoded]
    logprob = torch.zeros(len(encoded), dtype=torch.float64)
    greedy: list[tuple[int, ...]] = [()] * len(encoded)
    pad = pad_token_id(tokenizer)
    with torch.no_grad():
        for rows in length_batches(ids, batch_size):
            input_ids, mask = left_padded([ids[i] for i in rows], pad)
            patches = edit(input_ids, mask) if edit is not None else ()
            logits = run_with_patches(model, parts, input_ids, patches, attention_mask=mask).logits
            width = input_ids.shape[1]
            for slot, index in enumerate(rows):
                item = encoded[index]
                start = width - len(item.ids) + item.prompt_length  # first answer position
                predicting = torch.arange(start - 1, width - 1)
                scores = torch.log_softmax(logits[slot, predicting].double(), -1)
                answer = torch.tensor(item.ids[item.prompt_length:])
                logprob[index] = scores.gather(1, answer[:, None]).sum()
                greedy[index] = tuple(int(t) for t in logits[slot, predicting].argmax(-1))
    return ItemScores(logprob, tuple(greedy))
