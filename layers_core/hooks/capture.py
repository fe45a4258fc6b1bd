"""Capture the residual stream at every layer with one forward pass and hooks.

Layer 0 is the input of block 0 (a forward pre-hook), so it is the embedding
exactly as the model uses it: Gemma's sqrt(d_model) scale, GPT-2's positional
embeddings and Granite's embedding multiplier included. Layer i is the output
of block i-1. The last layer is therefore the residual *before* the final norm;
transformers 5's ``output_hidden_states[-1]`` is after it, which is why we do
not use that (normalising it again double-normalises the last layer).

Left padding: transformers 5 builds ``position_ids`` as ``arange(T)`` whatever the
attention mask says. RoPE models do not care (a constant shift of every position
leaves attention unchanged), but GPT-2's learned absolute positions do (0.58
logits of error on a tiny GPT-2 row padded by 3). ``capture_residuals``
therefore derives ``position_ids`` from the mask, as ``generate`` does, unless
the caller passes them.

The hooks sit at ``hook_points``' sites for ``blocks.0.hook_resid_pre`` and every
``blocks.{i}.hook_resid_post`` and are registered through ``hook_points.attached``,
the one way tinycave hooks a model; only the callbacks (one preallocated stack, no
per-point dictionary) are this module's own, for speed.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import Tensor, nn

from layers_core.hooks.hook_points import HookPoint, attached, input_tensor, output_tensor, site_of
from layers_core.models.architecture import ModelParts

POSITION_CHOICES: tuple[str, ...] = ("last", "all")


def position_ids_from_mask(attention_mask: Tensor) -> Tensor:
    """Positions counting real tokens only (what ``generate`` passes for left padding).

    Args:
        attention_mask: ``[B, T]`` with 1 for real tokens and 0 for padding.

    Returns:
        ``[B, T]`` long positions, 0 at padded slots.
    """
    positions = attention_mask.long().cumsum(-1) - 1
    return positions.masked_fill(attention_mask == 0, 0)


# The hidden state of a block call (positional or hidden_states=) and of its output (a
# tensor in transformers 5, a tuple in older or other classes): hook_points' accessors.
_hidden_from_call = input_tensor
_hidden_from_output = output_tensor


class _ResidualRecorder:
    """Hook callbacks that copy the kept positions into one preallocated stack."""

    def __init__(self, n_layers: int, batch: int, seq_len: int, keep_last: bool) -> None:
        self.n_layers = n_layers
        self.batch = batch
        self.seq_len = seq_len
        self.keep_last = keep_last
        self.stack: Tensor | None = None
        self.filled = [False] * (n_layers + 1)

    def keep(self, layer: int, hidden: Tensor) -> None:
        if hidden.shape[:2] != (self.batch, self.seq_len):
            raise RuntimeError(
                f"layer {layer}: hidden state shape {tuple(hidden.shape)} is not [B={self.batch}, "
                f"T={self.seq_len}, d]"
            )
        if self.stack is None:
            kept = 1 if self.keep_last else self.seq_len
            self.stack = torch.empty(
                (self.n_layers + 1, self.batch, kept, hidden.shape[-1]),
                dtype=hidden.dtype, device=hidden.device,
            )
        # Copy, not a view: a view of the last position would keep the whole [B, T, d] alive.
        self.stack[layer].copy_(hidden[:, -1:] if self.keep_last else hidden)
        self.filled[layer] = True

    def pre_hook(self, module: nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
        self.keep(0, _hidden_from_call(args, kwargs))

    def post_hook(self, layer: int):
        def hook(module: nn.Module, args: tuple, output: Any) -> None:
            self.keep(layer, _hidden_from_output(output))

        return hook


def _accepts(model: nn.Module, name: str) -> bool:
    return name in inspect.signature(model.forward).parameters


def check_batch(input_ids: Tensor, attention_mask: Tensor | None, needs_last: bool) -> None:
    """Refuse a batch whose shapes disagree, or a right-padded one when the last position is asked for.

    Raises:
        ValueError: With what is wrong, in one line.
    """
    if input_ids.ndim != 2:
        raise ValueError(f"input_ids must be [batch, seq], got shape {tuple(input_ids.shape)}")
    if attention_mask is not None:
        if attention_mask.shape != input_ids.shape:
            raise ValueError("attention_mask must have the shape of input_ids")
        if needs_last and not bool(attention_mask[:, -1].all()):
            # The last slot of a right-padded row is padding, not the prompt's last token.
            raise ValueError("the last position needs left padding: a row ends with padding")


def _check_inputs(input_ids: Tensor, attention_mask: Tensor | None, positions: str, logits_at: str) -> None:
    for name, value in (("positions", positions), ("logits_at", logits_at)):
        if value not in POSITION_CHOICES:
            raise ValueError(f"{name} must be one of {POSITION_CHOICES}, got {value!r}")
    check_batch(input_ids, attention_mask, needs_last="last" in (positions, logits_at))


def forward_kwargs(
    model: nn.Module,
    parts: ModelParts,
    input_ids: Tensor,
    attention_mask: Tensor | None,
    position_ids: Tensor | None,
    logits_last: bool,
) -> tuple[dict[str, Any], bool]:
    """The keyword arguments of one forward pass, on the embedding's device.

    Args:
        model: The model.
        parts: Its parts (for the embedding's device).
        input_ids: ``[B, T]`` token ids.
        attention_mask: ``[B, T]`` or None; positions are derived from it when
            ``position_ids`` is None (``position_ids_from_mask``).
        position_ids: ``[B, T]`` explicit positions, or None.
        logits_last: Only the last position's logits are wanted.

    Returns:
        ``(kwargs, sliced)``: ``sliced`` is True when the model's head already keeps only
        the last position (``logits_to_keep=1``).
    """
    # Inputs go where the embedding lives (the first thing the forward pass touches).
    device = next(parts.embed.parameters()).device
    input_ids = input_ids.to(device)
    if attention_mask is not None:
        attention_mask = attention_mask.to(device)
        if position_ids is None:
            position_ids = position_ids_from_mask(attention_mask)
    if position_ids is not None:
        position_ids = position_ids.to(device)
    kwargs: dict[str, Any] = {
        "input_ids": input_ids, "attention_mask": attention_mask, "position_ids": position_ids,
        "use_cache": False,
    }
    # Only the last position's logits: skip the full [B, T, V] head in the model's forward.
    sliced = logits_last and _accepts(model, "logits_to_keep")
    if sliced:
        kwargs["logits_to_keep"] = 1
    return kwargs, sliced


def output_logits(output: Any, logits_last: bool, sliced: bool) -> Tensor:
    """The model's logits in fp32, ``[B, 1, V]`` when only the last position is wanted."""
    logits = output.logits
    if logits_last and not sliced:
        logits = logits[:, -1:]
    return logits.float()


def capture_residuals(
    model: nn.Module,
    parts: ModelParts,
    input_ids: Tensor,
    attention_mask: Tensor | None = None,
    position_ids: Tensor | None = None,
    positions: str = "last",
    logits_at: str | None = None,
) -> tuple[Tensor, Tensor]:
    """Run the model once and return the residual stream at every layer and its logits.

    Args:
        model: The model ``parts`` was taken from.
        parts: From ``layers_core.models.architecture.model_parts(model)``.
        input_ids: ``[B, T]`` token ids; batches must be left-padded.
        attention_mask: ``[B, T]``, 1 for real tokens. When given and ``position_ids`` is
            None, positions are derived from it (``position_ids_from_mask``).
        position_ids: ``[B, T]`` explicit positions.
        positions: "last" keeps the last position of each row, "all" keeps every position
            (padded slots hold meaningless values).
        logits_at: Positions of the model's logits to return, "last" or "all" (default:
            as ``positions``). "last" with ``positions="all"`` spares the model's whole
            ``[B, T, V]`` output (537 MB for 512 tokens of a 262k vocabulary).

    Returns:
        ``(resid, logits)``: ``resid`` is ``[L+1, B, T_sel, d]`` in the model's dtype,
        detached (layer 0 = input of block 0, layer i = output of block i-1, before the
        final norm); ``logits`` is the model's own ``[B, T_logits, V]`` output in fp32.
    """
    logits_at = positions if logits_at is None else logits_at
    _check_inputs(input_ids, attention_mask, positions, logits_at)
    logits_last = logits_at == "last"
    kwargs, sliced = forward_kwargs(model, parts, input_ids, attention_mask, position_ids, logits_last)
    recorder = _ResidualRecorder(parts.n_layers, input_ids.shape[0], input_ids.shape[1], positions == "last")
    first = site_of(parts, HookPoint(0, "hook_resid_pre"))
    outputs = [site_of(parts, HookPoint(layer, "hook_resid_post")) for layer in range(parts.n_layers)]
    hooks = [(first.module, first.hook, recorder.pre_hook)]
    hooks += [(site.module, site.hook, recorder.post_hook(layer + 1)) for layer, site in enumerate(outputs)]
    with attached(hooks), torch.no_grad():
        output = model(**kwargs)

    missing = [layer for layer, done in enumerate(recorder.filled) if not done]
    if missing or recorder.stack is None:
        raise RuntimeError(f"the forward pass never reached layers {missing}: hooks saw no residual")
    return recorder.stack, output_logits(output, logits_last, sliced)
