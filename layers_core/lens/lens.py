"""The logit lens: turn a residual-stream vector captured at any layer into logits.

This is the one place that knows how a residual becomes logits. In the default
``norm`` mode every layer goes through exactly the model's own head: its final
norm module, the unembedding (with bias), the logit multiplier and the
final-logit softcap, in that order. Calling the model's own norm module makes
Gemma's (1 + weight) RMSNorm and LayerNorm-with-bias exact by construction, so
at the last layer the lens reproduces the model's logits.

Modes:
    norm: final norm -> unembedding (+bias) -> multiplier -> softcap, at every layer.
    raw: unembedding (+bias) of the unnormalised residual; nothing else.
    next-block: the input norm of the block that reads this residual (block
        ``layer``), then the same head as ``norm``; the final norm at the last
        layer. Kept only to compare with the prototype: a block's input norm is
        trained for that block's attention, not for the unembedding, and it
        miscalibrates the lens (near-uniform on Llama-3, near-certain on Gemma-2).
        Post-norm blocks (OLMo-2) have no input norm; there the final norm is
        used and ``describe()`` says so.
    tuned, linear: a fitted affine map per layer (``translators.LensMaps``: the tuned
        lens, the linear shortcut) applied to the residual, then the same head as
        ``norm``. Layer L's map is the identity, so the last layer still reproduces
        the model's logits.
"""

from __future__ import annotations

import copy
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from layers_core.lens.translators import LENS_KINDS, LensMaps
from layers_core.models.architecture import ModelParts

LENS_MODES: tuple[str, ...] = ("norm", "raw", "next-block", *LENS_KINDS)
# Stacks of layers sharing a norm are normalised in chunks about this size: the norm's
# temporaries (RMSNorm makes three of its input's size) then come from one chunk, not the stack.
NORMALISE_CHUNK_BYTES = 8 * 2**20


def _fp32_copy(module: nn.Module) -> nn.Module:
    clone = copy.deepcopy(module).float().eval()
    clone.requires_grad_(False)
    return clone


