"""One forward pass per batch of prompts: everything 002 measures at the answer position.

The pass reads, at each row's last position only: every layer's attention pattern
row (eager attention for that pass), the points the residual decomposition needs
(``residual_components``) and the residual after every block (for the lens). From
it come the attention by role, the direct attribution of the answer's logit and of
answer minus foil, the lens's p(answer) per layer, and each head's ``hook_z`` (the
means the ablation writes back). A prompt without a foil gets the model's
top-ranked wrong token from this pass's logits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from attention_and_attribution.attention_roles import HeadAttention, answer_rows, attention_from_run, pattern_points
from attention_and_attribution.foils import top_wrong_foil
from attention_and_attribution.prompt_items import PromptItem
from layers_core.attribution.direct_attribution import (
    Attribution,
    answer_direction,
    attribute_components,
    logit_diff_direction,
)
from layers_core.attribution.residual_components import answer_position_points, components_from_run
from layers_core.hooks.activations import ActivationRun, run_with_cache
from layers_core.lens.layer_sweep import AnswerSweep, sweep_last_positions
from layers_core.lens.lens import Lens
from layers_core.models.architecture import ModelParts
from layers_core.prompts.batching import left_padded, length_batches

BATCH_SIZE = 16
DIRECTIONS = ("answer", "logit_diff")


@dataclass
class Measured:
    """What one pass measured for one prompt.

    Attributes:
        item: The prompt, its foil now chosen.
        attributions: ``"answer"`` and ``"logit_diff"`` -> the exact decomposition.
        heads: Per layer and head, the attention by role (``prompt_index`` is meaningless here).
        pattern_rows: ``[L, H, T]`` float64: the answer row of every pattern over the prompt's tokens.
        lens: The norm lens at the answer position after every block (L+1 entries, 0 = embedding),
            or None when no lens was given.
        z: ``[L, H, d_head]`` float32 on the cpu: every head's ``hook_z`` at the answer position.
        top1_id: The model's own top-1 token.
    """

    item: PromptItem
    attributions: dict[str, Attribution]
    heads: list[HeadAttention]
    pattern_rows: Tensor
    lens: AnswerSweep | None
    z: Tensor
    top1_id: int


def pass_points(parts: ModelParts) -> list[str]:
    """Every hook point the pass reads (each once)."""
    resid = [f"blocks.{layer}.hook_resid_post" for layer in range(parts.n_layers)]
    return list(dict.fromkeys([*pattern_points(parts), *answer_position_points(parts), *resid]))


def measure_items(
    model: nn.Module, parts: ModelParts, lens: Lens | None, items: Sequence[PromptItem], pad_id: int,
    batch_size: int = BATCH_SIZE, progress: Callable[[int], object] | None = None,
) -> list[Measured]:
    """Measure every item, in left-padded batches of similar length; returned in the items' order."""
    found: dict[int, Measured] = {}
    for batch in length_batches([item.ids for item in items], batch_size):
        for index, measured in zip(batch, measure_batch(model, parts, lens, [items[i] for i in batch], pad_id),
                                   strict=True):
            found[index] = measured
        if progress is not None:
            progress(len(batch))
    return [found[index] for index in range(len(items))]


def measure_batch(
    model: nn.Module, parts: ModelParts, lens: Lens | None, items: Sequence[PromptItem], pad_id: int
) -> list[Measured]:
    """Measure a batch of used items with one forward pass (and the lens over the vocabulary, when given)."""
    input_ids, mask = left_padded([item.ids for item in items], pad_id)
    run = run_with_cache(
        model, parts, input_ids, pass_points(parts), attention_mask=mask, positions="last", logits_at="last"
    )
    components = components_from_run(parts, run)
    ranked = components.logits.topk(2, dim=-1).indices.tolist()
    items = [
        item if item.foil is not None else replace(item, foil=top_wrong_foil(ranked[row], item.answer_id))
        for row, item in enumerate(items)
    ]
    answers = [item.answer_id for item in items]
    foils = [item.foil.token_id for item in items if item.foil is not None]
    directions = {"answer": answer_direction(parts, answers), "logit_diff": logit_diff_direction(parts, answers, foils)}
    attributions = attribute_components(parts, components, directions)
    heads = attention_from_run(parts, run, mask, [item.roles for item in items])
    per_row = len(heads) // len(items)
    patterns = torch.stack([answer_rows(run, layer) for layer in range(parts.n_layers)], 1)  # [B, L, H, T]
    sweeps = (
        sweep_last_positions(lens, _resid_stack(parts, run), answers) if lens is not None else [None] * len(items)
    )
    z = _z_stack(parts, run)
    return [
        Measured(
            item=item, attributions=attributions[row], heads=heads[row * per_row:(row + 1) * per_row],
            pattern_rows=patterns[row, :, :, patterns.shape[-1] - len(item.ids):], lens=sweeps[row], z=z[row],
            top1_id=ranked[row][0],
        )
        for row, item in enumerate(items)
    ]


def _resid_stack(parts: ModelParts, run: ActivationRun) -> Tensor:
    """``[L+1, B, d]``: the embedding and every block's output at the last position."""
    points = ["blocks.0.hook_resid_pre", *(f"blocks.{layer}.hook_resid_post" for layer in range(parts.n_layers))]
    return torch.stack([run[point][:, -1] for point in points])


def _z_stack(parts: ModelParts, run: ActivationRun) -> Tensor:
    """``[B, L, H, d_head]`` float32 on the cpu: ``hook_z`` at the last position."""
    layers = [run[f"blocks.{layer}.attn.hook_z"][:, -1] for layer in range(parts.n_layers)]
    return torch.stack(layers, 1).to(device="cpu", dtype=torch.float32)
