"""A causal check of the attribution ranking: mean-ablate the top-k heads, and as many random heads.

Each ablated head's output ``hook_z`` at the answer position is replaced by its
mean at the answer position over the prompts ablated (the battery's facts), so
the head still writes an average message, but not this prompt's. Everything
else runs as the model computes it, so what drops is the head's direct effect
plus whatever later layers at that position did with it. The control draws,
for each top head, a random head of the same layer that is not among the top
heads (any other head when its layer has none left), with each seed.

Clean and ablated logits come from the same code path (a patched pass with no
patch is the clean pass), so a no-op ablation drops exactly 0.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from layers_core.hooks.activations import Patch, run_with_patches
from layers_core.models.architecture import ModelParts
from layers_core.prompts.batching import left_padded, length_batches

KS: tuple[int, ...] = (1, 3, 5, 10)
SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4)
BATCH_SIZE = 16

HeadId = tuple[int, int]  # (layer, head)


@dataclass(frozen=True)
class AblationTarget:
    """One prompt to ablate on: its token ids, answer and foil tokens."""

    ids: list[int]
    answer_id: int
    foil_id: int


@dataclass(frozen=True)
class Outcome:
    """The model's logit difference (answer - foil) and top-1 token on one prompt."""

    logit_diff: float
    top1_id: int


def random_heads(top: Sequence[HeadId], n_layers: int, n_heads: int, seed: int) -> list[HeadId]:
    """One random head per top head, from its layer and outside ``top`` (any other head when the layer is used up).

    Raises:
        ValueError: The model has no head left to draw.
    """
    rng = random.Random(seed)
    taken = set(top)
    chosen: list[HeadId] = []
    for layer, _ in top:
        pool = [(layer, head) for head in range(n_heads) if (layer, head) not in taken]
        if not pool:
            pool = [(lay, head) for lay in range(n_layers) for head in range(n_heads) if (lay, head) not in taken]
        if not pool:
            raise ValueError(f"no head is left to draw beside the {len(top)} top heads")
        pick = rng.choice(pool)
        taken.add(pick)
        chosen.append(pick)
    return chosen


def head_means(z: Tensor) -> Tensor:
    """``[L, H, d_head]``: the mean of ``hook_z`` over prompts (``z``: ``[N, L, H, d_head]``), in float64."""
    return z.to(torch.float64).mean(0)


def ablate(
    model: nn.Module, parts: ModelParts, targets: Sequence[AblationTarget], heads: Sequence[HeadId], means: Tensor,
    pad_id: int, batch_size: int = BATCH_SIZE,
) -> list[Outcome]:
    """Each target's outcome with ``heads`` mean-ablated at the answer position (none: the clean run)."""
    patches = [
        Patch(f"blocks.{layer}.attn.hook_z", means[layer, head].to(torch.float32), positions=[-1], head=head)
        for layer, head in heads
    ]
    found: dict[int, Outcome] = {}
    for batch in length_batches([target.ids for target in targets], batch_size):
        input_ids, mask = left_padded([targets[i].ids for i in batch], pad_id)
        run = run_with_patches(model, parts, input_ids, patches, attention_mask=mask, logits_at="last")
        logits = run.logits[:, -1].to(torch.float64)
        for row, index in enumerate(batch):
            target = targets[index]
            diff = float(logits[row, target.answer_id] - logits[row, target.foil_id])
            found[index] = Outcome(diff, int(logits[row].argmax()))
    return [found[index] for index in range(len(targets))]
