"""Exact activation patching: each site of a sweep patched alone, many runs per forward pass.

For a pair, the clean and the corrupted run are each run once (``cache_side``),
reading every point the sweep writes: the caches the patches are copied from, and
the answer-position logits that fix the metric (``metric.Restoration``). Then, per
direction:

- ``denoise``: the base is the corrupted run (corrupt ids and its own writes, such
  as causal tracing's noise), the source the clean cache;
- ``noise``: the base is the clean run, the source the corrupted cache.

Every row of a batch runs the base prompt; the base's writes apply to every row
first, then each row's own writes (``patch_specs.batch_patches``), so one forward
pass holds ``batch_size`` patched runs (``batch_memory.rows_per_batch`` chooses it).
Given the base's own cache (``reuse``, which ``sweep_pair`` passes), a batch starts
at the first block any of its runs patches: the blocks before it return the base's
cached outputs (``layers_core.hooks.block_reuse``) instead of recomputing what every
row of the batch would compute alike.
The values written are the source's raw activations, never normalised. A run that
patches nothing, or a site whose source value equals the base's, reproduces the
base's logits; baseline and patched runs share one code path so that, with one
row per batch, such runs score exactly 0 or 1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from activation_patching.metric import DIRECTIONS, Direction, Restoration, restoration_metric
from activation_patching.pairs import PatchingPair
from activation_patching.patch_specs import PatchSpec, batch_patches, hook_name, source_points, spec_depth
from layers_core.hooks.activations import ActivationRun, Patch, run_with_patches
from layers_core.hooks.block_reuse import block_output_points, reused_blocks
from layers_core.models.architecture import ModelParts


@dataclass(frozen=True)
class Side:
    """One prompt of a pair as the model runs it: its ids and the writes every run of it makes."""

    input_ids: tuple[int, ...]
    patches: tuple[Patch, ...] = ()


@dataclass(frozen=True)
class PatchingRow:
    """One patched run, with the patching CSV's keys (``head`` and ``position`` None: not a head / every position)."""

    pair_id: str
    direction: Direction
    component: str
    layer: int
    head: int | None
    position: int | None
    token: str | None
    rel_depth: float
    hook: str
    restoration: float

    def as_dict(self) -> dict[str, Any]:
        """The row as a CSV row (``layers_core.runs.artefacts.write_csv`` writes None as an empty cell)."""
        return asdict(self)


@dataclass(frozen=True)
class PairSweep:
    """A pair's metric (its unpatched logit differences) and one row per patched run and direction."""

    metric: Restoration
    rows: list[PatchingRow]


def pair_sides(pair: PatchingPair, corrupt_patches: Sequence[Patch] = ()) -> tuple[Side, Side]:
    """``(clean, corrupted)``: the corrupted side is the corrupt ids with ``corrupt_patches`` (noise) applied.

    Raises:
        ValueError: A noise pair without the noise's writes.
    """
    if pair.corruption == "noise" and not corrupt_patches:
        raise ValueError(f"{pair.pair_id}: a noise pair needs its noise patch (noise.noise_patch)")
    return Side(pair.clean_ids), Side(pair.corrupt_ids, tuple(corrupt_patches))


def cache_side(model: nn.Module, parts: ModelParts, side: Side, points: Sequence[str]) -> ActivationRun:
    """Run ``side`` once (batch of one), reading ``points`` at every position; logits at the last position."""
    input_ids = torch.tensor([side.input_ids], dtype=torch.long)
    return run_with_patches(model, parts, input_ids, side.patches, read=points, logits_at="last")


def first_patched_block(runs: Sequence[Sequence[PatchSpec]], n_layers: int) -> int:
    """The first block any of ``runs`` writes in or at (``n_layers`` when they write nothing but the final residual)."""
    return min((spec.layer for run in runs for spec in run), default=n_layers)


def patched_run(
    model: nn.Module, parts: ModelParts, base: Side, source: ActivationRun, runs: Sequence[Sequence[PatchSpec]],
    read: Sequence[str] = (), reuse: ActivationRun | None = None,
) -> ActivationRun:
    """One forward pass: row k is ``base`` with run k's sites written from ``source`` (``read``: a cache too).

    With ``reuse`` (the base's own run, cached with ``block_output_points``) and nothing to ``read``, the
    blocks before the first patched one return its outputs instead of running.
    """
    input_ids = torch.tensor([base.input_ids] * len(runs), dtype=torch.long)
    patches = [*base.patches, *batch_patches(runs, source, parts.n_layers)]
    start = first_patched_block(runs, parts.n_layers) if reuse is not None and not read else 0
    outputs = [] if reuse is None else [reuse[point] for point in block_output_points(parts)[:start]]
    with reused_blocks(parts, outputs, start, len(runs)):
        return run_with_patches(model, parts, input_ids, patches, read=read, logits_at="last")


def restorations(
    model: nn.Module, parts: ModelParts, base: Side, source: ActivationRun, runs: Sequence[Sequence[PatchSpec]],
    metric: Restoration, batch_size: int, reuse: ActivationRun | None = None,
) -> list[float]:
    """The restoration of every patched run, ``batch_size`` runs per forward pass, in the order of ``runs``.

    ``reuse``: the base's own cached run, to start each batch at its first patched block (``patched_run``).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    found: list[float] = []
    for start in range(0, len(runs), batch_size):
        run = patched_run(model, parts, base, source, runs[start:start + batch_size], reuse=reuse)
        found += metric(run.logits[:, -1]).tolist()
    return found


def sweep_pair(
    model: nn.Module, parts: ModelParts, pair: PatchingPair, specs: Sequence[PatchSpec],
    token_text: Callable[[int], str], batch_size: int, corrupt_patches: Sequence[Patch] = (),
    directions: Sequence[Direction] = DIRECTIONS,
) -> PairSweep:
    """Patch every site of ``specs`` alone, in each direction; rows in direction, then ``specs`` order."""
    clean, corrupt = pair_sides(pair, corrupt_patches)
    points = [*source_points(specs, parts.n_layers), *block_output_points(parts)]
    caches = {"clean": cache_side(model, parts, clean, points), "corrupt": cache_side(model, parts, corrupt, points)}
    metric = restoration_metric(
        caches["clean"].logits[0, -1], caches["corrupt"].logits[0, -1], pair.answer_id, pair.corrupt_answer_id
    )
    rows: list[PatchingRow] = []
    for direction in directions:
        base, source, reuse = ((corrupt, caches["clean"], caches["corrupt"]) if direction == "denoise"
                               else (clean, caches["corrupt"], caches["clean"]))
        values = restorations(model, parts, base, source, [(spec,) for spec in specs], metric, batch_size, reuse)
        rows += [
            _row(pair, direction, spec, value, parts.n_layers, token_text)
            for spec, value in zip(specs, values, strict=True)
        ]
    return PairSweep(metric, rows)


def _row(
    pair: PatchingPair, direction: Direction, spec: PatchSpec, value: float, n_layers: int,
    token_text: Callable[[int], str],
) -> PatchingRow:
    token = None if spec.position is None else token_text(pair.clean_ids[spec.position])
    return PatchingRow(
        pair.pair_id, direction, spec.component, spec.layer, spec.head, spec.position, token,
        spec_depth(spec, n_layers), hook_name(spec, n_layers), value,
    )
