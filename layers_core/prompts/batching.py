"""Many prompts as few forward passes: left-padded batches of prompts of similar length.

Left padding puts every prompt's last token in the last column, so the answer
position of every row is ``[:, -1]``; the positions come from the attention mask
(``layers_core.hooks.capture.position_ids_from_mask``). Prompts are grouped by
length (less padding) in a fixed order, so reruns repeat exactly.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor


def pad_token_id(tokenizer: Any) -> int:
    """The id written into padded slots: the tokenizer's pad token, else its EOS, else 0."""
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0  # masked out by the attention mask, so any id serves


def left_padded(prompts: Sequence[Sequence[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """``(input_ids, attention_mask)`` of the prompts left-padded to the longest, ``[B, T]`` each."""
    width = max(len(ids) for ids in prompts)
    input_ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, ids in enumerate(prompts):
        input_ids[row, width - len(ids):] = torch.tensor(list(ids), dtype=torch.long)
        mask[row, width - len(ids):] = 1
    return input_ids, mask


def length_batches(prompts: Sequence[Sequence[int]], batch_size: int) -> Iterator[list[int]]:
    """Indices of ``prompts`` in batches of at most ``batch_size``, shortest first, ties by index."""
    order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i]), i))
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]