class Lens:
    """Decode residuals captured at layer 0..L into fp32 logits.

    With ``fp32_unembed=True`` and a fp16/bf16 model, the norm and the
    unembedding run in fp32 on fp32 copies of the unembedding weight and bias
    and deep-copied fp32 norms. That costs ``vocab_size * d_model * 4`` bytes
    more memory (671 MB for Gemma-3-270M's 262k vocabulary), kept for the
    lifetime of the Lens. On an fp32 model it copies nothing.
    Without it, the head runs in the model's dtype exactly as the model does, and
    only the result is cast to fp32.
    """

    def __init__(
        self, parts: ModelParts, mode: str = "norm", fp32_unembed: bool = False, maps: LensMaps | None = None
    ) -> None:
        """Prepare the per-layer norms and the head.

        Args:
            parts: The model's modules, from ``layers_core.models.architecture.model_parts``.
            mode: One of ``LENS_MODES``.
            fp32_unembed: Run norm and unembedding in fp32 when the model is fp16/bf16.
            maps: The fitted maps of a ``tuned`` or ``linear`` lens (of that kind, for this model's shape);
                None for the other modes.

        Raises:
            ValueError: ``mode`` is not one of ``LENS_MODES``, or ``maps`` do not go with it.
        """
        if mode not in LENS_MODES:
            raise ValueError(f"lens mode {mode!r} is not one of {', '.join(LENS_MODES)}")
        if (maps is not None) != (mode in LENS_KINDS) or (maps is not None and maps.identity.kind != mode):
            raise ValueError(f"the {mode} lens takes {'its fitted maps' if mode in LENS_KINDS else 'no maps'}")
        if maps is not None and (maps.identity.n_layers, maps.identity.d_model) != (parts.n_layers, parts.d_model):
            raise ValueError(f"maps for {maps.identity.n_layers} layers of width {maps.identity.d_model} do not fit "
                             f"this model ({parts.n_layers} x {parts.d_model})")
        self.parts = parts
        self.mode = mode
        self.maps = maps
        weight = cast(Tensor, parts.unembed.weight)
        bias: Tensor | None = getattr(parts.unembed, "bias", None)
        self.model_dtype = weight.dtype
        self.upcast = fp32_unembed and weight.dtype != torch.float32
        self.compute_dtype = torch.float32 if self.upcast else weight.dtype
        if self.upcast:
            self._weight = weight.detach().float()
            self._bias = bias.detach().float() if bias is not None else None
        else:
            self._weight = weight
            self._bias = bias
        self._norms, self._norm_labels = self._plan_norms()
        self.extra_bytes = self._copied_bytes()

    def _plan_norms(self) -> tuple[list[nn.Module | None], list[str]]:
        """The norm applied at each layer 0..L and a label saying which module it is."""
        parts = self.parts
        final = parts.final_norm
        final_label = f"final norm {parts.module_paths.get('final_norm', '?')} ({type(final).__name__})"
        if self.mode == "raw" or final is None:
            return [None] * (parts.n_layers + 1), ["none"] * (parts.n_layers + 1)
        final_used = _fp32_copy(final) if self.upcast else final
        norms: list[nn.Module | None] = [final_used] * (parts.n_layers + 1)
        labels = [final_label] * (parts.n_layers + 1)
        if self.mode == "next-block":
            block_path = parts.module_paths.get("block_input_norm", "?")
            for layer, norm in enumerate(parts.block_input_norms):
                if norm is None:
                    labels[layer] = f"{final_label}, as the reading block has no input norm"
                    continue
                norms[layer] = _fp32_copy(norm) if self.upcast else norm
                # One label for all such layers so describe() groups them; {i} = the layer.
                labels[layer] = f"block input norm {block_path} ({type(norm).__name__}), i = layer"
        return norms, labels

    def _copied_bytes(self) -> int:
        """Bytes held by the fp32 copies (0 when nothing was copied)."""
        if not self.upcast:
            return 0
        tensors = [t for t in (self._weight, self._bias) if t is not None]
        unique_norms = {id(n): n for n in self._norms if n is not None}.values()
        tensors += [p for norm in unique_norms for p in norm.parameters()]
        return sum(t.numel() * t.element_size() for t in tensors)

    def _head(self, normed: Tensor) -> Tensor:
        """Unembedding (+bias), then multiplier and softcap outside raw mode; fp32 out."""
        logits = F.linear(normed.to(self.compute_dtype), self._weight, self._bias)
        if self.mode != "raw":
            # Same order and arithmetic as the model's forward: multiplier, then cap.
            if self.parts.logit_multiplier is not None:
                logits = logits * self.parts.logit_multiplier
            cap = self.parts.final_logit_softcap
            if cap is not None:
                logits = torch.tanh(logits / cap) * cap
        return logits.float()

    def _normalise(self, resid: Tensor, layer: int) -> Tensor:
        if self.maps is not None:
            resid = self.maps.apply(resid, layer)
        norm = self._norms[layer]
        if self.upcast:
            resid = resid.float()
        return resid if norm is None else norm(resid)

    def _check_layer(self, layer: int) -> None:
        if not 0 <= layer <= self.parts.n_layers:
            raise ValueError(f"layer {layer} is outside 0..{self.parts.n_layers}")

    @torch.no_grad()
    def logits(self, resid: Tensor, layer: int) -> Tensor:
        """Decode residuals captured at ``layer``.

        Args:
            resid: ``[..., d_model]`` residual stream at ``layer`` (0 = input of block 0,
                i = output of block i-1), in the model's dtype.
            layer: 0..n_layers.

        Returns:
            fp32 logits ``[..., vocab_size]``.
        """
        self._check_layer(layer)
        return self._head(self._normalise(resid, layer))

    def differentiable_logits(self, resid: Tensor, layer: int) -> Tensor:
        """``logits`` with autograd left on: what fitting a lens differentiates through (fp32 out)."""
        self._check_layer(layer)
        return self._head(self._normalise(resid, layer))

    @torch.no_grad()
    def logits_stack(self, resid_stack: Tensor, first_layer: int = 0) -> Tensor:
        """Decode consecutive layers at once with one matmul over the unembedding.

        Short prompts are bound by reading the unembedding weight once per layer;
        one stacked matmul reads it once. The result holds ``n x ... x V`` fp32
        values: decode long all-position sweeps in chunks of layers (or per layer).

        Args:
            resid_stack: ``[n, ..., d_model]``: layers ``first_layer .. first_layer + n - 1``
                (the whole ``capture_residuals`` stack by default, or a slice of it).
            first_layer: The layer of ``resid_stack[0]``.

        Returns:
            fp32 logits ``[n, ..., vocab_size]``.
        """
        return self._head(self.normalise_stack(resid_stack, first_layer))

    @torch.no_grad()
    def normalise_stack(self, resid_stack: Tensor, first_layer: int = 0) -> Tensor:
        """Consecutive layers after the norm the lens applies at each: the head's input.

        Layers sharing one norm go through it together, in chunks of about
        ``NORMALISE_CHUNK_BYTES`` written into one output, so the norm's
        temporaries never span the whole stack.

        Args:
            resid_stack: ``[n, ..., d_model]``: layers ``first_layer .. first_layer + n - 1``.
            first_layer: The layer of ``resid_stack[0]``.
        """
        count = resid_stack.shape[0]
        self._check_layer(first_layer)
        self._check_layer(first_layer + count - 1)
        norms = self._norms[first_layer:first_layer + count]
        shared = len({id(norm) for norm in norms}) == 1 and self.maps is None  # maps differ per layer
        if all(norm is None for norm in norms) or (shared and resid_stack.numel() * 4 <= NORMALISE_CHUNK_BYTES):
            return self._normalise(resid_stack, first_layer)
        step = max(1, NORMALISE_CHUNK_BYTES // (resid_stack[0].numel() * 4)) if shared else 1
        out: Tensor | None = None
        for first in range(0, count, step):
            chunk = self._normalise(resid_stack[first:first + step], first_layer + first)
            if out is None:
                out = torch.empty((count, *chunk.shape[1:]), dtype=chunk.dtype, device=chunk.device)
            out[first:first + chunk.shape[0]] = chunk
        if out is None:
            raise ValueError("normalise_stack got an empty stack of layers")
        return out

    def describe(self) -> dict:
        """What this lens does at each layer kind, from the plan ``logits`` follows."""
        n = self.parts.n_layers
        groups: list[dict] = []
        for layer, label in enumerate(self._norm_labels):
            if groups and groups[-1]["norm"] == label:
                groups[-1]["layers"][1] = layer
            else:
                groups.append({"layers": [layer, layer], "norm": label})
        head = ["unembedding" + (" + bias" if self._bias is not None else "")]
        if self.mode != "raw" and self.parts.logit_multiplier is not None:
            head.append(f"x {self.parts.logit_multiplier:g}")
        cap = self.parts.final_logit_softcap
        if self.mode != "raw" and cap is not None:
            head.append(f"softcap {cap:g} * tanh(x / {cap:g})")
        return {
            "mode": self.mode,
            "n_layers": n,
            "norm_by_layer": [
                {"layers": f"{g['layers'][0]}-{g['layers'][1]}", "norm": g["norm"]} for g in groups
            ],
            "head": " -> ".join(head),
            "unembed": f"{self.parts.module_paths.get('unembed', '?')} ({type(self.parts.unembed).__name__})",
            "model_dtype": str(self.model_dtype).removeprefix("torch."),
            "compute_dtype": str(self.compute_dtype).removeprefix("torch."),
            "fp32_copies": self.upcast,
            "fp32_copy_bytes": self.extra_bytes,
            "output_dtype": "float32",
            **({} if self.maps is None else {"maps": {
                "kind": self.maps.identity.kind, "layers": f"0-{n - 1} (layer {n}: identity)",
                "fitted_for_corpus": self.maps.identity.corpus, "recipe": self.maps.identity.recipe}}),
        }
