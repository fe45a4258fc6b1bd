"""The residual stream at the answer position, split into what each component wrote, from one forward pass.

Read only through ``layers_core.hooks.activations.run_with_cache`` at the answer
position (the last one; batches are left-padded): ``blocks.0.hook_resid_pre`` (the
embedding as the model uses it: GPT-2's positions, Gemma's scale and Granite's
multiplier included), every block's ``attn.hook_z``, ``hook_attn_out`` and
``hook_mlp_out``, and the last block's ``hook_resid_post`` (the final norm's input).

Rows, in residual space (``[d_model]`` each):

- ``embed``: ``blocks.0.hook_resid_pre``.
- per layer ``attn``: ``hook_attn_out`` less the output projection's bias row, i.e.
  the layer's heads together.
- per layer and head ``head``: ``z_h @ W_O[:, h]^T``, through the post-attention
  norm where there is one (Gemma 2/3, OLMo-2) with that norm's scale frozen from
  the same forward pass (measured on the projection's whole output), times Granite's
  residual multiplier. A bias-free RMSNorm at a frozen scale is linear, so a
  layer's heads add up to its ``attn`` row exactly (to rounding). A head's share
  is still a linearisation of that norm: the scale belongs to all heads together.
- per layer ``bias`` (only where the output projection has one: GPT-2, Phi,
  GPT-NeoX, Llama-likes with attention bias): the bias through the same frozen
  post-norm and multiplier (plus the post-norm's own bias, were there one).
- per layer ``mlp``: ``hook_mlp_out``.

``embed + attn + bias + mlp`` over all layers is the last block's output (hook
points: ``resid_post = resid_pre + attn_out + mlp_out`` on every family). Head rows
are a finer split of the ``attn`` rows and are not part of that sum.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from layers_core.attribution.frozen_norm import FrozenNorm, work_dtype
from layers_core.hooks.activations import ActivationRun, run_with_cache
from layers_core.models.architecture import ModelParts

COMPONENT_KINDS: tuple[str, ...] = ("embed", "attn", "head", "bias", "mlp")


@dataclass(frozen=True)
class ComponentKey:
    """One row of the decomposition.

    Attributes:
        component: One of ``COMPONENT_KINDS``.
        layer: The block, or None for ``embed``.
        head: The head for ``head`` rows, else None.
        hook: The hook point it was read at (TransformerLens spelling).
    """

    component: str
    layer: int | None
    head: int | None
    hook: str | None


@dataclass
class ResidualComponents:
    """What each component added to the residual stream at the answer position of each batch row.

    Attributes:
        keys: One per row of ``vectors``.
        vectors: ``[B, N, d_model]`` in ``work_dtype``.
        resid_final: ``[B, d_model]``, the last block's output as the model computed it (its dtype).
        final_norm: The final norm frozen at ``resid_final``'s scale.
        logits: ``[B, V]`` fp32: the model's own logits at the answer position.
    """

    keys: list[ComponentKey]
    vectors: Tensor
    resid_final: Tensor
    final_norm: FrozenNorm
    logits: Tensor

    def summed_mask(self) -> Tensor:
        """``[N]`` bool: the rows whose sum is the residual (every row but ``head`` rows)."""
        return torch.tensor([key.component != "head" for key in self.keys], device=self.vectors.device)


def answer_position_points(parts: ModelParts) -> list[str]:
    """The hook points the decomposition reads."""
    points = ["blocks.0.hook_resid_pre"]
    for layer in range(parts.n_layers):
        points += [f"blocks.{layer}.attn.hook_z", f"blocks.{layer}.hook_attn_out", f"blocks.{layer}.hook_mlp_out"]
    return points + [f"blocks.{parts.n_layers - 1}.hook_resid_post"]


def decompose_answer_position(
    model: nn.Module, parts: ModelParts, input_ids: Tensor, attention_mask: Tensor | None = None
) -> ResidualComponents:
    """Run the model once and split the residual stream at each row's last position into components.

    Args:
        model: The model ``parts`` was taken from, in eval mode.
        parts: From ``model_parts(model)``.
        input_ids: ``[B, T]``, left-padded when ``B > 1`` and lengths differ.
        attention_mask: ``[B, T]``, 1 for real tokens (positions are derived from it).

    Returns:
        The components, the final norm frozen at this forward pass's scale, and the model's logits.

    Raises:
        UnsupportedArchitectureError: A norm whose frozen form does not reproduce the module.
    """
    run = run_with_cache(
        model, parts, input_ids, answer_position_points(parts), attention_mask=attention_mask,
        positions="last", logits_at="last",
    )
    return components_from_run(parts, run)


def components_from_run(parts: ModelParts, run: ActivationRun) -> ResidualComponents:
    """The decomposition from a forward pass that read ``answer_position_points`` at the last position.

    The pass may have read other points as well (one pass serves attention, attribution and lens).

    Raises:
        UnsupportedArchitectureError: A norm whose frozen form does not reproduce the module.
    """
    cache = {name: run[name][:, -1] for name in answer_position_points(parts)}
    work = work_dtype(cache["blocks.0.hook_resid_pre"].device)
    keys = [ComponentKey("embed", None, None, "blocks.0.hook_resid_pre")]
    vectors = [cache["blocks.0.hook_resid_pre"].to(work)]
    for layer in range(parts.n_layers):
        heads, bias = _attention_rows(parts, layer, cache[f"blocks.{layer}.attn.hook_z"])
        attn_out = cache[f"blocks.{layer}.hook_attn_out"].to(work)
        keys.append(ComponentKey("attn", layer, None, f"blocks.{layer}.hook_attn_out"))
        vectors.append(attn_out - bias if bias is not None else attn_out)
        keys += [ComponentKey("head", layer, head, f"blocks.{layer}.attn.hook_z") for head in range(parts.n_heads)]
        vectors += list(heads.unbind(1))
        if bias is not None:
            keys.append(ComponentKey("bias", layer, None, f"blocks.{layer}.hook_attn_out"))
            vectors.append(bias)
        keys.append(ComponentKey("mlp", layer, None, f"blocks.{layer}.hook_mlp_out"))
        vectors.append(cache[f"blocks.{layer}.hook_mlp_out"].to(work))
    resid_final = cache[f"blocks.{parts.n_layers - 1}.hook_resid_post"]
    final_norm = FrozenNorm.measure(parts.final_norm, resid_final)
    return ResidualComponents(keys, torch.stack(vectors, 1), resid_final, final_norm, run.logits[:, -1])


def _attention_rows(parts: ModelParts, layer: int, z: Tensor) -> tuple[Tensor, Tensor | None]:
    """Each head's ``[B, H, d]`` and the bias's ``[B, d]`` (or None) contribution to the residual."""
    inner = parts.block_parts[layer]
    work = work_dtype(z.device)
    batch, d_model = z.shape[0], parts.d_model
    # The products in the model's precision (float32 at least): converting W_O to float64 for every
    # layer and call cost a fifth of one prompt's analysis; only the [B, H, d] result is widened.
    product = z.dtype if z.dtype in (torch.float32, torch.float64) else torch.float32
    weight = inner.o_proj_weight().detach().to(product).reshape(d_model, parts.n_heads, parts.d_head)
    heads = torch.einsum("bhe,dhe->bhd", z.to(product), weight).to(work)
    o_bias = inner.o_proj_bias()
    bias = o_bias.detach().to(work).expand(batch, d_model) if o_bias is not None else None
    if inner.attn_post_norm is not None:
        # The post-norm reads the projection's whole output; its scale is frozen at that total.
        projected = heads.sum(1) + bias if bias is not None else heads.sum(1)
        post = FrozenNorm.measure(inner.attn_post_norm, projected, dtype=z.dtype)
        heads = post.linear(heads)
        bias = post.linear(bias) if bias is not None else None
        if post.bias is not None:
            bias = post.bias.expand(batch, d_model) + (bias if bias is not None else 0.0)
    if parts.residual_multiplier is not None:
        heads = heads * parts.residual_multiplier
        bias = bias * parts.residual_multiplier if bias is not None else None
    return heads, bias
