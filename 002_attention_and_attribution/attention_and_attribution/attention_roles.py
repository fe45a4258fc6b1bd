"""Where the answer position looks: its attention mass on each token role, for every layer and head.

One forward pass reads ``blocks.{i}.attn.hook_pattern`` of every layer at the
answer position only (``run_with_cache(..., positions="last")``: ``[B, H, 1, T]``
per layer; eager attention for that call, the model's own implementation back
afterwards). Each head's answer row is summed over the positions of each role
(``token_roles``); the six masses sum to 1 over the prompt's real tokens.
``attn_entropy_bits`` is the row's Shannon entropy (0 = all on one token,
log2 n = spread evenly over n tokens).

Batches are left-padded as everywhere in tinycave (the last slot of every row is
its answer position). Padding gets no role, and the mask gives it exactly zero
attention: its scores sit at the dtype's lowest value or at -inf, whose
exponential underflows to 0. That is checked on every call. Grouped-query
attention needs nothing special (the pattern has one row per query head), and a
sliding-window layer puts exactly 0 on keys outside its window, so a role that
lies wholly outside (``first`` in a long prompt) gets 0 there.

Memory: only the answer rows are kept (``[L, B, H, T]`` in all), never a
``[L, H, T, T]`` stack; the sums run in float64 on the cpu.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from attention_and_attribution.token_roles import ROLES, Role
from layers_core.hooks.activations import ActivationRun, run_with_cache
from layers_core.models.architecture import ModelParts
from layers_core.prompts.batching import left_padded, length_batches

BATCH_SIZE = 16


@dataclass(frozen=True)
class HeadAttention:
    """The answer position's attention in one head, grouped by token role.

    Attributes:
        prompt_index: The prompt's index in the list given.
        layer: Block index, 0-based.
        head: Query head index.
        hook: The pattern's hook point (``blocks.{layer}.attn.hook_pattern``).
        attn_subject: Attention on the subject's tokens.
        attn_relation: On the other word tokens ("capital", "of").
        attn_first: On position 0 (the attention sink).
        attn_self: On the answer position itself.
        attn_punct: On punctuation, special and template tokens.
        attn_other: On the rest (digits).
        attn_entropy_bits: Shannon entropy of the row, in bits.
    """

    prompt_index: int
    layer: int
    head: int
    hook: str
    attn_subject: float
    attn_relation: float
    attn_first: float
    attn_self: float
    attn_punct: float
    attn_other: float
    attn_entropy_bits: float


def pattern_point(layer: int) -> str:
    """The hook point of block ``layer``'s attention pattern, in TransformerLens's spelling."""
    return f"blocks.{layer}.attn.hook_pattern"


def attention_by_role(
    model: nn.Module,
    parts: ModelParts,
    input_ids: Tensor,
    attention_mask: Tensor | None,
    roles: Sequence[Sequence[Role]],
) -> list[HeadAttention]:
    """The answer position's attention by role, for every layer and head, in one forward pass.

    Args:
        model: The model ``parts`` was taken from (eval mode).
        parts: From ``model_parts(model)``.
        input_ids: ``[B, T]`` token ids, left-padded.
        attention_mask: ``[B, T]``, 1 for real tokens, or None when no row is padded.
        roles: Per row, the roles of its real tokens (``token_roles``), as many as the mask's ones.

    Returns:
        One row per prompt, layer and head, in that order; ``prompt_index`` is the batch row.

    Raises:
        ValueError: Roles that do not fit the mask, a mask that is not left padding.
        RuntimeError: Padding that received attention.
    """
    points = pattern_points(parts)
    run = run_with_cache(
        model, parts, input_ids, points, attention_mask=attention_mask, positions="last", logits_at="last"
    )
    return attention_from_run(parts, run, attention_mask, roles)


def pattern_points(parts: ModelParts) -> list[str]:
    """The pattern hook point of every layer."""
    return [pattern_point(layer) for layer in range(parts.n_layers)]


def answer_rows(run: ActivationRun, layer: int) -> Tensor:
    """``[B, H, T]`` float64 on the cpu: layer ``layer``'s attention from each row's last position."""
    return run[pattern_point(layer)][:, :, -1, :].to(device="cpu", dtype=torch.float64)


def attention_from_run(
    parts: ModelParts, run: ActivationRun, attention_mask: Tensor | None, roles: Sequence[Sequence[Role]]
) -> list[HeadAttention]:
    """``attention_by_role`` from a forward pass that read ``pattern_points`` at the last position.

    Raises:
        ValueError: Roles that do not fit the mask, a mask that is not left padding.
        RuntimeError: Padding that received attention.
    """
    points = pattern_points(parts)
    pattern = run[points[0]]  # [B, H, 1, T]
    role_index = _role_index(roles, attention_mask, (pattern.shape[0], pattern.shape[-1]))
    # Every layer's answer rows at once: one copy to the cpu, one einsum, one transfer to lists.
    rows = torch.stack([run[point][:, :, -1, :] for point in points], 1).to(device="cpu", dtype=torch.float64)
    for layer, point in enumerate(points):
        _check_padding(rows[:, layer], role_index, point)
    masses = torch.einsum("blht,btr->blhr", rows, _role_one_hot(role_index)).tolist()
    entropy = _entropy_bits(rows).tolist()
    return [
        _head_row(row, layer, head, point, masses[row][layer][head], entropy[row][layer][head])
        for row in range(len(roles))
        for layer, point in enumerate(points)
        for head in range(parts.n_heads)
    ]


def _head_row(row: int, layer: int, head: int, point: str, masses: list[float], entropy: float) -> HeadAttention:
    by_role = dict(zip(ROLES, masses, strict=True))
    return HeadAttention(
        prompt_index=row, layer=layer, head=head, hook=point, attn_subject=by_role["subject"],
        attn_relation=by_role["relation"], attn_first=by_role["first"], attn_self=by_role["self"],
        attn_punct=by_role["punct"], attn_other=by_role["other"], attn_entropy_bits=entropy,
    )


def attention_by_role_batched(
    model: nn.Module,
    parts: ModelParts,
    prompt_ids: Sequence[Sequence[int]],
    roles: Sequence[Sequence[Role]],
    pad_id: int,
    batch_size: int = BATCH_SIZE,
) -> list[HeadAttention]:
    """``attention_by_role`` over many prompts, left-padded into batches of similar length.

    Args:
        model: The model ``parts`` was taken from (eval mode).
        parts: From ``model_parts(model)``.
        prompt_ids: Each prompt's token ids as the model sees them.
        roles: Each prompt's roles (``token_roles``), one per token.
        pad_id: The id written into padded slots (masked out, so any id serves).
        batch_size: Prompts per forward pass.

    Returns:
        One row per prompt, layer and head, in prompt order; ``prompt_index`` indexes ``prompt_ids``.
    """
    if len(prompt_ids) != len(roles):
        raise ValueError(f"{len(prompt_ids)} prompts but {len(roles)} lists of roles")
    found: dict[int, list[HeadAttention]] = {}
    for batch in length_batches(prompt_ids, batch_size):
        input_ids, mask = left_padded([prompt_ids[i] for i in batch], pad_id)
        for head_row in attention_by_role(model, parts, input_ids, mask, [roles[i] for i in batch]):
            index = batch[head_row.prompt_index]
            found.setdefault(index, []).append(replace(head_row, prompt_index=index))
    return [head_row for index in range(len(prompt_ids)) for head_row in found[index]]


def _role_index(roles: Sequence[Sequence[Role]], mask: Tensor | None, shape: tuple[int, ...]) -> Tensor:
    """``[B, T]`` index into ``ROLES`` of every slot, -1 for padding."""
    if len(shape) != 2 or len(roles) != shape[0]:
        raise ValueError(f"{len(roles)} lists of roles for input_ids of shape {shape}")
    batch, width = shape
    real = torch.ones(shape, dtype=torch.bool) if mask is None else mask.detach().to("cpu").bool()
    index = torch.full(shape, -1, dtype=torch.long)
    for row, row_roles in enumerate(roles):
        count = int(real[row].sum())
        if len(row_roles) != count:
            raise ValueError(f"row {row}: {len(row_roles)} roles for {count} real tokens")
        if not bool(real[row, width - count:].all()):
            raise ValueError(f"row {row}: the attention mask is not left padding (a gap between real tokens)")
        index[row, width - count:] = torch.tensor([ROLES.index(role) for role in row_roles], dtype=torch.long)
    return index


def _role_one_hot(role_index: Tensor) -> Tensor:
    """``[B, T, R]`` float64 indicator of each slot's role; padding rows are all zero."""
    one_hot = torch.zeros((*role_index.shape, len(ROLES)), dtype=torch.float64)
    real = role_index >= 0
    one_hot[real, role_index[real]] = 1.0
    return one_hot


def _check_padding(rows: Tensor, role_index: Tensor, point: str) -> None:
    padded = (role_index < 0)[:, None, :].expand_as(rows)
    leaked = rows[padded]
    if leaked.numel() and bool((leaked != 0).any()):
        raise RuntimeError(f"{point}: padding received attention {float(leaked.abs().max()):.3g}; the mask was ignored")


def _entropy_bits(rows: Tensor) -> Tensor:
    """Shannon entropy in bits of probability rows ``[..., T]`` (0 log 0 = 0)."""
    terms = torch.where(rows > 0, rows * torch.log2(rows), torch.zeros_like(rows))
    return -terms.sum(-1)
