"""Hook point names (TransformerLens's spelling) and where each one lives on a transformers model.

This is the one way tinycave hooks a model: ``parse_point`` turns a name into a
``HookPoint``, ``site_of`` finds the module and the hook kind that see its value
(through ``architecture.model_parts``, never by attribute name), and ``attached``
registers hooks and always removes them. ``activations`` reads and writes
through it, and ``capture.capture_residuals`` registers its hooks the same way.

Per block ``i`` (the tensors are ``[B, T, d_model]`` unless said otherwise):

- ``blocks.{i}.hook_resid_pre``: the block's input (forward pre-hook on the block).
- ``blocks.{i}.hook_resid_mid``: after attention, before the MLP: the input of the
  pre-MLP norm (the MLP's own input on OLMo-2, which has none). Sequential blocks
  only: in a parallel block (Phi, Cohere, GPT-NeoX and StableLM with
  ``use_parallel_residual``) attention and MLP both read ``resid_pre``.
- ``blocks.{i}.hook_resid_post``: the block's output (before the final norm for the last).
- ``blocks.{i}.hook_attn_out`` / ``hook_mlp_out``: exactly what attention / the MLP
  add to the residual stream: after Gemma 2/3's and OLMo-2's post-norms, times
  Granite's ``residual_multiplier``. So ``resid_post = resid_pre + attn_out + mlp_out``
  for every family (and ``resid_mid = resid_pre + attn_out`` for sequential ones).
  TransformerLens 3.9's bridge places these the same way (its ``BlockBridge`` points
  them at ``ln1_post`` / ``ln2_post``, its ``ScaledResidualBlockBridge`` fires on the
  scaled contribution).
- ``blocks.{i}.attn.hook_z``: ``[B, T, n_heads, d_head]``, each head's output before
  the output projection (the input of ``o_proj``, split into heads).
- ``blocks.{i}.attn.hook_pattern``: ``[B, n_heads, T_query, T_key]`` attention
  probabilities. Needs eager attention (sdpa returns none); read-only.

Writes go through the same sites. A written ``attn_out`` / ``mlp_out`` on Granite is
divided by the multiplier so the block's own multiply gives the value back (exact
to ~1 ulp, as in TransformerLens). A written ``resid_mid`` is applied to the
attention contribution (``attn_out = value - resid_pre``), so the MLP and the
residual carried past it both see it (exact to ~1 ulp).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from layers_core.errors import TinycaveError
from layers_core.models.architecture import ModelParts

POINT_KINDS: tuple[str, ...] = (
    "hook_resid_pre",
    "hook_resid_mid",
    "hook_resid_post",
    "hook_attn_out",
    "hook_mlp_out",
    "attn.hook_z",
    "attn.hook_pattern",
)
_NAME = re.compile(r"blocks\.(\d+)\.(.+)")

HookKind = Literal["pre", "post"]
# A pre-hook is called as fn(module, args, kwargs) (registered with_kwargs=True), a
# forward hook as fn(module, args, output); either may return a replacement.
HookFn = Callable[..., Any]


class HookPointError(TinycaveError, ValueError):
    """A hook point name that does not exist on this model, or a request it cannot serve."""


@dataclass(frozen=True)
class HookPoint:
    """One named point: block ``layer`` and one of ``POINT_KINDS``."""

    layer: int
    kind: str

    @property
    def name(self) -> str:
        """The TransformerLens name, e.g. ``blocks.3.attn.hook_z``."""
        return f"blocks.{self.layer}.{self.kind}"


@dataclass(frozen=True)
class Site:
    """Where a point's tensor passes: a module, the hook kind, and which tensor of the call.

    Attributes:
        module: The hooked module.
        hook: "pre" (the module's input) or "post" (its output).
        slot: 0 for the first input or output, 1 for the second output (attention weights).
        scale: Multiplier between the tensor and the point's value (Granite), or None.
        heads: For ``hook_z``: split the last dimension into ``heads`` heads.
    """

    module: nn.Module
    hook: HookKind
    slot: int = 0
    scale: float | None = None
    heads: int | None = None

    def value(self, raw: Tensor) -> Tensor:
        """The point's value from the tensor the hook sees (may share its memory)."""
        if self.heads is not None:
            raw = raw.unflatten(-1, (self.heads, -1))
        return raw * self.scale if self.scale is not None else raw

    def to_raw(self, value: Tensor) -> Tensor:
        """The tensor the hook must pass on for the point to hold ``value`` (inverse of ``value``)."""
        if self.scale is not None:
            value = value / self.scale
        return value.flatten(-2) if self.heads is not None else value


def parse_point(parts: ModelParts, name: str) -> HookPoint:
    """Check a hook point name against the model.

    Args:
        parts: From ``model_parts(model)``.
        name: E.g. ``"blocks.0.hook_resid_pre"``.

    Raises:
        HookPointError: Unknown name, layer out of range, or ``hook_resid_mid`` on a
            model whose blocks are parallel.
    """
    match = _NAME.fullmatch(name)
    if match is None or match.group(2) not in POINT_KINDS:
        raise HookPointError(
            f"unknown hook point {name!r}: expected blocks.<layer>.<kind> with kind one of {', '.join(POINT_KINDS)}"
        )
    layer, kind = int(match.group(1)), match.group(2)
    if layer >= parts.n_layers:
        raise HookPointError(f"hook point {name!r}: layer {layer} is out of range, the model has {parts.n_layers}")
    if kind == "hook_resid_mid" and parts.parallel_blocks:
        raise HookPointError(
            f"hook point {name!r}: {parts.architecture}'s blocks are parallel (attention and MLP both read "
            "hook_resid_pre), so there is no hook_resid_mid"
        )
    return HookPoint(layer, kind)


def hook_point_names(parts: ModelParts) -> list[str]:
    """Every valid hook point name on the model, block by block in ``POINT_KINDS`` order."""
    kinds = [kind for kind in POINT_KINDS if not (kind == "hook_resid_mid" and parts.parallel_blocks)]
    return [HookPoint(layer, kind).name for layer in range(parts.n_layers) for kind in kinds]


def site_of(parts: ModelParts, point: HookPoint) -> Site:
    """The module, hook kind and tensor at which ``point``'s value passes."""
    block = parts.blocks[point.layer]
    inner = parts.block_parts[point.layer]
    scale = parts.residual_multiplier
    if point.kind == "hook_resid_pre":
        return Site(block, "pre")
    if point.kind == "hook_resid_post":
        return Site(block, "post")
    if point.kind == "hook_resid_mid":
        if parts.parallel_blocks:
            raise HookPointError(f"{point.name}: parallel blocks have no hook_resid_mid")
        # The pre-MLP norm's input is the very tensor the block keeps as its residual.
        return Site(inner.mlp_input_norm if inner.mlp_input_norm is not None else inner.mlp, "pre")
    if point.kind == "hook_attn_out":
        if inner.attn_post_norm is not None:
            return Site(inner.attn_post_norm, "post", scale=scale)
        return Site(inner.attn, "post", scale=scale)
    if point.kind == "hook_mlp_out":
        return Site(inner.mlp_post_norm if inner.mlp_post_norm is not None else inner.mlp, "post", scale=scale)
    if point.kind == "attn.hook_z":
        return Site(inner.o_proj, "pre", heads=parts.n_heads)
    if point.kind == "attn.hook_pattern":
        return Site(inner.attn, "post", slot=1)
    raise HookPointError(f"no site for {point.name}")


def input_tensor(args: tuple, kwargs: dict[str, Any]) -> Tensor:
    """The first input of a module call, positional or by keyword.

    transformers 5 passes the hidden state positionally; a keyword call names it
    ``hidden_states`` (blocks) or passes the module's only argument by name.
    """
    if args:
        return args[0]
    if "hidden_states" in kwargs:
        return kwargs["hidden_states"]
    if len(kwargs) == 1:
        return next(iter(kwargs.values()))
    raise HookPointError(f"cannot tell which input is the hidden state among {sorted(kwargs)}")


def with_input(args: tuple, kwargs: dict[str, Any], tensor: Tensor) -> tuple[tuple, dict[str, Any]]:
    """``(args, kwargs)`` with the first input replaced by ``tensor`` (a pre-hook's return value)."""
    if args:
        return (tensor, *args[1:]), kwargs
    key = "hidden_states" if "hidden_states" in kwargs else next(iter(kwargs))
    return args, {**kwargs, key: tensor}


def output_tensor(output: Any, slot: int = 0) -> Any:
    """Output ``slot`` of a module call (transformers 5 blocks return a tensor, attention a tuple)."""
    if isinstance(output, tuple):
        return output[slot]
    if slot:
        raise HookPointError(f"the module returned one tensor, not a tuple with an entry {slot}")
    return output


def with_output(output: Any, tensor: Tensor, slot: int = 0) -> Any:
    """``output`` with entry ``slot`` replaced by ``tensor`` (a forward hook's return value)."""
    if isinstance(output, tuple):
        return (*output[:slot], tensor, *output[slot + 1:])
    return tensor


@contextmanager
def attached(hooks: Iterable[tuple[nn.Module, HookKind, HookFn]]) -> Iterator[None]:
    """Register forward (pre-)hooks for the duration of a ``with`` block; always remove them.

    Pre-hooks are registered ``with_kwargs=True`` (blocks may be called with
    ``hidden_states=``). Removal happens on success, on any exception and on
    KeyboardInterrupt, including when registering a later hook fails.

    Args:
        hooks: ``(module, "pre" | "post", fn)`` triples, registered in order.
    """
    handles: list[RemovableHandle] = []
    try:
        for module, kind, fn in hooks:
            if kind == "pre":
                handles.append(module.register_forward_pre_hook(fn, with_kwargs=True))
            else:
                handles.append(module.register_forward_hook(fn))
        yield
    finally:
        for handle in handles:
            handle.remove()
