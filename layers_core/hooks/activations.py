"""Read and write activations at named hook points in one forward pass of a plain transformers model.

The points and where they live are ``hook_points``' business (TransformerLens
names; see that module for what each one holds). This module runs the model
once with forward hooks at those sites and:

- reads: ``run_with_cache`` returns the model's logits and a cache restricted to
  the points and positions asked for; every tensor is detached and copied (never a
  view that would keep the whole ``[B, T, d]`` alive);
- writes: ``run_with_patches`` replaces or adds values (``Patch``) at given
  positions, optionally one (row, position) pair per batch row, so many patches
  run as one batched forward; it can read a cache in the same pass. The cache holds
  what flowed through the model, i.e. after the writes.

``logits_at="none"`` wants no logits: the forward pass stops as soon as every
point asked for has been read and written, so nothing past the deepest of them
runs (the floor cost of reading layer 15 of 30 is half a forward pass). The
run's ``logits`` is then an empty ``[B, 0, 0]`` tensor.

``keep_graph=True`` runs with autograd on and leaves each cached tensor on the
graph, upstream of the logits: ``torch.autograd.grad(metric, cache[name])`` is
the gradient with respect to that activation at the kept positions (attribution
patching). The forward values are unchanged bit for bit. Patterns are never on
the graph.

``attn.hook_pattern`` needs eager attention: a call that reads patterns switches
the model to eager for that call only (``eager_attention``) and restores the
previous implementation afterwards, whatever happens. The hooks, too, are always
removed. The model must be in eval mode for ``resid_post = resid_pre + attn_out +
mlp_out`` to hold (dropout sits between some sites and the residual add).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn

from layers_core.hooks.capture import check_batch, forward_kwargs, output_logits
from layers_core.hooks.hook_points import (
    HookFn,
    HookKind,
    HookPoint,
    HookPointError,
    Site,
    attached,
    input_tensor,
    output_tensor,
    parse_point,
    site_of,
    with_input,
    with_output,
)
from layers_core.models.architecture import ModelParts

Positions = Sequence[int] | Literal["last"] | None
LogitsAt = Literal["all", "last", "none"]


class _Enough(Exception):
    """Raised by the last hook of a ``logits_at="none"`` run: everything asked for has been read."""


@dataclass(frozen=True)
class Patch:
    """One write at a hook point.

    With ``rows`` None the write covers every row at ``positions`` (all when None);
    with ``rows`` given, ``rows[k]`` is paired with ``positions[k]`` (one position
    per row: a batch of single-position patches in one forward pass), or covers
    every position of those rows when ``positions`` is None. ``value`` broadcasts
    against the selected slice: ``[B, T, ...]``, ``[B, len(positions), ...]``,
    ``[len(rows), ...]`` (paired) or ``[len(rows), T, ...]``, where ``...`` is
    ``d_model``, or ``(n_heads, d_head)`` for ``attn.hook_z`` (``d_head`` alone with ``head``).

    Attributes:
        point: A hook point name, e.g. ``"blocks.3.hook_resid_post"``.
        value: The new value ("replace") or what to add ("add").
        positions: Token positions (negative counts from the end), or None for all.
        rows: Batch rows, or None for all.
        head: For ``attn.hook_z`` only: write this head alone.
        mode: "replace" or "add".
    """

    point: str
    value: Tensor | float
    positions: Sequence[int] | None = None
    rows: Sequence[int] | None = None
    head: int | None = None
    mode: Literal["replace", "add"] = "replace"


@dataclass
class ActivationRun:
    """What one hooked forward pass returns.

    Attributes:
        logits: ``[B, T, V]`` (``[B, 1, V]`` with ``logits_at="last"``; empty ``[B, 0, 0]`` with
            ``logits_at="none"``), fp32.
        cache: Point name -> value at the kept positions: ``[B, T_sel, d_model]``,
            ``[B, T_sel, n_heads, d_head]`` for ``hook_z``, ``[B, n_heads, T_sel, T]``
            for ``hook_pattern`` (queries restricted, every key kept), in the model's dtype.
        positions: The kept positions (non-negative), or None for all.
    """

    logits: Tensor
    cache: dict[str, Tensor] = field(default_factory=dict)
    positions: list[int] | None = None

    def __getitem__(self, name: str) -> Tensor:
        return self.cache[name]


def run_with_cache(
    model: nn.Module,
    parts: ModelParts,
    input_ids: Tensor,
    points: Sequence[str],
    *,
    attention_mask: Tensor | None = None,
    position_ids: Tensor | None = None,
    positions: Positions = None,
    logits_at: LogitsAt = "all",
    keep_graph: bool = False,
) -> ActivationRun:
    """Run the model once and read the activations at ``points``.

    Args:
        model: The model ``parts`` was taken from.
        parts: From ``model_parts(model)``.
        input_ids: ``[B, T]`` token ids; batches must be left-padded.
        points: Hook point names (``hook_points.hook_point_names`` lists them).
        attention_mask: ``[B, T]``, 1 for real tokens; positions are derived from it
            when ``position_ids`` is None, as ``capture_residuals`` does.
        position_ids: ``[B, T]`` explicit positions.
        positions: Positions to keep: None for all, "last", or a list of indices.
        logits_at: "all", "last" for the last position only (``logits_to_keep=1``), or
            "none": no logits, and the forward pass stops after the deepest point.
        keep_graph: Run with autograd and keep the cached tensors on the graph.

    Returns:
        The logits and the cache.

    Raises:
        HookPointError: An unknown point or a layer out of range.
        ValueError: Inconsistent shapes, a position out of range, "last" on a right-padded batch.
    """
    return run_with_patches(
        model, parts, input_ids, (), read=points, attention_mask=attention_mask, position_ids=position_ids,
        positions=positions, logits_at=logits_at, keep_graph=keep_graph,
    )


def run_with_patches(
    model: nn.Module,
    parts: ModelParts,
    input_ids: Tensor,
    patches: Sequence[Patch],
    *,
    read: Sequence[str] = (),
    attention_mask: Tensor | None = None,
    position_ids: Tensor | None = None,
    positions: Positions = None,
    logits_at: LogitsAt = "all",
    keep_graph: bool = False,
) -> ActivationRun:
    """Run the model once with ``patches`` applied, and optionally read a cache in the same pass.

    Writes at one point apply in the order given, before any read there; the
    cache holds the values after the writes. Arguments are as ``run_with_cache``'s.

    Raises:
        HookPointError: An unknown point, a write to ``attn.hook_pattern``, ``head``
            on another point, or a head out of range.
        ValueError: Inconsistent shapes, rows or positions out of range.
    """
    wants_last = (isinstance(positions, str) and positions == "last") or logits_at == "last"
    check_batch(input_ids, attention_mask, needs_last=wants_last)
    if logits_at not in ("all", "last", "none"):
        raise ValueError(f"logits_at must be 'all', 'last' or 'none', got {logits_at!r}")
    if logits_at == "none" and (keep_graph or not read):
        raise ValueError("logits_at='none' stops after the points read: it needs points to read and no graph")
    batch, seq_len = input_ids.shape
    plan = _Plan(parts, batch, seq_len, _kept_positions(positions, seq_len), keep_graph,
                 stop_when_done=logits_at == "none")
    for patch in patches:
        plan.add_write(patch)
    for name in dict.fromkeys(read):
        plan.add_read(name)

    kwargs, sliced = forward_kwargs(model, parts, input_ids, attention_mask, position_ids, logits_at == "last")
    attention = eager_attention(model) if plan.needs_eager else nullcontext()
    grad = torch.enable_grad() if keep_graph else torch.no_grad()
    with attention, attached(plan.hooks()), grad:
        try:
            output = model(**kwargs)
        except _Enough:
            output = None
    plan.check_all_fired()
    if output is None:
        return ActivationRun(torch.empty(batch, 0, 0), plan.cache, plan.kept_list)
    return ActivationRun(output_logits(output, logits_at == "last", sliced), plan.cache, plan.kept_list)


@contextmanager
def eager_attention(model: nn.Module) -> Iterator[None]:
    """Run the ``with`` block under eager attention, then restore each config's previous implementation.

    transformers 5.23's ``set_attn_implementation`` only sets
    ``_attn_implementation_internal`` on the model's config and its sub-configs; the
    previous value of every one of them is saved first and put back in ``finally``.
    """
    configs = _configs_of(model)
    saved = [(config, config._attn_implementation_internal) for config in configs]
    if all(value == "eager" for _, value in saved):
        yield
        return
    try:
        model.set_attn_implementation("eager")  # type: ignore[operator]
        yield
    finally:
        for config, value in saved:
            config._attn_implementation_internal = value


def _configs_of(model: nn.Module) -> list[Any]:
    """Every distinct config the model's modules read (the top one, sub-models' and nested sub-configs)."""
    found: dict[int, Any] = {}
    pending = [module.config for module in model.modules() if hasattr(module, "config")]
    while pending:
        config = pending.pop()
        if id(config) in found or not hasattr(config, "_attn_implementation_internal"):
            continue
        found[id(config)] = config
        pending.extend(getattr(config, key) for key in getattr(config, "sub_configs", {}) if getattr(config, key))
    return list(found.values())


def _kept_positions(positions: Positions, seq_len: int) -> list[int] | None:
    if positions is None:
        return None
    if isinstance(positions, str):
        if positions != "last":
            raise ValueError(f"positions must be None, 'last' or a list of indices, got {positions!r}")
        return [seq_len - 1]
    return _normalised(positions, seq_len, "position")


def _normalised(indices: Sequence[int], size: int, what: str) -> list[int]:
    kept = [int(index) for index in indices]
    bad = [index for index in kept if not -size <= index < size]
    if bad:
        raise ValueError(f"{what} {bad[0]} is out of range for size {size}")
    return [index % size for index in kept]


@dataclass
class _Action:
    """One thing a hook does to the tensor passing a site: write a patch, read it, or remember it."""

    point: HookPoint
    site: Site
    patch: Patch | None = None  # a write; None for a read
    remember_layer: int | None = None  # keep this block's input (for resid_mid at the attention output)
    # resid_mid handled at the attention contribution (resid_pre + attn_out), not at the pre-MLP norm.
    mid_via_attn_out: bool = False
    fired: bool = False


class _Plan:
    """The hooks of one run: which actions happen at which (module, hook, slot), and the cache."""

    def __init__(self, parts: ModelParts, batch: int, seq_len: int, kept: list[int] | None, keep_graph: bool,
                 stop_when_done: bool = False):
        self.parts = parts
        self.stop_when_done = stop_when_done
        self.batch = batch
        self.seq_len = seq_len
        self.kept_list = kept
        self.keep_graph = keep_graph
        self.cache: dict[str, Tensor] = {}
        self.resid_pre: dict[int, Tensor] = {}
        self.needs_eager = False
        self._writes: list[_Action] = []
        self._reads: list[_Action] = []
        self._remember: list[_Action] = []

    def add_write(self, patch: Patch) -> None:
        point = parse_point(self.parts, patch.point)
        if point.kind == "attn.hook_pattern":
            raise HookPointError(f"{point.name} is read-only: the pattern is returned after it is used")
        if patch.mode not in ("replace", "add"):
            raise ValueError(f"{point.name}: mode must be 'replace' or 'add', got {patch.mode!r}")
        if patch.head is not None:
            if point.kind != "attn.hook_z":
                raise HookPointError(f"{point.name}: head= only applies to attn.hook_z")
            if not 0 <= patch.head < self.parts.n_heads:
                raise HookPointError(f"{point.name}: head {patch.head} is out of range ({self.parts.n_heads} heads)")
        if patch.rows is not None and patch.positions is not None and len(patch.rows) != len(patch.positions):
            raise ValueError(f"{point.name}: rows and positions pair up, so they need the same length")
        _normalised(patch.rows or (), self.batch, "row")
        _normalised(patch.positions or (), self.seq_len, "position")
        # resid_mid is written through the attention contribution, so the MLP and the carried residual agree.
        if point.kind == "hook_resid_mid":
            self._writes.append(_Action(point, self._via_attn_out(point), patch, mid_via_attn_out=True))
        else:
            self._writes.append(_Action(point, site_of(self.parts, point), patch))

    def add_read(self, name: str) -> None:
        point = parse_point(self.parts, name)
        self.needs_eager = self.needs_eager or point.kind == "attn.hook_pattern"
        if point.kind == "hook_resid_mid" and self.keep_graph:
            # The pre-MLP norm's input is not the only path onward (the block keeps the same tensor as
            # its residual), so a tensor spliced in there would miss the skip path's gradient. Read
            # resid_mid = resid_pre + attn_out at the attention contribution instead.
            self._reads.append(_Action(point, self._via_attn_out(point), mid_via_attn_out=True))
        else:
            self._reads.append(_Action(point, site_of(self.parts, point)))

    def _via_attn_out(self, point: HookPoint) -> Site:
        """The attn_out site of ``point``'s block, remembering the block input for resid_mid."""
        if all(action.remember_layer != point.layer for action in self._remember):
            block = site_of(self.parts, HookPoint(point.layer, "hook_resid_pre"))
            self._remember.append(_Action(HookPoint(point.layer, "hook_resid_pre"), block, None, point.layer))
        return site_of(self.parts, HookPoint(point.layer, "hook_attn_out"))

    def hooks(self) -> list[tuple[nn.Module, HookKind, HookFn]]:
        """One hook per (module, kind), running its writes, then its reads, then remembering."""
        grouped: dict[tuple[int, HookKind], list[_Action]] = {}
        modules: dict[int, nn.Module] = {}
        for action in self._writes + self._reads + self._remember:
            key = (id(action.site.module), action.site.hook)
            grouped.setdefault(key, []).append(action)
            modules[key[0]] = action.site.module
        return [(modules[key[0]], key[1], self._hook(key[1], actions)) for key, actions in grouped.items()]

    def check_all_fired(self) -> None:
        silent = [action.point.name for action in self._writes + self._reads if not action.fired]
        if silent:
            raise RuntimeError(f"the forward pass never reached {', '.join(silent)}: their hooks did not run")

    def _hook(self, kind: HookKind, actions: list[_Action]) -> HookFn:
        if kind == "pre":

            def pre_hook(module: nn.Module, args: tuple, kwargs: dict[str, Any]) -> Any:
                tensor = input_tensor(args, kwargs)
                new = self._run(actions, 0, tensor)
                self._stop_if_done()
                return None if new is tensor else with_input(args, kwargs, new)

            return pre_hook

        def post_hook(module: nn.Module, args: tuple, output: Any) -> Any:
            for slot in sorted({action.site.slot for action in actions}):
                tensor = output_tensor(output, slot)
                new = self._run([a for a in actions if a.site.slot == slot], slot, tensor)
                if new is not tensor:
                    output = with_output(output, new, slot)
            self._stop_if_done()
            return output

        return post_hook

    def _stop_if_done(self) -> None:
        """End a ``logits_at="none"`` forward pass once every write and read has happened."""
        if self.stop_when_done and all(action.fired for action in self._writes + self._reads):
            raise _Enough

    def _run(self, actions: list[_Action], slot: int, tensor: Any) -> Any:
        for action in actions:
            action.fired = True
            if action.patch is not None:
                tensor = self._write(action, tensor)
            elif action.remember_layer is not None:
                self.resid_pre[action.remember_layer] = tensor
            elif slot == 1:
                self._read_pattern(action, tensor)
            elif action.mid_via_attn_out:
                tensor = self._read_mid_with_graph(action, tensor)
            else:
                tensor = self._read(action, tensor)
        return tensor

    def _check_shape(self, point: HookPoint, tensor: Tensor) -> None:
        if tensor.shape[:2] != (self.batch, self.seq_len):
            raise RuntimeError(
                f"{point.name}: shape {tuple(tensor.shape)} is not [B={self.batch}, T={self.seq_len}, ...]"
            )

    def _write(self, action: _Action, raw: Tensor) -> Tensor:
        patch, site = action.patch, action.site
        assert patch is not None
        self._check_shape(action.point, raw)
        index = _patch_index(patch, raw.device)
        new = raw.clone()
        # A view of the clone in the point's shape: writing into it writes the clone.
        view = new.unflatten(-1, (site.heads, -1)) if site.heads is not None else new
        value = _as_value(patch.value, raw)
        current = view[index]
        if site.scale is not None:
            current = current * site.scale
        try:
            if patch.mode == "add":
                target = current + value
            elif action.mid_via_attn_out:
                target = value - self.resid_pre[action.point.layer][index]
            else:
                target = value.expand_as(current)
            view[index] = target / site.scale if site.scale is not None else target
        except RuntimeError as err:
            raise ValueError(
                f"{action.point.name}: value of shape {tuple(value.shape)} does not fit the patched slice "
                f"{tuple(current.shape)}"
            ) from err
        return new

    def _read(self, action: _Action, raw: Tensor) -> Tensor:
        self._check_shape(action.point, raw)
        value = action.site.value(raw)
        index = None if self.kept_list is None else torch.tensor(self.kept_list, device=raw.device)
        if not self.keep_graph:
            # index_select copies; the whole tensor is cloned so no cache entry shares the model's memory.
            kept = value.index_select(1, index) if index is not None else value.clone()
            self.cache[action.point.name] = kept.detach()
            return raw
        kept = value.index_select(1, index) if index is not None else value
        self.cache[action.point.name] = kept
        # Splice the cached tensor back in: same values bit for bit (x + (u - u) = x), and the
        # only path from raw to what follows now runs through it, so its gradient is complete.
        delta = action.site.to_raw(kept)
        delta = delta - delta.detach()
        if index is None:
            return raw.detach() + delta
        new = raw.clone()
        new[:, index] = raw[:, index].detach() + delta
        return new

    def _read_mid_with_graph(self, action: _Action, raw: Tensor) -> Tensor:
        """Cache resid_mid = resid_pre + attn_out on the graph, from the attention contribution ``raw``."""
        self._check_shape(action.point, raw)
        site, pre = action.site, self.resid_pre[action.point.layer]
        index = None if self.kept_list is None else torch.tensor(self.kept_list, device=raw.device)
        raw_kept = raw.index_select(1, index) if index is not None else raw
        pre_kept = pre.index_select(1, index) if index is not None else pre
        # The block's own sum, same operation and order, so the same values bit for bit.
        mid = pre_kept + site.value(raw_kept)
        self.cache[action.point.name] = mid
        # The contribution passed on keeps its values (both differences are exactly zero) but routes
        # the gradient through mid; the second term cancels the block's direct resid_pre path,
        # which mid already carries.
        delta = site.to_raw((mid - mid.detach()) - (pre_kept - pre_kept.detach()))
        if index is None:
            return raw.detach() + delta
        new = raw.clone()
        new[:, index] = raw_kept.detach() + delta
        return new

    def _read_pattern(self, action: _Action, pattern: Tensor | None) -> None:
        if pattern is None:
            raise HookPointError(
                f"{action.point.name}: the attention module returned no probabilities (not eager attention?)"
            )
        if self.kept_list is not None:
            pattern = pattern.index_select(2, torch.tensor(self.kept_list, device=pattern.device))
        else:
            pattern = pattern.clone()
        self.cache[action.point.name] = pattern.detach()


def _as_value(value: Tensor | float, like: Tensor) -> Tensor:
    # .to keeps a value's autograd graph (a patch may itself depend on parameters).
    if isinstance(value, Tensor):
        return value.to(dtype=like.dtype, device=like.device)
    return torch.tensor(value, dtype=like.dtype, device=like.device)


def _patch_index(patch: Patch, device: torch.device) -> tuple[Any, ...]:
    """The index of the patched slice in a ``[B, T, ...]`` (or ``[B, T, H, d_head]``) tensor."""
    rows: Any = slice(None) if patch.rows is None else torch.tensor(list(patch.rows), device=device)
    positions: Any = slice(None) if patch.positions is None else torch.tensor(list(patch.positions), device=device)
    index: tuple[Any, ...] = (rows, positions)
    if patch.head is not None:
        index += (patch.head,)
    return index
