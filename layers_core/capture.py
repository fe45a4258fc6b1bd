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
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import Tensor, nn

from layers_core.architecture import ModelParts

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


def _hidden_from_call(args: tuple, kwargs: dict[str, Any]) -> Tensor:
    # transformers 5 passes hidden_states positionally; accept the keyword form too.
    if args:
        return args[0]
    return kwargs["hidden_states"]


def _hidden_from_output(output: Any) -> Tensor:
    # transformers 5 decoder layers return a tensor; older or other classes a tuple.
    return output[0] if isinstance(output, tuple) else output


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


def _check_inputs(input_ids: Tensor, attention_mask: Tensor | None, positions: str, logits_at: str) -> None:
    for name, value in (("positions", positions), ("logits_at", logits_at)):
        if value not in POSITION_CHOICES:
            raise ValueError(f"{name} must be one of {POSITION_CHOICES}, got {value!r}")
    if input_ids.ndim != 2:
        raise ValueError(f"input_ids must be [batch, seq], got shape {tuple(input_ids.shape)}")
    if attention_mask is not None:
        if attention_mask.shape != input_ids.shape:
            raise ValueError("attention_mask must have the shape of input_ids")
        if "last" in (positions, logits_at) and not bool(attention_mask[:, -1].all()):
            # The last slot of a right-padded row is padding, not the prompt's last token.
            raise ValueError("the last position needs left padding: a row ends with padding")


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
        parts: From ``layers_core.architecture.model_parts(model)``.
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
    # Inputs go where the embedding lives (the first thing the forward pass touches).
    device = parts.embed.weight.device
    input_ids = input_ids.to(device)
    if attention_mask is not None:
        attention_mask = attention_mask.to(device)
        if position_ids is None:
            position_ids = position_ids_from_mask(attention_mask)
    if position_ids is not None:
        position_ids = position_ids.to(device)

    keep_last = positions == "last"
    logits_last = logits_at == "last"
    recorder = _ResidualRecorder(parts.n_layers, input_ids.shape[0], input_ids.shape[1], keep_last)
    kwargs: dict[str, Any] = {
        "input_ids": input_ids, "attention_mask": attention_mask, "position_ids": position_ids,
        "use_cache": False,
    }
    # Only the last position's logits: skip the full [B, T, V] head in the model's forward.
    slice_inside = logits_last and _accepts(model, "logits_to_keep")
    if slice_inside:
        kwargs["logits_to_keep"] = 1

    handles = [parts.blocks[0].register_forward_pre_hook(recorder.pre_hook, with_kwargs=True)]
    try:
        for index, block in enumerate(parts.blocks):
            handles.append(block.register_forward_hook(recorder.post_hook(index + 1)))
        with torch.no_grad():
            output = model(**kwargs)
    finally:
        for handle in handles:
            handle.remove()

    missing = [layer for layer, done in enumerate(recorder.filled) if not done]
    if missing or recorder.stack is None:
        raise RuntimeError(f"the forward pass never reached layers {missing}: hooks saw no residual")
    logits = output.logits
    if logits_last and not slice_inside:
        logits = logits[:, -1:]
    return recorder.stack, logits.float()
