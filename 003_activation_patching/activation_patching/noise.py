"""Causal tracing's corruption (Meng et al. 2022, ROME): Gaussian noise added to the subject's embeddings.

The noise is ``NOISE_SCALE`` (3) times the standard deviation of the input
embeddings, drawn once with a fixed seed, and added at the subject's positions of
``blocks.0.hook_resid_pre`` (a ``Patch`` with ``mode="add"``): the embeddings as
block 0 receives them, so Gemma's ``sqrt(d_model)`` scale, Granite's embedding
multiplier and GPT-2's position embeddings are all inside it.

How the standard deviation is measured (``embedding_std``), as ROME's
``collect_embedding_std``: the values of ``blocks.0.hook_resid_pre`` at the
subject tokens of the given prompts (read with ``run_with_cache``, in left-padded
batches), pooled over every position and every ``d_model`` coordinate, one
unbiased standard deviation in float64.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from layers_core.hooks.activations import Patch, run_with_cache
from layers_core.models.architecture import ModelParts
from layers_core.prompts.batching import left_padded, length_batches

NOISE_POINT = "blocks.0.hook_resid_pre"
NOISE_SCALE = 3.0
NOISE_SEED = 0
BATCH_SIZE = 16


def embedding_std(
    model: nn.Module, parts: ModelParts, prompts: Sequence[Sequence[int]], positions: Sequence[Sequence[int]],
    pad_id: int, batch_size: int = BATCH_SIZE,
) -> float:
    """Standard deviation of ``blocks.0.hook_resid_pre`` at ``positions[i]`` of ``prompts[i]``, pooled (see module).

    Raises:
        ValueError: No prompt, lists of different lengths, or no position at all.
    """
    if len(prompts) != len(positions):
        raise ValueError(f"{len(prompts)} prompts but {len(positions)} lists of positions")
    if not any(positions):
        raise ValueError("embedding_std needs at least one position to measure")
    values: list[Tensor] = []
    for batch in length_batches(prompts, batch_size):
        input_ids, mask = left_padded([prompts[i] for i in batch], pad_id)
        resid = run_with_cache(model, parts, input_ids, [NOISE_POINT], attention_mask=mask, logits_at="last")[
            NOISE_POINT
        ]
        width = input_ids.shape[1]
        for row, index in enumerate(batch):
            offset = width - len(prompts[index])  # left padding shifts every position
            kept = [offset + position for position in positions[index]]
            values.append(resid[row, kept].to(torch.float64).flatten())
    return float(torch.cat(values).std())


def subject_noise(
    std: float, n_positions: int, d_model: int, seed: int = NOISE_SEED, scale: float = NOISE_SCALE
) -> Tensor:
    """``[n_positions, d_model]`` float32: ``scale * std`` times standard normal draws, seeded ``seed``."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    draws = torch.randn((n_positions, d_model), generator=generator, dtype=torch.float64)
    return (draws * (scale * std)).to(torch.float32)


def noise_patch(noise: Tensor, positions: Sequence[int]) -> Patch:
    """The corrupting write: ``noise[k]`` added at ``positions[k]`` of ``blocks.0.hook_resid_pre``, every row."""
    if noise.shape[0] != len(positions):
        raise ValueError(f"{noise.shape[0]} noise rows for {len(positions)} positions")
    return Patch(NOISE_POINT, noise, positions=list(positions), mode="add")
