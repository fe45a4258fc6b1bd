"""Cloze items scored by the answer's log-probability, clean or with SAE features ablated.

An item is tokenized as prompt + answer; the prompt's own tokens must come first unchanged
(``layers_core.prompts.answer_alignment``), otherwise the item is skipped with the reason.
Its score is the total log-probability (nats) of every answer token given what precedes
it (teacher forcing): answers that a tokenizer splits (SmolLM2 writes " 12" as " ", "1",
"2") are scored whole. Its greedy answer is the argmax at each of those positions; an
ablation *flips* an item when any of them changes (with a one-token answer this is the
usual top-1 flip; with a split answer the first token may be only the joining space).

``ablation_scores`` removes features at one SAE's hook with the SAE's error term kept
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
from layers_core.hooks.block_reuse import reused_blocks
from layers_core.models.architecture import ModelParts
from layers_core.prompts.answer_alignment import align_answer, join_prompt_answer
from layers_core.prompts.batching import left_padded, length_batches, pad_token_id
from layers_core.sae.sae_points import residual_of_hook
from layers_core.sae.sae_splice import without_features
from semantics_syntax.datasets import ClozeItem


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
        prompt = list(tokenizer(item.prompt)["input_ids"])
        joined = list(tokenizer(join_prompt_answer(item.prompt, item.answer))["input_ids"])
        if joined[: len(prompt)] != prompt or len(joined) <= len(prompt):
            # Only a failed item needs the alignment's account of why (it tokenizes both again).
            skipped.append((item.item_id, align_answer(tokenizer, item.prompt, item.answer).reason
                            or "the answer adds no tokens"))
            continue
        encoded.append(EncodedItem(item, tuple(joined), len(prompt)))
    return encoded, skipped


def counted_mask(mask: Tensor) -> Tensor:
    """``[B, T]`` True at real tokens after each row's first (left padding)."""
    first = mask.long().argmax(1)
    positions = torch.arange(mask.shape[1], device=mask.device)[None, :]
    return mask.bool() & (positions > first[:, None])


@dataclass(frozen=True)
class _Batch:
    """One left-padded batch of items: which items, their ids and mask."""

    rows: list[int]
    input_ids: Tensor
    mask: Tensor


def _batches(tokenizer: Any, encoded: Sequence[EncodedItem], batch_size: int) -> list[_Batch]:
    ids = [list(e.ids) for e in encoded]
    pad = pad_token_id(tokenizer)
    return [_Batch(rows, *left_padded([ids[i] for i in rows], pad)) for rows in length_batches(ids, batch_size)]


def _score(batches: Sequence[_Batch], encoded: Sequence[EncodedItem], logits_of: Callable[[int, _Batch], Tensor],
           ) -> ItemScores:
    """Each item's answer log-probability and greedy answer from each batch's logits ``[B, T, V]``."""
    logprob = torch.zeros(len(encoded), dtype=torch.float64)
    greedy: list[tuple[int, ...]] = [()] * len(encoded)
    with torch.no_grad():
        for number, batch in enumerate(batches):
            logits = logits_of(number, batch)
            width = batch.input_ids.shape[1]
            for slot, index in enumerate(batch.rows):
                item = encoded[index]
                start = width - len(item.ids) + item.prompt_length  # first answer position
                predicting = torch.arange(start - 1, width - 1)
                scores = torch.log_softmax(logits[slot, predicting].double(), -1)
                answer = torch.tensor(item.ids[item.prompt_length:])
                logprob[index] = scores.gather(1, answer[:, None]).sum()
                greedy[index] = tuple(int(t) for t in logits[slot, predicting].argmax(-1))
    return ItemScores(logprob, tuple(greedy))


def score_items(
    model: nn.Module, parts: ModelParts, tokenizer: Any, encoded: Sequence[EncodedItem], *, batch_size: int = 16,
) -> ItemScores:
    """Every item's clean score and greedy answer (module doc)."""
    return _score(_batches(tokenizer, encoded, batch_size), encoded,
                  lambda _, batch: run_with_patches(model, parts, batch.input_ids, (),
                                                    attention_mask=batch.mask).logits)


def ablation_scores(
    model: nn.Module, parts: ModelParts, tokenizer: Any, encoded: Sequence[EncodedItem], sae: Any,
    removals: Sequence[Sequence[int]], *, batch_size: int = 16,
) -> list[ItemScores]:
    """Every item's score with each set of ``removals`` removed alone at ``sae``'s hook (module doc).

    The clean residual at the hook is read once per batch (the forward stopped there);
    each removal then writes its edited residual there and runs only the blocks from
    the hook on (``layers_core.hooks.block_reuse``: the blocks before return the clean
    batch's output, which is what they would compute), so a removal costs the part of a
    forward pass after the SAE's layer.
    """
    hook = sae.cfg.metadata.hook_name
    start = residual_of_hook(hook, parts.n_layers)
    batches = _batches(tokenizer, encoded, batch_size)
    clean = [run_with_cache(model, parts, b.input_ids, [hook], attention_mask=b.mask, logits_at="none").cache[hook]
             for b in batches]
    keep = [counted_mask(b.mask).to(x.device)[..., None] for b, x in zip(batches, clean, strict=True)]

    def removed(features: Sequence[int]) -> Callable[[int, _Batch], Tensor]:
        def logits_of(number: int, batch: _Batch) -> Tensor:
            x = clean[number]
            value = torch.where(keep[number], without_features(sae, x, features), x)
            with reused_blocks(parts, [x] * min(start, parts.n_layers), min(start, parts.n_layers),
                               len(batch.rows)):
                return run_with_patches(model, parts, batch.input_ids, [Patch(hook, value)],
                                        attention_mask=batch.mask).logits

        return logits_of

    return [_score(batches, encoded, removed(features)) for features in removals]
