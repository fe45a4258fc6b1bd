"""Direct logit attribution at the answer position: each component's share of a logit, adding up exactly.

One forward pass (``residual_components``) splits the residual stream at the answer
position (the prompt's last token) into what the embedding, each layer's attention
(and each head), each output-projection bias and each MLP wrote. Each part is read
through the final norm with its scale frozen from the same forward pass (measured
on the last block's whole output, TransformerLens's ``apply_ln_to_stack``): at a
fixed scale the norm is linear (its mean-centring too), so the model's logit is
``sum over components of direction . norm_frozen(component) + constant`` exactly.
The constant is the final ``bias`` row: the final norm's bias read by the direction
plus the unembedding bias. Cohere's and Granite's logit multipliers are linear and
applied to every row.

What is frozen where: the final norm's scale (every family); on Gemma 2/3 and OLMo-2
also each post-attention norm's scale, measured on the output projection's whole
output, which only splits the ``attn`` row into ``head`` rows (``hook_attn_out``
is read after that norm as the model computed it). Both checks run at run time:
each frozen norm must reproduce its module's output on the input it was measured on
(else a one-line ``UnsupportedArchitectureError`` naming the norm class), and
``softcap(multiplier * (W_U . final_norm(resid) + b_U))`` must reproduce the model's
own logits for the direction's tokens.

The final-logit softcap (Gemma 2) is not linear: what is attributed is the logit
*before* the softcap, and ``Attribution.softcap_applied_after`` says so (the cap, or
None). ``model_value`` is then the model's own pre-softcap value (its final norm and
unembedding applied to its last residual); without a softcap it is the value in the
logits the model returned. ``total`` (every row but ``head`` rows) equals it to
rounding, a tolerance proportional to ``rounding_scale``.

A direction is a ``LogitDirection``: a few tokens with coefficients (the answer:
``+1``; answer minus foil: ``+1, -1``), per batch row or shared by all rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import torch
from torch import Tensor, nn

from layers_core.attribution.frozen_norm import rounding_allowance
from layers_core.attribution.residual_components import ResidualComponents, decompose_answer_position
from layers_core.errors import UnsupportedArchitectureError
from layers_core.models.architecture import ModelParts


@dataclass(frozen=True)
class LogitDirection:
    """A direction in logit space: ``value = sum_j coefficients[:, j] * logit[token_ids[:, j]]``.

    Attributes:
        token_ids: ``[R, k]`` long; ``R`` is 1 (every batch row) or the batch size.
        coefficients: ``[R, k]`` float64.
    """

    token_ids: Tensor
    coefficients: Tensor

    def for_batch(self, batch: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """``(token_ids, coefficients)`` as ``[batch, k]`` on ``device``.

        Raises:
            ValueError: The direction has neither one row nor ``batch`` rows.
        """
        rows = self.token_ids.shape[0]
        if rows not in (1, batch):
            raise ValueError(f"a direction with {rows} rows does not fit a batch of {batch}")
        ids = self.token_ids.to(device).expand(batch, -1)
        return ids, self.coefficients.to(device).expand(batch, -1)


def _token_ids(parts: ModelParts, tokens: int | Sequence[int]) -> Tensor:
    ids = torch.tensor([tokens] if isinstance(tokens, int) else list(tokens), dtype=torch.long)
    bad = ids[(ids < 0) | (ids >= parts.vocab_size)]
    if ids.numel() == 0 or bad.numel():
        found = f"token {int(bad[0])}" if bad.numel() else "no token"
        raise ValueError(f"{found} given; token ids must lie in 0..{parts.vocab_size - 1}")
    return ids


def answer_direction(parts: ModelParts, token_id: int | Sequence[int]) -> LogitDirection:
    """The answer's logit: ``W_U[answer]`` after the final norm, ``b_U[answer]`` in the final bias row.

    Args:
        parts: The model's parts (for the vocabulary size).
        token_id: One id for every row, or one per batch row.
    """
    ids = _token_ids(parts, token_id)
    return LogitDirection(ids[:, None], torch.ones(len(ids), 1, dtype=torch.float64))


def logit_diff_direction(
    parts: ModelParts, answer_id: int | Sequence[int], foil_id: int | Sequence[int]
) -> LogitDirection:
    """The answer's logit minus the foil's: ``W_U[answer] - W_U[foil]``, the bias difference in the final bias row.

    Args:
        parts: The model's parts (for the vocabulary size).
        answer_id: One id for every row, or one per batch row.
        foil_id: Likewise, as many as ``answer_id``.

    Raises:
        ValueError: A token id out of range, or answer and foil lists of different lengths.
    """
    answers, foils = _token_ids(parts, answer_id), _token_ids(parts, foil_id)
    if len(answers) != len(foils):
        raise ValueError(f"{len(answers)} answers and {len(foils)} foils: give one foil per answer")
    coefficients = torch.tensor([[1.0, -1.0]], dtype=torch.float64).expand(len(answers), 2).clone()
    return LogitDirection(torch.stack([answers, foils], 1), coefficients)


@dataclass(frozen=True)
class ComponentRow:
    """One component's direct contribution.

    Attributes:
        component: "embed", "attn", "head", "bias" or "mlp".
        layer: The block, or None for ``embed`` and the final ``bias`` row.
        head: The head for ``head`` rows, else None.
        hook: Where it was read (TransformerLens spelling); None for the final bias row.
        value: Its contribution to the (pre-softcap) logit or logit difference.
    """

    component: str
    layer: int | None
    head: int | None
    hook: str | None
    value: float


@dataclass
class Attribution:
    """One direction's attribution at one prompt's answer position.

    Attributes:
        components: Embed, then per layer attn, its heads, its bias (if any) and mlp; the final bias row last.
        total: Sum of every row but ``head`` rows.
        model_value: The model's own value of the direction (before the softcap, if any).
        softcap_applied_after: The final-logit softcap the model applies after what is attributed, or None.
        final_norm_scale: The final norm's frozen scale ``1 / rms`` (of the centred residual for a LayerNorm).
        rounding_scale: The magnitude ``total`` and ``model_value`` are rounded at (sum of their terms'
            magnitudes); a tolerance on ``total - model_value`` is proportional to it.
    """

    components: list[ComponentRow]
    total: float
    model_value: float
    softcap_applied_after: float | None
    final_norm_scale: float
    rounding_scale: float

    @property
    def error(self) -> float:
        """``total - model_value``: rounding only."""
        return self.total - self.model_value

    def rows(self, component: str) -> list[ComponentRow]:
        """The rows of one component kind, in order."""
        return [row for row in self.components if row.component == component]


def attribute(
    model: nn.Module, parts: ModelParts, input_ids: Tensor, directions: Mapping[str, LogitDirection]
) -> dict[str, Attribution]:
    """Attribute one prompt's directions at its last position, with one forward pass.

    Args:
        model: The model ``parts`` was taken from, in eval mode.
        parts: From ``model_parts(model)``.
        input_ids: ``[T]`` or ``[1, T]``.
        directions: Name -> direction, e.g. ``{"answer": ..., "logit_diff": ...}``.

    Returns:
        Name -> its attribution.

    Raises:
        ValueError: More than one prompt (use ``attribute_batch``).
        UnsupportedArchitectureError: A norm or head the frozen decomposition does not reproduce.
    """
    ids = input_ids if input_ids.ndim == 2 else input_ids.unsqueeze(0)
    if ids.shape[0] != 1:
        raise ValueError(f"attribute takes one prompt, got {ids.shape[0]}; use attribute_batch")
    return attribute_batch(model, parts, ids, directions)[0]


def attribute_batch(
    model: nn.Module,
    parts: ModelParts,
    input_ids: Tensor,
    directions: Mapping[str, LogitDirection],
    attention_mask: Tensor | None = None,
) -> list[dict[str, Attribution]]:
    """Attribute a left-padded batch at each row's last position, with one forward pass.

    Args:
        model: The model ``parts`` was taken from, in eval mode.
        parts: From ``model_parts(model)``.
        input_ids: ``[B, T]``, left-padded.
        directions: Name -> direction (one row for all, or one per batch row).
        attention_mask: ``[B, T]``, 1 for real tokens.

    Returns:
        Per batch row: name -> its attribution.
    """
    components = decompose_answer_position(model, parts, input_ids, attention_mask)
    return attribute_components(parts, components, directions)


def attribute_components(
    parts: ModelParts, components: ResidualComponents, directions: Mapping[str, LogitDirection]
) -> list[dict[str, Attribution]]:
    """Attribute directions on an already decomposed forward pass (per batch row: name -> attribution)."""
    results: list[dict[str, Attribution]] = [{} for _ in range(components.vectors.shape[0])]
    for name, direction in directions.items():
        for row, attribution in enumerate(_attribute_direction(parts, components, direction)):
            results[row][name] = attribution
    return results


def _unembed_weight(parts: ModelParts) -> Tensor:
    return cast(Tensor, parts.unembed.weight).detach()


def _unembed_bias(parts: ModelParts, ids: Tensor, dtype: torch.dtype) -> Tensor:
    bias = getattr(parts.unembed, "bias", None)
    if bias is None:
        return torch.zeros(ids.shape, dtype=dtype, device=ids.device)
    return bias.detach()[ids].to(dtype)


def _attribute_direction(
    parts: ModelParts, components: ResidualComponents, direction: LogitDirection
) -> list[Attribution]:
    vectors = components.vectors
    ids, coefficients = direction.for_batch(vectors.shape[0], vectors.device)
    coefficients = coefficients.to(vectors.dtype)
    multiplier = parts.logit_multiplier if parts.logit_multiplier is not None else 1.0
    unembed_rows = _unembed_weight(parts)[ids].to(vectors.dtype)
    # The direction read after the final norm, then before it (the frozen norm's transpose).
    after_norm = torch.einsum("bk,bkd->bd", coefficients, unembed_rows)
    final = components.final_norm
    before_norm = multiplier * final.read_out(after_norm)
    values = torch.einsum("bnd,bd->bn", vectors, before_norm)
    final_bias = (coefficients * _unembed_bias(parts, ids, vectors.dtype)).sum(-1)
    if final.bias is not None:
        final_bias = final_bias + after_norm @ final.bias
    final_bias = multiplier * final_bias
    summed = components.summed_mask()
    total = values[:, summed].sum(-1) + final_bias
    model_value, model_scale = _model_value(parts, components, ids, coefficients)
    terms = (vectors[:, summed].abs() * before_norm.abs()[:, None]).sum((1, 2))
    rounding_scale = terms + final_bias.abs() + model_scale
    return [
        Attribution(
            components=[
                *(ComponentRow(key.component, key.layer, key.head, key.hook, value)
                  for key, value in zip(components.keys, row_values, strict=True)),
                ComponentRow("bias", None, None, None, row_bias),
            ],
            total=row_total,
            model_value=row_model,
            softcap_applied_after=parts.final_logit_softcap,
            final_norm_scale=row_scale,
            rounding_scale=row_rounding,
        )
        for row_values, row_bias, row_total, row_model, row_scale, row_rounding in zip(
            values.tolist(), final_bias.tolist(), total.tolist(), model_value.tolist(), final.scale.tolist(),
            rounding_scale.tolist(), strict=True,
        )
    ]


def _model_value(
    parts: ModelParts, components: ResidualComponents, ids: Tensor, coefficients: Tensor
) -> tuple[Tensor, Tensor]:
    """The model's own (pre-softcap) value of the direction per row, and the magnitude it is rounded at.

    The pre-softcap logits come from the model's final norm and unembedding applied to its last
    residual; through the softcap they must give the logits the model returned.
    """
    work = coefficients.dtype
    weight = _unembed_weight(parts)
    with torch.no_grad():
        normed = components.resid_final if parts.final_norm is None else parts.final_norm(components.resid_final)
    normed = normed.to(work)
    rows = weight[ids].to(work)
    bias = _unembed_bias(parts, ids, work)
    multiplier = parts.logit_multiplier if parts.logit_multiplier is not None else 1.0
    pre_softcap = multiplier * (torch.einsum("bkd,bd->bk", rows, normed) + bias)
    scale = abs(multiplier) * (torch.einsum("bkd,bd->bk", rows.abs(), normed.abs()) + bias.abs())
    cap = parts.final_logit_softcap
    expected = cap * torch.tanh(pre_softcap / cap) if cap is not None else pre_softcap
    own = components.logits.gather(-1, ids).to(work)
    limit = rounding_allowance(weight.dtype) * scale * math.sqrt(parts.d_model)
    off = (own - expected).abs()
    if not bool((off <= limit).all()):
        worst = int((off - limit).argmax())
        raise UnsupportedArchitectureError(
            f"{parts.architecture}: its logits are not its final norm, unembedding, multiplier and softcap "
            f"applied to its last residual (off by {float(off.flatten()[worst]):.3g} > "
            f"{float(limit.flatten()[worst]):.3g}); direct attribution would be wrong."
        )
    value = pre_softcap if cap is not None else own
    return (coefficients * value).sum(-1), (coefficients.abs() * scale).sum(-1)
